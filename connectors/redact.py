"""Secret redaction shared by errors, logs, metadata and stored rows.

Two layers: patterns that look like credentials (bearer tokens, ``api_key=`` query
values, well-known key prefixes), and the exact values that credential providers
have handed out, registered at the moment they are read.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

REDACTED = "***"

SENSITIVE_KEYS = frozenset(
    {
        "authorization", "proxy-authorization", "x-api-key", "api_key", "apikey", "api-key", "key",
        "token", "access_token", "refresh_token", "id_token", "bearer_token", "client_secret", "secret",
        "secret_key", "password", "passwd", "webhook_secret", "hmac_key", "signature", "sig",
        "x-subscription-token", "cookie", "set-cookie", "private_token", "auth",
    }
)

_PATTERNS = [
    # Authorization-style headers and "Bearer <token>" anywhere in text.
    # The token runs to the next space, quote, backslash or delimiter, not only over RFC 6750's b64token
    # alphabet: a pasted or URL-encoded token ("%2F") would otherwise leak from its first odd character on.
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[^\s'\"\\`<>(){}\[\],;:]{8,}"), r"\1 " + REDACTED),
    # key=value pairs in query strings, JSON-ish text or log lines. A quoted key takes a quoted value
    # ({"token": "..."}), so the tail of a quoted name is no key: "secret 'prod/secret': ErrorName" stays.
    (
        re.compile(
            r"(?i)([\"']?\b(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|"
            r"secret[_-]?key|password|token|key|secret|signature|sig|hmac[_-]?key)\b"
            r"(?:\s*[=:]\s*[\"']?|[\"']\s*[=:]\s*[\"']))"
            r"([^\s&\"',;}]{4,})"
        ),
        r"\1" + REDACTED,
    ),
    # Headers as Python prints them: {'x-api-key': '...'}, Headers([('cookie', '...')]), (b'auth', b'...').
    (
        re.compile(
            r"(?i)(b?([\"'])(?:" + "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS, key=len, reverse=True))
            + r")\2\s*[:,]\s*b?([\"']))(?:(?!\3).)+"
        ),
        r"\1" + REDACTED,
    ),
    # Well-known credential prefixes (Stripe, GitHub, Slack, AWS, OpenAI, HubSpot).
    (
        re.compile(
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bgithub_pat_[A-Za-z0-9_]{20,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
            r"|\bsk-[A-Za-z0-9_\-]{16,}|\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}"
        ),
        REDACTED,
    ),
]

_known_secrets: set[str] = set()
_known_sorted: tuple[str, ...] = ()  # longest first, rebuilt on registration (redact runs per stored row)
_known_lock = threading.Lock()
_MIN_SECRET_LEN = 6


def _shown_forms(value: str) -> set[str]:
    """The ways ``value`` appears in text: as is, without surrounding whitespace, escaped by ``repr`` of
    text or bytes (an httpx error quotes a header as ``b'...\\r'``) and percent-encoded in a URL."""
    forms = {value, value.strip()}
    for form in tuple(forms):
        forms |= {repr(form)[1:-1], repr(form.encode("utf-8", "backslashreplace"))[2:-1], quote_plus(form, safe="")}
    return {form for form in forms if len(form) >= _MIN_SECRET_LEN}


def register_secret(value: str | None) -> None:
    """Remember a secret value so every later redaction removes it, verbatim or escaped as errors print it."""
    global _known_sorted
    if value and len(value) >= _MIN_SECRET_LEN:
        forms = _shown_forms(value)
        with _known_lock:
            if not forms <= _known_secrets:
                _known_secrets.update(forms)
                _known_sorted = tuple(sorted(_known_secrets, key=len, reverse=True))


def redact(text: Any) -> str:
    """Return ``text`` as a string with every secret-looking value replaced by ``***``."""
    out = str(text)
    for secret in _known_sorted:
        if secret in out:
            out = out.replace(secret, REDACTED)
    for pattern, repl in _PATTERNS:
        if pattern.search(out):
            out = pattern.sub(repl, out)
    return out


def contains_secret(text: Any) -> bool:
    """True when redaction would change ``text``: used by asset checks on stored values."""
    s = str(text)
    return redact(s) != s


def _redacted_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    try:
        shown = str(arg)
    except Exception:  # an argument that cannot print shows nothing either
        return arg
    return redact(shown) if contains_secret(shown) else arg


def redact_exception(exc: BaseException) -> BaseException:
    """Redact, in place, the arguments and notes of ``exc`` and of every exception it chains to; returns ``exc``.

    A library's error (httpx, httpcore, h11) may quote a request header, and a traceback or Dagster's error
    record prints the whole ``__cause__``/``__context__`` chain, suppressed context included.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        args = tuple(_redacted_arg(arg) for arg in current.args)
        if any(new is not old for new, old in zip(args, current.args, strict=True)):
            current.args = args
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            current.__notes__ = [redact(note) for note in notes]
        pending += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            pending += current.exceptions
    return exc


def redact_url(url: Any) -> str:
    """Redact credentials in a URL: userinfo and sensitive query parameters."""
    raw = str(url)
    try:
        parts = urlsplit(raw)
    except ValueError:
        return redact(raw)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if k.lower() in SENSITIVE_KEYS else v) for k, v in pairs], safe="*:,")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        items = [_redact_value(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def redact_mapping(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy a mapping (headers, params, details) with sensitive keys and values redacted, lists included."""
    return {
        key: REDACTED if str(key).lower() in SENSITIVE_KEYS else _redact_value(value)
        for key, value in (data or {}).items()
    }


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are redacted at the source (logger filters do not see children's records)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


# The HTTP libraries' own loggers: httpcore's DEBUG trace quotes a failing request's exception, header included.
HTTP_LIBRARY_LOGGERS = (
    "httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks",
)
for _name in HTTP_LIBRARY_LOGGERS:
    get_logger(_name)
