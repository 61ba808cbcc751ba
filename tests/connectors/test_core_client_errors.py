"""Errors from any HTTP client are classified: requests, urllib3 and aiohttp like httpx (issue 13).

requests and urllib3 are installed (as dependencies of boto3/moto), so their real exceptions are raised,
mostly by real calls to a loopback socket; aiohttp is not a dependency, so stand-in classes named and
placed like aiohttp's stand for it when it is absent.
"""

from __future__ import annotations

import errno
import importlib.util
import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import requests
import requests.exceptions
import urllib3
import urllib3.exceptions

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNetworkError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorRateLimitError,
    ConnectorTimeoutError,
    ConnectorValidationError,
    connector_error_handler,
    is_retryable_error,
    map_exception,
)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _requests_response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers or {})
    answer.request = requests.Request("GET", "https://api.example.test/v1/items?api_key=abcdef123456").prepare()
    return answer


def test_requests_read_timeout_from_a_real_call_is_a_retryable_timeout(silent_port: int) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout) as caught:
        requests.get(f"http://127.0.0.1:{silent_port}/", timeout=0.2)
    assert is_retryable_error(caught.value)
    with pytest.raises(ConnectorTimeoutError, match=r"\[Example\] search failed: request timed out \(ReadTimeout\)"), \
            connector_error_handler("search", connector="Example"):
        raise caught.value


def test_requests_refused_connection_from_a_real_call_is_a_retryable_network_error(closed_port: int) -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{closed_port}/?api_key=abcdef123456", timeout=2)
    mapped = map_exception(caught.value, "search", "Example")
    assert isinstance(mapped, ConnectorNetworkError) and is_retryable_error(caught.value)
    assert "abcdef123456" not in str(mapped)


def test_urllib3_errors_from_real_calls_are_retryable(silent_port: int, closed_port: int) -> None:
    with urllib3.PoolManager(retries=False) as pool:
        with pytest.raises(urllib3.exceptions.ReadTimeoutError) as timeout:
            pool.request("GET", f"http://127.0.0.1:{silent_port}/", timeout=0.2)
        with pytest.raises(urllib3.exceptions.NewConnectionError) as refused:
            pool.request("GET", f"http://127.0.0.1:{closed_port}/", timeout=2)
    assert isinstance(map_exception(timeout.value, "op"), ConnectorTimeoutError)
    assert isinstance(map_exception(refused.value, "op"), ConnectorNetworkError)
    # The client's own retries used up: classified by the failure that used them up.
    used_up = urllib3.exceptions.MaxRetryError(None, "/", timeout.value)
    assert isinstance(map_exception(used_up, "op"), ConnectorTimeoutError) and is_retryable_error(used_up)
    dropped = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    assert isinstance(map_exception(dropped, "op"), ConnectorNetworkError) and is_retryable_error(dropped)


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retryable"),
    [
        (404, {}, ConnectorNotFoundError, False),
        (401, {}, ConnectorAuthError, False),
        (422, {}, ConnectorValidationError, False),
        (429, {"Retry-After": "7"}, ConnectorRateLimitError, True),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, ConnectorRateLimitError, True),
        (503, {}, None, True),
    ],
)
def test_requests_http_errors_map_by_status(
    status: int, headers: dict[str, str], expected: type | None, retryable: bool
) -> None:
    answer = _requests_response(status, headers)
    with pytest.raises(requests.exceptions.HTTPError) as caught:
        answer.raise_for_status()
    mapped = map_exception(caught.value, "GET items", "Example")
    assert getattr(mapped, "status_code", None) == status
    if expected is not None:
        assert isinstance(mapped, expected)
    assert is_retryable_error(caught.value) is retryable
    assert "abcdef123456" not in str(mapped)
    if status == 429:
        assert mapped.retry_after == 7.0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), ConnectorTimeoutError),
        (requests.exceptions.ChunkedEncodingError("connection broken"), ConnectorNetworkError),
        (requests.exceptions.SSLError("handshake failed"), ConnectorNetworkError),
        (requests.exceptions.InvalidURL("no host"), ConnectorValidationError),
        (requests.exceptions.MissingSchema("no scheme"), ConnectorValidationError),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), ConnectorParseError),
        (urllib3.exceptions.DecodeError("bad gzip"), ConnectorParseError),
        (urllib3.exceptions.LocationParseError("http://[::1"), ConnectorValidationError),
        (OSError(errno.EHOSTUNREACH, "No route to host"), ConnectorNetworkError),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ConnectorNetworkError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_client_and_os_errors_are_classified_by_their_hierarchy(error: BaseException, expected: type) -> None:
    assert isinstance(map_exception(error, "op"), expected)
    assert is_retryable_error(error) is (expected in (ConnectorTimeoutError, ConnectorNetworkError))


def test_file_system_errors_are_not_network_errors() -> None:
    for error in (FileNotFoundError(errno.ENOENT, "gone"), PermissionError(errno.EACCES, "denied")):
        assert map_exception(error, "op") is error and not is_retryable_error(error)


# --- aiohttp, by stand-ins when it is not installed -------------------------------------------------

def _aiohttp_stand_ins() -> SimpleNamespace:
    """Classes named, nested and placed (``aiohttp.client_exceptions``) like aiohttp's."""
    module = "aiohttp.client_exceptions"

    def define(name: str, *bases: type, **body: object) -> type:
        return type(name, bases, {"__module__": module, **body})

    def response_init(self: Exception, request_info: object, history: tuple, *, status: int, message: str = "",
                      headers: dict[str, str] | None = None) -> None:
        Exception.__init__(self, f"{status}, message={message!r}")
        self.request_info, self.status, self.message, self.headers = request_info, status, message, headers

    client_error = define("ClientError", Exception)
    connection_error = define("ClientConnectionError", client_error)
    server_connection_error = define("ServerConnectionError", connection_error)
    response_error = define("ClientResponseError", client_error, __init__=response_init)
    return SimpleNamespace(
        ClientResponseError=response_error,
        ContentTypeError=define("ContentTypeError", response_error),
        ClientConnectorError=define("ClientConnectorError", define("ClientOSError", connection_error, OSError)),
        ServerDisconnectedError=define("ServerDisconnectedError", server_connection_error),
        ServerTimeoutError=define("ServerTimeoutError", server_connection_error, TimeoutError),
        SocketTimeoutError=define("SocketTimeoutError", server_connection_error, TimeoutError),
        ClientPayloadError=define("ClientPayloadError", client_error),
        InvalidURL=define("InvalidURL", client_error, ValueError),
    )


@pytest.mark.skipif(importlib.util.find_spec("aiohttp") is not None, reason="aiohttp is installed")
def test_aiohttp_errors_are_classified_like_httpx() -> None:
    aio = _aiohttp_stand_ins()
    info = SimpleNamespace(method="GET", url="https://api.example.test/x", real_url="https://api.example.test/x")
    cases = [
        (aio.ServerTimeoutError("Timeout on reading data from socket"), ConnectorTimeoutError, True),
        (aio.SocketTimeoutError("socket read timeout"), ConnectorTimeoutError, True),
        (aio.ClientConnectorError("Cannot connect to host api.example.test:443"), ConnectorNetworkError, True),
        (aio.ServerDisconnectedError("Server disconnected"), ConnectorNetworkError, True),
        (aio.ClientPayloadError("Response payload is not completed"), ConnectorNetworkError, True),
        (aio.InvalidURL("not a url"), ConnectorValidationError, False),
        (aio.ContentTypeError(info, (), status=200, message="Attempt to decode JSON with unexpected mimetype"),
         ConnectorParseError, False),
        (aio.ClientResponseError(info, (), status=404, message="Not Found"), ConnectorNotFoundError, False),
        (aio.ClientResponseError(info, (), status=429, headers={"Retry-After": "12"}), ConnectorRateLimitError, True),
        (aio.ClientResponseError(info, (), status=502, message="Bad Gateway"), None, True),
    ]
    for error, expected, retryable in cases:
        mapped = map_exception(error, "op", "Example")
        assert expected is None or isinstance(mapped, expected), (error, mapped)
        assert is_retryable_error(error) is retryable, error
    assert map_exception(cases[8][0], "op").retry_after == 12.0
    assert map_exception(cases[9][0], "op").status_code == 502
