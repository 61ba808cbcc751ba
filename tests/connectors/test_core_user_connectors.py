"""BaseConnector for code users write (issue 13): the guide's integration pattern assigns ``self._client``.

The classes below are the guide's code (CONNECTOR_PATTERNS.md, "Async Context Manager" and "Built-in
Retry with Backoff") on top of BaseConnector, with the smallest search/fetch the abstract base asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.base import BaseConnector, Evidence
from connectors.exceptions import ConnectorNotFoundError
from connectors.provenance import SourceType

API_KEY = "guide-pattern-key-61c0d2"


@dataclass
class MyCredentials:
    api_key: str
    base_url: str = "https://api.example.com"


class MyConnector(BaseConnector):
    """Connector for MyService API."""

    name = "MyService"
    source_type = SourceType.WEB_SEARCH

    def __init__(self, credentials: MyCredentials, **kwargs: Any):
        super().__init__(**kwargs)
        self.credentials = credentials
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> MyConnector:
        self._client = httpx.AsyncClient(
            base_url=self.credentials.base_url,
            headers={"Authorization": f"Bearer {self.credentials.api_key}"},
            timeout=30.0,
        )
        return self

    async def __aexit__(self, *args) -> None:
        if self._client:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if not self._client:
            raise RuntimeError("Connector not initialized. Use async context manager.")
        return self._client

    async def search(self, query: str, limit: int = 10, **kwargs: Any) -> list[Evidence]:
        data = await self._get_json("/search", {"q": query})
        return [Evidence(id=f"my:{r['id']}", source_type=self.source_type, source_id=r["id"], content=r["text"])
                for r in data["results"]]

    async def fetch(self, evidence_id: str) -> Evidence | None:
        return None


async def test_a_client_assigned_in_aenter_is_used_and_closed_by_its_owner(httpx_mock: HTTPXMock) -> None:
    url = "https://api.example.com/search?q=rotation"
    httpx_mock.add_response(url=url, status_code=429, headers={"Retry-After": "0"})
    httpx_mock.add_response(url=url, match_headers={"Authorization": f"Bearer {API_KEY}"},
                            json={"results": [{"id": "1", "text": "keys rotate"}]})
    connector = MyConnector(MyCredentials(api_key=API_KEY), rate_limit=False)
    async with connector:
        own = connector._client
        assert connector.client is own
        results = await connector.search("rotation")  # retried through the core, on the subclass's client
    assert [e.content for e in results] == ["keys rotate"]
    assert len(httpx_mock.get_requests()) == 2
    assert own.is_closed  # closed by its owner (the shared client has no Authorization header to match)


async def test_a_client_assigned_in_init_is_used_and_left_to_its_owner(httpx_mock: HTTPXMock) -> None:
    class InitClientConnector(MyConnector):
        def __init__(self, credentials: MyCredentials, **kwargs: Any):
            super().__init__(credentials, **kwargs)
            self._client = httpx.AsyncClient(base_url="https://eu.example.com/api",
                                             headers={"X-Api-Key": credentials.api_key})

        async def search(self, query: str, limit: int = 10, **kwargs: Any) -> list[Evidence]:
            async def do_request():
                response = await self._client.get("/search", params={"q": query})
                response.raise_for_status()
                return response.json()

            data = await self._request_with_retry(do_request, "search")
            return [Evidence(id=f"my:{r['id']}", source_type=self.source_type, source_id=r["id"],
                             content=r["text"]) for r in data["results"]]

    httpx_mock.add_response(url="https://eu.example.com/api/search?q=x", match_headers={"X-Api-Key": API_KEY},
                            json={"results": [{"id": "2", "text": "from the subclass's client"}]})
    httpx_mock.add_response(url="https://eu.example.com/api/search?q=gone", status_code=404)
    connector = InitClientConnector(MyCredentials(api_key=API_KEY))
    own = connector._client
    assert [e.content for e in await connector.search("x")] == ["from the subclass's client"]
    with pytest.raises(ConnectorNotFoundError):  # errors from the subclass's client map like the shared one's
        await connector.search("gone")
    await connector.close()
    assert not own.is_closed  # the connector closes only the client it opened itself
    await own.aclose()


async def test_assigning_none_falls_back_to_the_shared_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://shared.example.com/search?q=y", json={"results": []})
    connector = MyConnector(MyCredentials(api_key=API_KEY), base_url="https://shared.example.com")
    assert connector._client is connector._bound_state().client  # None assigned in __init__: the shared one
    assert await connector.search("y") == []
    await connector.close()
    assert connector._bound is None
