"""Every HTTP answer is bounded (issue 12): body size, decompressed size, JSON depth and an overall deadline.

Each case runs against a loopback server started here, for an evidence connector (the core's
HNTestConnector) and an integration connector (Stripe): a slow drip, a gzip bomb, deep JSON and
oversized bodies, declared or streamed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.exceptions import ConnectorParseError, ConnectorTimeoutError, ConnectorValidationError
from connectors.limits import MAX_JSON_DEPTH, MAX_RESPONSE_BYTES, ResponseLimitError, check_json_depth, json_depth
from connectors.newsapi import NewsAPIConnector
from connectors.stripe import StripeConnector, StripeCredentials
from tests.connectors.core_support import HNTestConnector

CAP = 1 << 20  # max_response_bytes in these tests
BOMB_BYTES = 256 << 20  # what the gzip bomb inflates to (about 250 KB on the wire)
CUSTOMER = {"id": "cus_1", "object": "customer", "created": 1_700_000_000, "hits": []}
DRIP_BYTES = 40  # the drip sends one byte every DRIP_PAUSE seconds: 4 s in all, no read ever waits long
DRIP_PAUSE = 0.1


def _gzip_bomb() -> bytes:
    """A gzip body that inflates to BOMB_BYTES of valid JSON (a customer with a long string of zeros)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = json.dumps(CUSTOMER)[:-1].encode() + b', "pad": "'
    parts = [packer.compress(head)]
    zeros = b"0" * (1 << 20)
    parts += [packer.compress(zeros) for _ in range((BOMB_BYTES - len(head)) >> 20)]
    parts += [packer.compress(b'"}'), packer.flush()]
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    """Answers by the last path segment: ok, drip, bomb, deep, brackets-in-strings, big, big-chunked, everything."""

    bomb = b""
    log: list[str] = []

    def do_GET(self) -> None:
        kind = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.log.append(kind)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            getattr(self, f"_{kind.replace('-', '_')}")()

    def _send(self, body: bytes, *, length: bool = True, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _ok(self) -> None:
        self._send(json.dumps(CUSTOMER).encode())

    def _brackets_in_strings(self) -> None:
        self._send(json.dumps({**CUSTOMER, "description": "[{" * 3000}).encode())

    def _deep(self) -> None:
        self._send(b"[" * 2000 + b"]" * 2000)

    _everything = _deep  # NewsAPI's /v2/everything

    def _bomb(self) -> None:
        self._send(self.bomb, Content_Encoding="gzip")

    def _big(self) -> None:
        self._send(json.dumps({**CUSTOMER, "pad": "x" * (2 * CAP)}).encode())

    def _big_chunked(self) -> None:  # no Content-Length: the body runs until the server closes
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(CUSTOMER)[:-1].encode() + b', "pad": "')
        for _ in range(3 * CAP // 65536):
            self.wfile.write(b"x" * 65536)
        self.wfile.write(b'"}')

    def _drip(self) -> None:
        body = json.dumps({**CUSTOMER, "pad": "d" * DRIP_BYTES}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:-DRIP_BYTES])
        for index in range(len(body) - DRIP_BYTES, len(body)):
            self.wfile.flush()
            time.sleep(DRIP_PAUSE)
            self.wfile.write(body[index:index + 1])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _Handler.bomb = _gzip_bomb()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def requests(server: str) -> list[str]:
    """The kinds the server was asked for during this test."""
    _Handler.log = []
    return _Handler.log


def settings(**overrides: Any) -> dict[str, Any]:
    """Fast, unpaced connector settings with a 1 MiB body cap."""
    return {"rate_limit": False, "base_delay": 0.01, "max_delay": 0.02, "max_response_bytes": CAP, **overrides}


async def evidence_get(server: str, kind: str, **overrides: Any) -> Any:
    """GET ``/<kind>`` through the evidence core's request path (``parse`` defaults to JSON)."""
    parse = overrides.pop("parse", "json")
    connector = HNTestConnector(base_url=server, **settings(**overrides))
    try:
        return await connector._request("GET", f"/{kind}", parse=parse)
    finally:
        await connector.close()


async def stripe_get(server: str, kind: str, **overrides: Any) -> Any:
    """``get_customer(kind)``: GET ``/v1/customers/<kind>`` through the integration request path."""
    creds = StripeCredentials(secret_key="sk_test_limits0123456789", webhook_secret="whsec_limits0123")
    async with StripeConnector(creds, base_url=server, **settings(**overrides)) as connector:
        return await connector.get_customer(kind)


FETCHERS = pytest.mark.parametrize("get", [evidence_get, stripe_get], ids=["evidence", "integration"])


@FETCHERS
async def test_a_normal_answer_and_brackets_inside_strings_pass(server: str, get: Any, requests: list[str]) -> None:
    assert (await get(server, "ok")) is not None
    assert (await get(server, "brackets-in-strings")) is not None  # 6,000 brackets, none of them nesting
    assert requests == ["ok", "brackets-in-strings"]


@FETCHERS
async def test_a_gzip_bomb_stops_at_the_cap_without_inflating(server: str, get: Any, requests: list[str]) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ResponseLimitError, match=f"larger than max_response_bytes={CAP} .after decompression"):
            await get(server, "bomb", **({"retry_parse_errors": True} if get is evidence_get else {}))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * CAP, f"{peak} bytes allocated for a {BOMB_BYTES}-byte bomb under a {CAP}-byte cap"
    assert requests == ["bomb"]  # a limit is not retried, even with retry_parse_errors


@FETCHERS
async def test_json_nested_2000_deep_is_a_parse_error_not_a_traceback(
    server: str, get: Any, requests: list[str]
) -> None:
    with pytest.raises(ConnectorParseError, match=f"nests 2000 levels deep, over max_json_depth={MAX_JSON_DEPTH}"):
        await get(server, "deep")
    assert requests == ["deep"]


async def test_a_connector_reading_its_own_responses_gets_them_bounded(server: str, requests: list[str]) -> None:
    # NewsAPI reads error bodies itself, so it sends through connectors.base.send_bounded, not _request
    connector = NewsAPIConnector(api_key="k" * 32, base_url=server, **settings())
    with pytest.raises(ResponseLimitError, match="nests 2000 levels deep"):
        await connector.search("deep")
    await connector.close()
    assert requests == ["everything"]


async def test_a_raw_response_handed_to_the_caller_is_depth_checked_too(server: str) -> None:
    # github and wikipedia take parse="response" and call .json() themselves
    with pytest.raises(ResponseLimitError, match="nests 2000 levels deep"):
        await evidence_get(server, "deep", parse="response")
    response = await evidence_get(server, "deep", parse="response", max_json_depth=2000)  # the limit is a setting
    assert response.status_code == 200 and response.content == b"[" * 2000 + b"]" * 2000


@FETCHERS
async def test_a_declared_body_over_the_cap_is_refused_before_reading(server: str, get: Any) -> None:
    with pytest.raises(ResponseLimitError, match=rf"Content-Length \d+ is over max_response_bytes={CAP}"):
        await get(server, "big")
    assert (await get(server, "big", max_response_bytes=4 * CAP)) is not None  # the cap is a setting


@FETCHERS
async def test_a_streamed_body_without_length_is_cut_at_the_cap(server: str, get: Any) -> None:
    with pytest.raises(ResponseLimitError, match=f"larger than max_response_bytes={CAP}"):
        await get(server, "big-chunked")


@FETCHERS
async def test_a_dripping_server_hits_the_overall_deadline_and_is_retried(
    server: str, get: Any, requests: list[str]
) -> None:
    # every read gets a byte within DRIP_PAUSE, far inside the 30 s read timeout; only a deadline ends it
    with pytest.raises(ConnectorTimeoutError, match=r"no complete answer within request_deadline=0\.5s"):
        await get(server, "drip", request_deadline=0.5, max_retries=1)
    assert requests == ["drip", "drip"]  # a timeout is retried (the guide), then raised


def test_limits_are_settings_with_defaults_an_api_can_override() -> None:
    hn = HNTestConnector()
    assert (hn.max_response_bytes, hn.max_json_depth, hn.request_deadline) == (MAX_RESPONSE_BYTES, MAX_JSON_DEPTH,
                                                                                120.0)

    class Verbose(HNTestConnector):
        MAX_RESPONSE_BYTES = 100 << 20

    assert Verbose().max_response_bytes == 100 << 20
    assert Verbose(max_response_bytes=5).max_response_bytes == 5
    for name, value in (("max_response_bytes", 0), ("max_json_depth", -1), ("request_deadline", 0)):
        with pytest.raises(ConnectorValidationError, match=name):
            HNTestConnector(**{name: value})


def _parsed_depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return 0 if children is None else 1 + max(map(_parsed_depth, children), default=0)


def test_the_depth_scan_ignores_strings_and_escapes() -> None:
    assert json_depth(b'{"a": [1, {"b": "]]]}}} \\" [[[["}]}') == 3
    for text in ('["\\\\", ["["]]', '[["\\\\\\"[{", "]"], {"k": ""}]', '{"":"","a":[[],{"b":"\\"]"}]}'):
        assert json_depth(text.encode()) == _parsed_depth(json.loads(text)), text
    assert json_depth(b"[]") == 1 and json_depth(b"") == 0
    check_json_depth(b"<feed>" + b"[" * 5000 + b"</feed>", 10, "xml", "t")  # not JSON: not scanned
    with pytest.raises(ResponseLimitError, match="nests 11 levels"):
        check_json_depth(b"\xef\xbb\xbf " + b"[" * 11 + b"]" * 11, 10, "bom", "t")
