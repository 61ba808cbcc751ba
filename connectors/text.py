"""Text helpers shared by connectors: HTML to text, snippets, datetime parsing, score shapes."""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "section"}
_SKIP_TAGS = {"script", "style", "noscript", "template"}
_WS = re.compile(r"[ \t\r\f\v]+")
_NL = re.compile(r"\n\s*\n+")
_NEEDS_WORK = re.compile(r"[<&\r\n\t\f\v]|  ")
# An opening and a closing pattern per title tag, each matched in one linear scan: no pattern spans the title's
# text, since a backtracking ``<title[^>]*>(.*?)</title>`` is quadratic over ``"<title" * 200000``.
_TITLE_TAGS = tuple(
    (re.compile(rf"<{tag}\b[^<>]*>", re.IGNORECASE), re.compile(rf"</{tag}\s*>", re.IGNORECASE))
    for tag in ("title", "h1")
)
MAX_TITLE_MARKUP = 4096  # characters of a title's markup turned into text; the rest of a runaway title is dropped
# Terminal control: CSI (ESC [ or 0x9b ... final byte), OSC/DCS/SOS/PM/APC strings up to BEL or ST, other ESC
# sequences, then any remaining C0 (except tab and newline), DEL and C1 character. A string introducer without
# its terminator loses only the introducer. Each alternative stops at the next control character: linear.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TERMINAL_CONTROL = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x00-\x08\x0b-\x1f\x7f-\x9f]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: object) -> str:
    """Plain text from an HTML fragment (tags dropped, entities decoded, whitespace tidied).

    API fields arrive untyped: a number becomes its text, anything else that is not text
    (null, a list, an object) counts as absent instead of crashing the parse.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not value or not isinstance(value, str):
        return ""
    if not _NEEDS_WORK.search(value):  # plain single-line text, already tidy: the common case
        return value.strip()
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if re.search(r"</?[A-Za-z][^<>]*>|&[#A-Za-z0-9]+;", text):
        parser = _TextExtractor()
        try:
            parser.feed(text)
            parser.close()
            text = "".join(parser.parts)
        except (ValueError, AssertionError):
            text = re.sub(r"<[^>]+>", " ", html.unescape(text))
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    return _NL.sub("\n\n", "\n".join(lines)).strip()


def html_title(raw: str) -> str:
    """The text of an HTML page's ``<title>`` (else its first ``<h1>``), or ''.

    Linear in the page: one search for the opening tag and one for its closing tag, and at most
    ``MAX_TITLE_MARKUP`` characters of markup turned into text.
    """
    for opening, closing in _TITLE_TAGS:
        start = opening.search(raw)
        end = closing.search(raw, start.end()) if start else None
        if start and end:
            return html_to_text(raw[start.end() : min(end.start(), start.end() + MAX_TITLE_MARKUP)])
    return ""


def strip_terminal_controls(value: str) -> str:
    """``value`` without terminal control sequences or characters (ESC/CSI/OSC, C0 but tab and newline, C1).

    Stored text is shown in terminals (``query``, ``search``, ``history``): an OSC 52 would write the
    clipboard, ``ESC[8m`` hide what follows. A carriage return becomes a newline, so it cannot overwrite a line.
    """
    if not _CONTROL.search(value):
        return value
    return _TERMINAL_CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def escape_controls(text: str) -> str:
    """``text`` with each terminal control character shown as ``\\xNN``, for printing stored text to a terminal.

    Stored evidence may carry escape sequences: printed raw, OSC 52 writes the clipboard and ``ESC[8m`` hides text.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def text_or_none(value: object) -> str | None:
    """An API field as text; None when it is absent or empty."""
    return str(value) if value not in (None, "") else None


def int_or_none(value: object) -> int | None:
    """An integer from an API field (a number or digit text); None when absent, boolean or malformed."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def as_list(value: object) -> list:
    """An API field that should be an array: itself when it is one, else empty (null or a wrong type)."""
    return value if isinstance(value, list) else []


def as_count(value: object) -> int:
    """A non-negative count from an API field that may be null or malformed (0 then)."""
    return max(0, int_or_none(value) or 0)


def query_terms(query: str) -> list[str]:
    """Lower-cased word terms of a query (for ranking and snippets)."""
    return [t for t in re.findall(r"\w+", query.lower()) if len(t) > 1]


def snippet(text: str, terms: list[str], width: int = 240) -> str:
    """A window of ``text`` around the first matching term, at most ``width`` characters."""
    if not text:
        return ""
    lower = text.lower()
    positions = [p for p in (lower.find(t) for t in terms) if p >= 0]
    start = max(0, min(positions) - width // 4) if positions else 0
    piece = text[start : start + width].strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")


def parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from ISO-8601 text, epoch seconds or a datetime; None when absent or bad."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return parse_datetime(float(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header (``Last-Modified``) as an aware UTC datetime; None when absent or malformed."""
    if not value:
        return None
    try:
        return parse_datetime(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def iso_utc(value: object) -> str | None:
    """``parse_datetime`` rendered as ISO-8601 UTC (``...Z``), or None."""
    moment = parse_datetime(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def freshness(created: object, half_life_days: float = 30.0, now: datetime | None = None) -> float:
    """Exponential decay with age: 1.0 when new, 0.5 after ``half_life_days``; 0.5 when the date is unknown."""
    moment = parse_datetime(created)
    if moment is None:
        return 0.5
    now = now or datetime.now(UTC)
    age_days = max(0.0, (now - moment).total_seconds() / 86400.0)
    return clamp(0.5 ** (age_days / half_life_days))


def log_scale(value: float | int | None, reference: float) -> float:
    """``log1p(value) / log1p(reference)`` clamped to [0, 1]: diminishing returns for counts."""
    if not value or value <= 0:
        return 0.0
    return clamp(math.log1p(float(value)) / math.log1p(reference))


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` limited to [low, high] (NaN becomes ``low``)."""
    if value != value:  # NaN
        return low
    return max(low, min(high, value))
