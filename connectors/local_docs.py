"""Documents in a local folder (Markdown, text, reStructuredText, HTML, PDF, JSON) as evidence."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from connectors.base import (
    BaseConnector,
    Evidence,
    check_count,
    check_positive,
    check_score,
    evidence_id,
    in_window,
    to_utc,
)
from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_title, html_to_text, iso_utc, log_scale, query_terms, snippet

log = get_logger(__name__)

SUPPORTED_EXTENSIONS = frozenset({".md", ".txt", ".rst", ".html", ".pdf", ".json"})
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
FRESHNESS_HALF_LIFE_DAYS = 365.0
DEFAULT_AUTHORITY = 0.6

_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+]){3,}\s*$")
_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def shown_path(relative: str) -> str:
    """A relative path as valid UTF-8 text for ids, titles and messages: undecodable bytes of a file name
    (kept by Python as lone surrogates) become ``\\xNN``, so two names differing only in them stay distinct."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def _real_path(shown: str) -> str:
    """The file name behind :func:`shown_path` (a path with a backslash is refused by the guards anyway)."""
    if "\\x" not in shown:
        return shown
    return os.fsdecode(_ESCAPED_BYTE.sub(lambda m: bytes([int(m[1], 16)]), shown.encode("utf-8", "surrogateescape")))


@dataclass(frozen=True)
class _Document:
    """A file that passed every guard, with its text extracted."""

    relative: str
    extension: str
    size: int
    modified: datetime
    title: str
    text: str


def _first_heading(extension: str, raw: str) -> str:
    """The document's own title from its markup (Markdown ``#``, reST underline, HTML ``<title>``/``<h1>``)."""
    if extension == ".md":
        match = _MD_HEADING.search(raw)
        return match.group(1) if match else ""
    if extension == ".rst":
        lines = [line.rstrip() for line in raw.splitlines()]
        for above, below in pairwise(lines):
            if above.strip() and _RST_UNDERLINE.match(below) and len(below.strip()) >= len(above.strip()):
                return above.strip()
        return ""
    if extension == ".html":
        return html_title(raw)
    return ""


def _pdf_text(data: bytes) -> tuple[str, str]:
    """(title, text) of a PDF's text layer, read with pypdf."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except Exception as exc:  # pypdf on a damaged file raises almost anything (IndexError, RecursionError...)
        raise ConnectorParseError(f"not a readable PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    return str(title), "\n\n".join(page.strip() for page in pages if page.strip())


def _extract(extension: str, data: bytes) -> tuple[str, str]:
    """(title, plain text) of a file's bytes, by extension; the title is '' when the file names none."""
    if extension == ".pdf":
        return _pdf_text(data)
    raw = data.decode("utf-8", errors="replace")
    if extension == ".html":
        return _first_heading(extension, raw), html_to_text(raw)
    if extension == ".json":
        try:
            parsed = json.loads(raw)
            text = json.dumps(parsed, indent=2, ensure_ascii=False)
        except ValueError:
            return "", raw.strip()
        except RecursionError:  # the parser and the encoder recurse once per level
            raise ConnectorParseError("JSON nested too deeply to read") from None
        title = parsed.get("title") if isinstance(parsed, dict) else None
        return (title if isinstance(title, str) else ""), text
    return _first_heading(extension, raw), raw.strip()


class LocalDocsConnector(BaseConnector):
    """Files under one root folder: ``.md``, ``.txt``, ``.rst``, ``.html``, ``.pdf`` (pypdf) and ``.json``.

    ``search`` reads every supported file below the root and ranks those whose title, path or text
    contain the query's words (word-prefix matches): first by how many distinct query words match,
    then by the total number of matches, then newest first; each result carries a snippet. Ids are
    ``local_docs:<relative posix path>``; ``fetch`` takes that path (with or without the prefix).
    Both apply the same guards: ``..``, absolute paths, symlinks leaving the root, hidden files or
    folders (any component starting with ``.``) and files over ``max_file_bytes`` are refused;
    ``fetch`` raises :class:`ConnectorValidationError` (and returns None for a missing file), or
    :class:`ConnectorParseError` for a file that cannot be read (a damaged PDF, JSON nested too deeply).
    ``search`` never lets one file sink the folder: it skips a refused or unreadable file (also a
    symlink loop) with a warning naming the file and why, and lists it in ``skipped`` (path, reason)
    until the next search. A file name's undecodable bytes appear as ``\\xNN`` in its id and title
    (:func:`shown_path`). ``since``/``until`` filter on the file's modification time. File reads run
    in a worker thread.

    Scores (all in [0, 1]):
    - confidence = 0.4 + 0.5 * log_scale(word count, 2000): a document with substantial text is
      worth more than a near-empty one (such as a scanned PDF without a text layer);
    - authority = the ``authority`` knob (default 0.6: the user's own folder, trusted but unreviewed);
    - freshness = 0.5 ** (days since the file was modified / ``half_life_days``, default 365).
    """

    SOURCE: ClassVar[str] = "local_docs"
    HAS_TIME_AXIS: ClassVar[bool] = False
    CREDENTIALS: ClassVar[dict[str, str]] = {"root": "ARAGORA_LOCAL_DOCS_ROOT"}
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"root"})
    REQUIRED_CREDENTIALS: ClassVar[tuple[str, ...]] = ("root",)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        root: str | os.PathLike[str] | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        authority: float = DEFAULT_AUTHORITY,
        half_life_days: float = FRESHNESS_HALF_LIFE_DAYS,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._root_setting = self._credential("root", os.fspath(root) if root is not None else None)
        self.max_file_bytes = check_count("max_file_bytes", max_file_bytes, self.name)
        self.authority = check_score("authority", authority, self.name)
        self.half_life_days = check_positive("half_life_days", half_life_days, self.name)
        self.skipped: list[tuple[str, str]] = []  # (path, reason) of the files the last search could not use

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "LocalDocs"

    @property
    def source_type(self) -> SourceType:
        """Local files are documents."""
        return SourceType.DOCUMENT

    @property
    def is_available(self) -> bool:
        """Whether pypdf (needed for ``.pdf`` files) is importable."""
        return importlib.util.find_spec("pypdf") is not None

    # --- guards ---------------------------------------------------------------------------
    def _root(self) -> Path:
        """The configured root, resolved; ConnectorAuthError when unset, ValidationError when not a folder."""
        self.require_configured()
        root = Path(str(self._root_setting)).expanduser().resolve()
        if not root.is_dir():
            raise ConnectorValidationError(
                "the local docs root (root= or ARAGORA_LOCAL_DOCS_ROOT) is not a directory; "
                "point it at the folder holding the documents",
                connector=self.name,
            )
        return root

    def _refuse(self, relative: str, reason: str) -> ConnectorValidationError:
        return ConnectorValidationError(f"refused path {shown_path(relative)!r}: {reason}", connector=self.name)

    def _checked_file(self, root: Path, relative: str) -> tuple[Path, os.stat_result] | None:
        """The resolved file and its stat when ``relative`` passes every guard; None when it does not exist.

        Raises ConnectorValidationError for a path that is absolute, climbs with ``..``, names a
        hidden component, resolves (through symlinks) outside the root or to a hidden file, is not a
        supported regular file, or is larger than ``max_file_bytes``.
        """
        if not relative or "\x00" in relative or "\\" in relative:
            raise self._refuse(relative, "give a non-empty path relative to the root, with '/' separators")
        pure = PurePosixPath(relative)
        if pure.is_absolute():
            raise self._refuse(relative, "absolute paths are not allowed; give a path relative to the root")
        if ".." in pure.parts:
            raise self._refuse(relative, "'..' is not allowed")
        if any(part.startswith(".") for part in pure.parts):
            raise self._refuse(relative, "hidden files and folders (names starting with '.') are not served")
        try:
            resolved = (root / pure).resolve()
        except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop, 3.13 OSError
            raise self._refuse(relative, "it cannot be resolved (a symlink loop?)") from None
        if not resolved.is_relative_to(root):
            raise self._refuse(relative, "it resolves (through a symlink) to a file outside the root")
        if any(part.startswith(".") for part in resolved.relative_to(root).parts):
            raise self._refuse(relative, "it resolves (through a symlink) to a hidden file")
        if not resolved.exists():
            return None
        if not resolved.is_file():
            raise self._refuse(relative, "not a regular file")
        if resolved.suffix.lower() not in SUPPORTED_EXTENSIONS:
            raise self._refuse(relative, f"unsupported type; supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}")
        stat = resolved.stat()
        if stat.st_size > self.max_file_bytes:
            raise self._refuse(relative, f"{stat.st_size} bytes is over max_file_bytes={self.max_file_bytes}")
        return resolved, stat

    def _load(self, root: Path, relative: str) -> _Document | None:
        """Guard, then read one file (blocking; call it in a worker thread); None when it is missing."""
        checked = self._checked_file(root, relative)
        return self._read(relative, *checked) if checked else None

    def _read(self, relative: str, path: Path, stat: os.stat_result) -> _Document:
        """Read and extract a file that passed the guards, never more than ``max_file_bytes``."""
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_file_bytes + 1)
        except OSError as exc:
            raise self._refuse(relative, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        if len(data) > self.max_file_bytes:
            raise self._refuse(relative, f"it grew over max_file_bytes={self.max_file_bytes} while being read")
        extension = path.suffix.lower()
        try:
            title, text = _extract(extension, data)
        except ConnectorParseError as exc:
            raise ConnectorParseError(f"{shown_path(relative)}: {exc.message}", connector=self.name) from None
        return _Document(
            relative=relative,
            extension=extension,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            title=title.strip() or PurePosixPath(shown_path(relative)).stem,
            text=text,
        )

    def _candidates(self, root: Path) -> list[str]:
        """Relative paths of visible, supported files below the root, in a stable order."""
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath)
            for filename in sorted(filenames):
                if not filename.startswith(".") and Path(filename).suffix.lower() in SUPPORTED_EXTENSIONS:
                    found.append((base / filename).relative_to(root).as_posix())
        return found

    # --- evidence -------------------------------------------------------------------------
    def _to_evidence(self, doc: _Document, extra: dict[str, Any] | None = None) -> Evidence:
        words = len(doc.text.split())
        shown = shown_path(doc.relative)
        return Evidence(
            id=evidence_id(self.SOURCE, shown),
            source_type=self.source_type,
            source_id=shown,
            content=doc.text,
            title=doc.title,
            created_at=iso_utc(doc.modified),
            confidence=clamp(0.4 + 0.5 * log_scale(words, 2000)),
            freshness=freshness(doc.modified, self.half_life_days),
            authority=self.authority,
            metadata={
                "path": shown,
                "extension": doc.extension,
                "size_bytes": doc.size,
                "modified_at": iso_utc(doc.modified),
                "word_count": words,
                **(extra or {}),
            },
        )

    def _search_sync(
        self, query: str, limit: int, since: datetime | None, until: datetime | None
    ) -> list[Evidence]:
        root = self._root()
        terms = query_terms(query)
        patterns = {term: re.compile(rf"\b{re.escape(term)}") for term in terms}
        ranked: list[tuple[int, int, _Document, list[str]]] = []
        self.skipped = []
        for relative in self._candidates(root):
            try:
                doc = self._load(root, relative)
            except (ConnectorValidationError, ConnectorParseError, OSError, RecursionError) as exc:
                shown = shown_path(relative)
                reason = exc.message if isinstance(exc, ConnectorValidationError | ConnectorParseError) else (
                    f"{shown}: cannot be read ({type(exc).__name__}: {exc})")
                self.skipped.append((shown, reason))
                log.warning("%s: skipped a file: %s", self.name, reason)  # the reason names the file
                continue
            if doc is None or not in_window(doc.modified, since, until):
                continue
            haystack = f"{doc.title}\n{doc.relative}\n{doc.text}".lower()
            counts = {term: len(pattern.findall(haystack)) for term, pattern in patterns.items()}
            matched = [term for term in terms if counts[term]]
            if terms and not matched:
                continue
            ranked.append((len(matched), sum(counts.values()), doc, matched))
        ranked.sort(key=lambda hit: (-hit[0], -hit[1], -hit[2].modified.timestamp(), hit[2].relative))
        return [
            self._to_evidence(
                doc, {"matched_terms": matched, "match_count": total, "snippet": snippet(doc.text, terms)}
            )
            for _, total, doc, matched in ranked[:limit]
        ]

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """The ``limit`` best-matching documents, each with a snippet around the first match.

        Ranked by distinct query words matched, then total matches, then newest, then path. A query
        without words matches every document (newest first). ``since``/``until`` filter on mtime.
        """
        self._check_limit(limit)
        return await asyncio.to_thread(self._search_sync, query, limit, to_utc(since), to_utc(until))

    def _fetch_sync(self, relative: str) -> Evidence | None:
        root = self._root()
        relative = _real_path(relative)
        checked = self._checked_file(root, relative)
        if checked is None:
            return None
        relative = PurePosixPath(relative).as_posix()  # "./a//b.md" and "a/b.md" are one document
        stat = checked[1]
        key = (relative, stat.st_mtime_ns, stat.st_size)
        cached = self._cache_get(key)
        if cached is not None:
            return cached
        evidence = self._to_evidence(self._read(relative, *checked))
        self._cache_put(key, evidence)
        return evidence

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One document by its path relative to the root (or ``local_docs:<path>``); None when it is missing."""
        relative = str(evidence_id).removeprefix(f"{self.SOURCE}:")
        return await asyncio.to_thread(self._fetch_sync, relative)
