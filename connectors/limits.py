"""Bounds on what one HTTP answer may cost: body size (after decompression), JSON nesting depth, wall time.

A hostile or broken server must end a request with a connector error, never with a memory blow-up, a
``RecursionError`` or an ingest that hangs: :func:`read_body` streams a body and stops past its cap,
:func:`check_json_depth` refuses a JSON document nested deeper than its limit before it is parsed, and
:func:`deadline` bounds a whole request (connect, redirects and every read), not only each read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from itertools import accumulate
from typing import Any

import httpx

from connectors.exceptions import ConnectorParseError, ConnectorTimeoutError

MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a body, decompressed; an API page is a few MB at most
MAX_JSON_DEPTH = 256  # no API nests near this; Python's parser fails near 1,000
REQUEST_DEADLINE = 120.0  # seconds for one attempt: connect, redirects, headers and the whole body

_UNESCAPED_STRING = re.compile(rb'"[^"]*"')
_NOT_QUOTES_OR_BRACKETS = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_COMPRESSED_PIECE = 4096  # bytes of compressed input inflated at a time (at most ~4 MB out)
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*[\[{]")  # what json.loads accepts, BOM included


class ResponseLimitError(ConnectorParseError):
    """An answer over a size or depth limit: a parse error that is never retried (the same answer would come)."""


class _Slices(httpx.AsyncByteStream):
    """A response stream re-cut into pieces of at most ``size`` bytes.

    httpx inflates each piece it receives in one step; deflate expands at most about 1,032 times, so a
    compressed piece of ``size`` bytes never grows past about a thousand times that in memory.
    """

    def __init__(self, stream: httpx.AsyncByteStream, size: int) -> None:
        self._stream, self._size = stream, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            for start in range(0, len(chunk), self._size):
                yield chunk[start:start + self._size]

    async def aclose(self) -> None:
        await self._stream.aclose()


async def read_body(response: httpx.Response, max_bytes: int, what: str, connector: str | None,
                    setting: str = "max_response_bytes") -> bytes:
    """The body of a streamed ``response``, decompressed, refused once it (or its wire size) passes ``max_bytes``.

    A declared ``Content-Length`` over the cap is refused before anything is read; a compressed body is
    inflated a few KB of input at a time, so a gzip bomb costs about ``max_bytes`` of memory. ``setting``
    names the knob to raise in the message. Raises :class:`ResponseLimitError`.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseLimitError(f"{what}: Content-Length {declared} is over {setting}={max_bytes}",
                                 connector=connector)
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        response.stream = _Slices(response.stream, _COMPRESSED_PIECE)  # type: ignore[arg-type]
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > max_bytes or response.num_bytes_downloaded > max_bytes:
            raise ResponseLimitError(f"{what}: the body is larger than {setting}={max_bytes} "
                                     f"(after decompression); raise {setting} if the API really sends that much",
                                     connector=connector)
        body.extend(chunk)
    return bytes(body)


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count).

    Escaped backslashes and quotes go first (pairs left to right, as JSON reads them), then everything
    but quotes and brackets; two adjacent quotes enclose nothing, so dropping them keeps every other
    quote's role. What is left is a short text of brackets and the few strings that hold brackets.
    """
    skeleton = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_QUOTES_OR_BRACKETS)
    brackets = _UNESCAPED_STRING.sub(b"", skeleton.replace(b'""', b""))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_json_depth(body: bytes, max_depth: int, what: str, connector: str | None) -> None:
    """Refuse a body that looks like JSON and nests deeper than ``max_depth`` (:class:`ResponseLimitError`).

    Runs before parsing, so the parser's own recursion limit is never reached; a body with fewer
    brackets than the limit is passed without scanning.
    """
    if not _JSON_START.match(body) or body.count(b"[") + body.count(b"{") <= max_depth:
        return
    depth = json_depth(body)
    if depth > max_depth:
        raise ResponseLimitError(f"{what}: the JSON nests {depth} levels deep, over max_json_depth={max_depth}",
                                 connector=connector)


def parse_json(body: bytes, what: str, connector: str | None) -> Any:
    """``body`` (already through :func:`check_json_depth`) parsed; :class:`ConnectorParseError` when it is not JSON."""
    try:
        return json.loads(body)
    except RecursionError:  # nesting the depth scan could not see (a UTF-16 body)
        raise ResponseLimitError(f"{what}: the JSON nests too deep to parse", connector=connector) from None
    except ValueError as exc:
        raise ConnectorParseError(
            f"{what}: response is not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})", connector=connector
        ) from None


def loaded_response(response: httpx.Response, body: bytes) -> httpx.Response:
    """A copy of a streamed ``response`` holding ``body`` (already decoded), readable with ``.json()``/``.text``."""
    dropped = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    loaded = httpx.Response(response.status_code, headers=headers, content=body, request=response.request,
                            extensions=response.extensions, history=response.history)
    loaded.next_request = response.next_request
    return loaded


@contextlib.asynccontextmanager
async def deadline(seconds: float, what: str, connector: str | None) -> AsyncIterator[None]:
    """Bound the block to ``seconds`` of wall time; past it, :class:`ConnectorTimeoutError` (retryable)."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            yield
    except TimeoutError:
        if not timer.expired():  # a timeout raised inside the block, not ours
            raise
        raise ConnectorTimeoutError(
            f"{what}: no complete answer within request_deadline={seconds:g}s (a stalled or dripping server)",
            connector=connector,
        ) from None
