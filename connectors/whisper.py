"""Whisper evidence connector: audio transcribed through an OpenAI-compatible ``/v1/audio/transcriptions``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import mimetypes
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from connectors.base import BaseConnector, Evidence, check_count, check_score, send_bounded
from connectors.base import evidence_id as scoped_id
from connectors.exceptions import (
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorQuotaError,
    ConnectorValidationError,
    error_from_response,
)
from connectors.limits import deadline
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.resilience import retry_async
from connectors.text import clamp, freshness, http_date, iso_utc, parse_datetime, query_terms

log = get_logger(__name__)

AUDIO_EXTENSIONS = frozenset({".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".wav", ".webm", ".ogg", ".flac"})
CACHE_DIR_NAME = ".aragora-transcripts"
_TRANSCRIPT_ID = re.compile(r"^([0-9a-f]{16})(?::(\d+))?$")
_REPETITION_LIMIT = 2.4  # OpenAI: a compression ratio above 2.4 means the decoding likely looped


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def segment_confidence(segment: Mapping[str, Any]) -> float:
    """exp(avg_logprob) x (1 - no_speech_prob), halved when compression_ratio > 2.4; missing parts are neutral."""
    logprob = _number(segment.get("avg_logprob"))
    no_speech = _number(segment.get("no_speech_prob"))
    ratio = _number(segment.get("compression_ratio"))
    token_probability = math.exp(min(0.0, logprob)) if logprob is not None else 0.5
    speech_probability = 1.0 - clamp(no_speech) if no_speech is not None else 1.0
    repetition = 0.5 if ratio is not None and ratio > _REPETITION_LIMIT else 1.0
    return clamp(token_probability * speech_probability * repetition)


def _segments(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The verbose_json segments; a body with only ``text`` (plain ``json`` servers) becomes one segment."""
    raw = response.get("segments")
    segments = [dict(s) for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []
    if not segments and str(response.get("text") or "").strip():
        segments = [{"start": 0.0, "end": _number(response.get("duration")), "text": response.get("text")}]
    return segments


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:d}:{secs:02d}"


def _sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class WhisperConnector(BaseConnector):
    """Audio transcripts from OpenAI's Whisper API or any compatible server (faster-whisper, LocalAI, vLLM...).

    ``fetch(path_or_url)`` transcribes one file: a path inside ``audio_dir`` (relative or absolute) or an
    http(s) URL downloaded first; it returns one Evidence for the whole file (id ``whisper:<sha256[:16]>``,
    segments in ``metadata["segments"]``). ``fetch`` also takes a search result's id
    (``whisper:<sha256[:16]>:<segment>``) or a file id and answers from the transcript cache (None if unknown).
    ``search(query)`` transcribes every audio file under ``audio_dir`` (``ARAGORA_WHISPER_AUDIO_DIR``;
    extensions mp3 mp4 mpeg mpga m4a wav webm ogg flac; hidden files and folders, and links leading out of the
    folder, are skipped) and returns the segments containing the query's terms, most terms first (an empty
    query returns every segment): one Evidence per segment, id ``whisper:<sha256[:16]>:<segment index>``.
    Each distinct file content is uploaded once: transcripts are kept as ``<sha256 of the bytes>.json`` in
    ``cache_dir`` (default ``<audio_dir>/.aragora-transcripts``), whatever the model or language knob.
    Size: files over ``max_file_bytes`` (25 MB, the API's limit) are refused before upload: local files by
    ``stat``, remote ones by Content-Length and a streamed cap (search skips them with a warning). Stored URLs
    drop the query string (often a signed token). No time axis: ``since``/``until`` are accepted and ignored.
    Scores:
      - confidence: per segment ``exp(avg_logprob) x (1 - no_speech_prob)``, halved when
        ``compression_ratio > 2.4``; 0.5 for a missing avg_logprob; a whole file takes the duration-weighted mean.
      - authority: ``authority`` knob, default 0.5: a recording says who spoke, not whether they are right.
      - freshness: ``freshness(file mtime, half_life_days=30)`` (remote files: Last-Modified; unknown -> 0.5).
    Credentials: ``api_key``/``OPENAI_API_KEY`` is required, sent as a Bearer token to the transcription endpoint
    only (never to download hosts); a self-hosted server accepts any value. RATE_LIMIT: 50 requests a minute,
    OpenAI's lowest published tier for whisper-1.
    """

    SOURCE = "whisper"
    HAS_TIME_AXIS = False
    DEFAULT_BASE_URL = "https://api.openai.com"
    ENV_NAME = "WHISPER"
    CREDENTIALS = {"api_key": "OPENAI_API_KEY"}
    REQUIRED_CREDENTIALS = ("api_key",)
    RATE_LIMIT = (50, 60.0)
    REQUEST_DEADLINE = 900.0  # uploading 25 MB and transcribing it can take minutes on a self-hosted server
    TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
    DEFAULT_MAX_FILE_BYTES = 25 * 1024 * 1024
    FRESHNESS_HALF_LIFE_DAYS = 30.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        audio_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        model: str = "whisper-1",
        language: str | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        authority: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._api_key = self._credential("api_key", api_key)
        folder = audio_dir or os.environ.get("ARAGORA_WHISPER_AUDIO_DIR")
        self.audio_dir = Path(folder).expanduser().resolve() if folder else None
        cache = cache_dir or (self.audio_dir / CACHE_DIR_NAME if self.audio_dir else None)
        self.cache_dir = Path(cache).expanduser().resolve() if cache else None
        self.model = model
        self.language = language
        self.max_file_bytes = check_count("max_file_bytes", max_file_bytes, self.name)
        self.authority = float(check_score("authority", authority, self.name))

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "Whisper"

    @property
    def source_type(self) -> SourceType:
        """Audio transcripts."""
        return SourceType.AUDIO_TRANSCRIPT

    # --- search ---------------------------------------------------------------------------
    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Transcript segments of ``audio_dir`` that contain the query's terms (``since``/``until`` are ignored)."""
        self._check_limit(limit)
        self._check_options(kwargs)
        self.require_configured()
        root = self._require_audio_dir()
        files = await asyncio.to_thread(self._audio_files, root)
        by_hash: dict[str, tuple[Path, datetime]] = {}
        for hashed in await asyncio.gather(*(self._hash_or_skip(path) for path in files)):
            if hashed is not None:
                by_hash.setdefault(hashed[1], (hashed[0], hashed[2]))
        gate = asyncio.Semaphore(self.max_concurrency)

        async def transcript_of(digest: str, path: Path, modified: datetime) -> dict[str, Any]:
            async with gate:
                origin = {"file": path.relative_to(root).as_posix(), "modified": modified.isoformat()}
                return await self._transcript(digest, path.name, path.read_bytes, origin)

        transcripts = await asyncio.gather(*(transcript_of(d, p, m) for d, (p, m) in by_hash.items()))
        terms = query_terms(query or "")
        ranked: list[tuple[int, str, int, Evidence]] = []
        for (path, modified), record in zip(by_hash.values(), transcripts, strict=True):
            relative = path.relative_to(root).as_posix()
            for index, segment in enumerate(_segments(record["response"])):
                text = str(segment.get("text") or "").strip()
                hits = sum(1 for term in terms if term in text.lower())
                if text and (hits or not terms):
                    evidence = self._segment_evidence(record, index, segment, relative, modified)
                    ranked.append((-hits, relative, index, evidence))
        ranked.sort(key=lambda item: item[:3])
        return [item[3] for item in ranked[:limit]]

    # --- fetch ------------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """Transcribe a file in ``audio_dir`` or an http(s) URL; or look up a transcript by its evidence id."""
        target = evidence_id.strip()
        self.require_configured()
        known = _TRANSCRIPT_ID.match(target.removeprefix(f"{self.SOURCE}:"))
        if known:
            return await self._from_cache(known.group(1), known.group(2))
        if target.startswith(("http://", "https://")):
            return await self._fetch_remote(target)
        return await self._fetch_local(target)

    async def _fetch_local(self, target: str) -> Evidence | None:
        root = self._require_audio_dir()
        path = self._checked_path(root, target)
        try:
            digest, modified = await self._hash(path)
        except FileNotFoundError:
            return None
        relative = path.relative_to(root).as_posix()
        origin = {"file": relative, "modified": modified.isoformat()}
        record = await self._transcript(digest, path.name, path.read_bytes, origin)
        return self._file_evidence(record, relative, None, modified)

    async def _fetch_remote(self, url: str) -> Evidence | None:
        parts = urlsplit(url)
        name = Path(parts.path).name
        if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
            raise ConnectorValidationError(
                f"{name or url!r} does not end in a supported audio extension "
                f"({', '.join(sorted(AUDIO_EXTENSIONS))})", connector=self.name,
            )
        public_url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
        try:
            data, last_modified = await self._download(url, public_url)
        except ConnectorNotFoundError:
            return None
        origin = {"file": name, "url": public_url, "modified": last_modified and last_modified.isoformat()}
        record = await self._transcript(hashlib.sha256(data).hexdigest(), name, lambda: data, origin)
        return self._file_evidence(record, name, public_url, last_modified)

    async def _download(self, url: str, label: str) -> tuple[bytes, datetime | None]:
        """Stream ``url`` with the size cap (``label`` names it in errors); never sends the API key."""

        async def call() -> tuple[bytes, datetime | None]:
            async with (deadline(self.request_deadline, f"download {label}", self.name),
                        self.client.stream("GET", url, follow_redirects=True) as response):
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response, self.name)
                declared = response.headers.get("content-length", "")
                if declared.isdigit():
                    self._check_size(int(declared), label)
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    self._check_size(len(data), label)
                return bytes(data), http_date(response.headers.get("last-modified"))

        # Downloads are retried but kept out of the transcription host's breaker and rate limiter.
        return await retry_async(
            call, operation=f"download {urlsplit(url).netloc}", connector=self.name, max_retries=self.max_retries,
            base_delay=self.base_delay, max_delay=self.max_delay, breaker=None,
        )

    async def _from_cache(self, prefix: str, segment: str | None) -> Evidence | None:
        record = self._cache_get(("transcript prefix", prefix))
        cache_dir = self.cache_dir
        if record is None and cache_dir is not None:
            matches = await asyncio.to_thread(lambda: sorted(cache_dir.glob(f"{prefix}*.json")))
            record = await asyncio.to_thread(self._read_cache_file, matches[0]) if matches else None
        if record is None:
            return None
        origin = record.get("source") if isinstance(record.get("source"), Mapping) else {}
        modified = parse_datetime(origin.get("modified"))
        file = str(origin.get("file") or "")
        if segment is None:
            return self._file_evidence(record, file, origin.get("url"), modified)
        segments = _segments(record["response"])
        index = int(segment)
        if index >= len(segments):
            return None
        return self._segment_evidence(record, index, segments[index], file, modified)

    # --- transcription and its cache ------------------------------------------------------
    async def _transcript(
        self, digest: str, filename: str, read: Callable[[], bytes], origin: dict[str, Any]
    ) -> dict[str, Any]:
        """The cached transcript of content ``digest``; on a miss ``read()`` the bytes and transcribe them once."""
        record = self._cache_get(("transcript", digest))
        path = self.cache_dir / f"{digest}.json" if self.cache_dir else None
        if record is None and path is not None:
            record = await asyncio.to_thread(self._read_cache_file, path)
        if record is None:
            data = await asyncio.to_thread(read)
            self._check_size(len(data), filename)
            response = await self._transcribe(data, filename)
            record = {
                "sha256": digest,
                "model": self.model,
                "language": self.language,
                "transcribed_at": iso_utc(datetime.now(UTC)),
                "source": origin,
                "response": response,
            }
            if path is not None:
                await asyncio.to_thread(self._write_cache_file, path, record)
        self._cache_put(("transcript", digest), record)
        self._cache_put(("transcript prefix", digest[:16]), record)
        return record

    async def _transcribe(self, data: bytes, filename: str) -> dict[str, Any]:
        """POST one file to ``/v1/audio/transcriptions`` as multipart, asking for verbose_json segments."""
        form = {"model": self.model, "response_format": "verbose_json"}
        if self.language:
            form["language"] = self.language
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Authorization": f"Bearer {self._api_key}"}

        async def call() -> dict[str, Any]:
            response = await send_bounded(
                self.client, "POST", self.TRANSCRIPTIONS_PATH, self, f"POST {self.TRANSCRIPTIONS_PATH}",
                follow_redirects=False, data=form, files={"file": (filename, data, mime)}, headers=headers,
            )
            if response.status_code >= 400:
                raise self._error(response)
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise ConnectorParseError(f"{self.TRANSCRIPTIONS_PATH}: expected a verbose_json object",
                                          connector=self.name)
            return body

        return await self._request_with_retry(call, f"POST {self.TRANSCRIPTIONS_PATH}")

    def _error(self, response: httpx.Response) -> ConnectorError:
        """HTTP error mapping, except OpenAI's ``insufficient_quota`` 429: a quota, not worth retrying."""
        error = error_from_response(response, self.name)
        try:
            detail = response.json().get("error") or {}
        except (ValueError, AttributeError):
            detail = {}
        if isinstance(detail, Mapping) and "insufficient_quota" in (detail.get("code"), detail.get("type")):
            return ConnectorQuotaError(error.message + "; add credit to the OpenAI account", connector=self.name,
                                       status_code=response.status_code)
        return error

    def _read_cache_file(self, path: Path) -> dict[str, Any] | None:
        try:
            record = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring unreadable transcript cache %s (%s)", self.name, path.name, exc)
            return None
        if not isinstance(record, dict) or record.get("sha256") != path.stem or not isinstance(
            record.get("response"), dict
        ):
            log.warning("%s: ignoring malformed transcript cache %s", self.name, path.name)
            return None
        return record

    @staticmethod
    def _write_cache_file(path: Path, record: dict[str, Any]) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a transcript."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle)  # ASCII escapes: a lone surrogate in a transcript still writes
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- files ------------------------------------------------------------------------------
    def _require_audio_dir(self) -> Path:
        if self.audio_dir is None:
            raise ConnectorValidationError(
                "no audio folder: pass audio_dir=... or set ARAGORA_WHISPER_AUDIO_DIR", connector=self.name
            )
        if not self.audio_dir.is_dir():
            raise ConnectorValidationError(f"audio_dir {self.audio_dir} is not a folder", connector=self.name)
        return self.audio_dir

    def _checked_path(self, root: Path, target: str) -> Path:
        """``target`` resolved inside ``root``; hidden parts, escapes and non-audio extensions are refused."""
        candidate = Path(target).expanduser()
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if not resolved.is_relative_to(root):
            raise ConnectorValidationError(f"{target!r} is outside audio_dir", connector=self.name)
        if any(part.startswith(".") for part in resolved.relative_to(root).parts):
            raise ConnectorValidationError(f"{target!r} is a hidden file or folder", connector=self.name)
        if resolved.suffix.lower() not in AUDIO_EXTENSIONS:
            raise ConnectorValidationError(
                f"{target!r} is not audio ({', '.join(sorted(AUDIO_EXTENSIONS))})", connector=self.name
            )
        return resolved

    def _audio_files(self, root: Path) -> list[Path]:
        """Audio files under ``root`` (sorted), skipping hidden entries and links that lead outside it."""
        found: list[Path] = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = Path(folder, name)
                if name.startswith(".") or path.suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                if not path.resolve().is_relative_to(root) or not path.is_file():
                    log.warning("%s: skipping %s, it leads outside audio_dir", self.name, path.name)
                    continue
                found.append(path)
        return found

    async def _hash(self, path: Path) -> tuple[str, datetime]:
        """(sha256, mtime) of a local file; the size cap is checked by ``stat`` before a byte is read."""
        stat = await asyncio.to_thread(path.stat)
        self._check_size(stat.st_size, path.name)
        return await asyncio.to_thread(_sha256_file, path), datetime.fromtimestamp(stat.st_mtime, UTC)

    async def _hash_or_skip(self, path: Path) -> tuple[Path, str, datetime] | None:
        """:meth:`_hash` for a folder scan: an oversized or unreadable file is skipped with a warning."""
        try:
            return (path, *await self._hash(path))
        except (OSError, ConnectorValidationError) as exc:
            log.warning("%s: skipping %s: %s", self.name, path.name, exc)
            return None

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_file_bytes:
            raise ConnectorValidationError(
                f"{what} is larger than max_file_bytes ({self.max_file_bytes} bytes); split or compress it first",
                connector=self.name,
            )

    # --- evidence -------------------------------------------------------------------------
    def _segment_evidence(
        self, record: Mapping[str, Any], index: int, segment: Mapping[str, Any], file: str, modified: Any
    ) -> Evidence:
        digest = str(record["sha256"])
        start, end = _number(segment.get("start")), _number(segment.get("end"))
        return Evidence(
            id=scoped_id(self.SOURCE, f"{digest[:16]}:{index}"),
            source_type=SourceType.AUDIO_TRANSCRIPT,
            source_id=f"{digest[:16]}:{index}",
            content=str(segment.get("text") or "").strip(),
            title=f"{file or digest[:16]} [{_clock(start)}-{_clock(end)}]",
            created_at=iso_utc(modified),
            confidence=segment_confidence(segment),
            freshness=freshness(modified, self.FRESHNESS_HALF_LIFE_DAYS),
            authority=self.authority,
            metadata={
                "file": file, "start": start, "end": end, "segment": index, "sha256": digest,
                "avg_logprob": _number(segment.get("avg_logprob")),
                "no_speech_prob": _number(segment.get("no_speech_prob")),
                "language": record["response"].get("language"), "model": record.get("model"),
            },
        )

    def _file_evidence(self, record: Mapping[str, Any], file: str, url: str | None, modified: Any) -> Evidence:
        digest = str(record["sha256"])
        response = record["response"]
        segments = _segments(response)
        weights = [max((_number(s.get("end")) or 0.0) - (_number(s.get("start")) or 0.0), 0.0) for s in segments]
        scores = [segment_confidence(s) for s in segments]
        total = sum(weights)
        confidence = (sum(w * c for w, c in zip(weights, scores, strict=True)) / total if total
                      else sum(scores) / len(scores) if scores else 0.5)
        return Evidence(
            id=scoped_id(self.SOURCE, digest[:16]),
            source_type=SourceType.AUDIO_TRANSCRIPT,
            source_id=digest[:16],
            content=str(response.get("text") or "").strip()
            or " ".join(str(s.get("text") or "").strip() for s in segments),
            title=file or digest[:16],
            created_at=iso_utc(modified),
            url=url,
            confidence=clamp(confidence),
            freshness=freshness(modified, self.FRESHNESS_HALF_LIFE_DAYS),
            authority=self.authority,
            metadata={
                "file": file, "sha256": digest, "duration": _number(response.get("duration")),
                "language": response.get("language"), "model": record.get("model"),
                "segments": [
                    {"index": i, "start": _number(s.get("start")), "end": _number(s.get("end")),
                     "text": str(s.get("text") or "").strip()}
                    for i, s in enumerate(segments)
                ],
            },
        )
