"""The guide contract: the code examples of CONNECTOR_PATTERNS.md run as written.

Only the module paths differ (aragora.connectors.X -> connectors.X, aragora.resilience ->
connectors.resilience, aragora.reasoning.provenance -> connectors.provenance). Where the guide
writes ``...`` for a body or an argument list, the test fills in the smallest real thing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from moto import mock_aws
from pytest_httpx import HTTPXMock

from connectors.base import BaseConnector, Evidence
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorCircuitOpenError,
    ConnectorError,
    ConnectorNotFoundError,
    ConnectorRateLimitError,
    connector_error_handler,
    get_retry_delay,
    is_retryable_error,
)
from connectors.provenance import ProvenanceManager, SourceType
from tests.connectors.core_support import HN_ID_OFFSET, TokenHNConnector, hit_to_evidence, hits_of

# --- Core Interface ---------------------------------------------------------------------------

class MyConnector(BaseConnector):
    """Connector for MySource."""

    def __init__(self, *, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._api_key = self._credential("api_key", api_key)

    @property
    def name(self) -> str:
        return "MySource"

    @property
    def source_type(self) -> SourceType:
        return SourceType.WEB_SEARCH  # or appropriate type

    @property
    def is_available(self) -> bool:
        """Check if required dependencies are installed."""
        return True

    @property
    def is_configured(self) -> bool:
        """Check if API keys are configured."""
        return bool(self._api_key)

    async def search(
        self,
        query: str,
        limit: int = 10,
        **kwargs,
    ) -> list[Evidence]:
        """Search for evidence matching query."""
        data = await self._get_json("/search", {"query": query, "page": 0, "hitsPerPage": limit})
        return [hit_to_evidence(hit, "mysource", self.source_type) for hit in hits_of(data, self.name)]

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """Fetch specific evidence by ID."""
        index = int(evidence_id.rsplit(":", 1)[-1]) - HN_ID_OFFSET
        data = await self._get_json("/search", {"query": "", "page": index, "hitsPerPage": 1})
        hits = hits_of(data, self.name)
        return hit_to_evidence(hits[0], "mysource", self.source_type) if hits else None


async def test_core_interface_connector_searches_and_fetches_from_the_simulator(apisim) -> None:
    connector = MyConnector(api_key="my-source-key-7d1e", base_url=apisim.hn)
    assert connector.name == "MySource"
    assert connector.source_type is SourceType.WEB_SEARCH
    assert connector.is_available and connector.is_configured
    assert not MyConnector(base_url=apisim.hn).is_configured

    results = await connector.search("rate limiting", limit=5)
    assert [e.source_id for e in results] == [str(HN_ID_OFFSET + i) for i in range(5)]
    assert all(isinstance(e, Evidence) and e.content and e.title for e in results)

    fetched = await connector.fetch(results[3].id)
    assert fetched == results[3]
    await connector.close()


# --- Evidence Dataclass -------------------------------------------------------------------------

def test_evidence_dataclass_has_the_guide_fields_defaults_and_score() -> None:
    evidence = Evidence(id="x:1", source_type=SourceType.DOCUMENT, source_id="/tmp/a.md", content="text")
    assert (evidence.title, evidence.created_at, evidence.author, evidence.url) == ("", None, None, None)
    assert (evidence.confidence, evidence.freshness, evidence.authority) == (0.5, 1.0, 0.5)
    assert evidence.metadata == {}
    assert evidence.reliability_score == pytest.approx(0.4 * 0.5 + 0.3 * 1.0 + 0.3 * 0.5)


# --- Provenance Integration ---------------------------------------------------------------------

async def test_provenance_integration_example_records_every_result(apisim, capsys) -> None:
    connector = TokenHNConnector(
        token="...",
        provenance=ProvenanceManager(),
        base_url=apisim.hn,
    )

    # Search and automatically record in provenance chain
    results = await connector.search_and_record(
        query="rate limiting implementation",
        claim_id="claim_123",  # Optional link to a claim
        limit=5,
    )

    for evidence, record in results:
        print(f"Evidence: {evidence.title}")
        print(f"Provenance: {record.id if record else 'Not recorded'}")

    printed = capsys.readouterr().out.splitlines()
    assert len(results) == 5 and len(printed) == 10
    records = connector.provenance.records
    assert [r.id for _, r in results] == [r.id for r in records]
    assert all(line.startswith("Provenance: prov_") for line in printed[1::2])
    assert [c.evidence_id for c in connector.provenance.citations_for("claim_123")] == [e.id for e, _ in results]
    assert connector.provenance.verify_chain()
    await connector.close()


# --- Error Hierarchy ----------------------------------------------------------------------------

def test_error_hierarchy_matches_the_guide() -> None:
    from connectors import exceptions

    names = [
        "ConnectorAuthError", "ConnectorRateLimitError", "ConnectorTimeoutError", "ConnectorNetworkError",
        "ConnectorAPIError", "ConnectorNotFoundError", "ConnectorValidationError", "ConnectorQuotaError",
        "ConnectorParseError", "ConnectorCircuitOpenError",
    ]
    assert issubclass(exceptions.ConnectorError, Exception)
    for name in names:
        assert issubclass(getattr(exceptions, name), exceptions.ConnectorError), name
    assert exceptions.ConnectorRateLimitError.retry_after is None
    assert exceptions.ConnectorAPIError.status_code is None


# --- Using the Error Handler --------------------------------------------------------------------

class CustomerClient:
    """A stand-in for an integration connector's ``get_customer`` (a raw httpx call)."""

    async def get_customer(self, customer_id: str) -> dict[str, Any]:
        """GET one customer; HTTP errors surface as httpx.HTTPStatusError."""
        async with httpx.AsyncClient(base_url="https://api.stripe.test") as client:
            response = await client.get(f"/v1/customers/{customer_id}")
            response.raise_for_status()
            return response.json()


async def test_error_handler_example_maps_and_classifies_errors(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "0"}, json={"message": "slow down"})
    httpx_mock.add_response(json={"id": "cus_1"})
    connector, customer_id = CustomerClient(), "cus_1"

    with pytest.raises(ConnectorError) as caught:
        # Context manager for error handling
        async with connector_error_handler("fetch_customer"):
            customer = await connector.get_customer(customer_id)
    error = caught.value
    assert isinstance(error, ConnectorRateLimitError) and error.retry_after == 0.0

    # Check if error is retryable
    if is_retryable_error(error):
        delay = get_retry_delay(error)
        await asyncio.sleep(delay)

    async with connector_error_handler("fetch_customer"):
        customer = await connector.get_customer(customer_id)
    assert customer == {"id": "cus_1"}


# --- Credential Providers -----------------------------------------------------------------------

def test_credential_providers_example_with_env_and_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.credentials import (
        AWSSecretsManagerProvider,
        CachedCredentialProvider,
        ChainedCredentialProvider,
        CredentialProvider,
        EnvCredentialProvider,
        get_credential_provider,
    )

    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "STRIPE_API_KEY": "sk_test_guideEnvKey42"}.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        import boto3

        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="prod/stripe", SecretString=json.dumps({"STRIPE_WEBHOOK_SECRET": "whsec_guideAwsSecret42"})
        )

        # Environment variable provider
        env_provider = EnvCredentialProvider()
        api_key = env_provider.get("STRIPE_API_KEY")

        # AWS Secrets Manager provider
        aws_provider = AWSSecretsManagerProvider(
            secret_name="prod/stripe",
            region="us-east-1",
        )

        # Chained provider (tries each in order)
        provider = ChainedCredentialProvider([
            EnvCredentialProvider(),
            AWSSecretsManagerProvider("prod/stripe"),
        ])

        # Cached provider (reduces API calls)
        cached = CachedCredentialProvider(provider, ttl=300)

        assert api_key == "sk_test_guideEnvKey42"
        assert aws_provider.get("STRIPE_WEBHOOK_SECRET") == "whsec_guideAwsSecret42"
        assert cached.get("STRIPE_API_KEY") == "sk_test_guideEnvKey42"
        assert cached.get("STRIPE_WEBHOOK_SECRET") == "whsec_guideAwsSecret42"
        assert cached.get("NOT_ANYWHERE") is None
    assert all(isinstance(p, CredentialProvider) for p in (env_provider, aws_provider, provider, cached))
    assert isinstance(get_credential_provider(), EnvCredentialProvider)


# --- Built-in Retry with Backoff ----------------------------------------------------------------

async def test_builtin_retry_example_retries_a_rate_limit_then_parses(httpx_mock: HTTPXMock) -> None:
    class MyConnector(BaseConnector):
        name = "MyRetrySource"
        source_type = SourceType.WEB_SEARCH

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(
                max_retries=3,
                base_delay=1.0,
                max_delay=30.0,
                enable_circuit_breaker=True,
                **kwargs,
            )

        async def search(self, query: str, limit: int = 10) -> list[Evidence]:
            async def do_request():
                response = await self._client.get("/search", params={"q": query})
                response.raise_for_status()
                return response.json()

            # Automatic retry with backoff
            data = await self._request_with_retry(do_request, "search")
            return [self._parse_evidence(item) for item in data["results"]]

        def _parse_evidence(self, item: dict[str, Any]) -> Evidence:
            return Evidence(id=f"my:{item['id']}", source_type=self.source_type, source_id=item["id"],
                            content=item["text"])

        async def fetch(self, evidence_id: str) -> Evidence | None:
            return None

    url = "https://my.test/api/search?q=breaker"
    httpx_mock.add_response(url=url, status_code=429, headers={"Retry-After": "0"})
    httpx_mock.add_response(url=url, json={"results": [{"id": "1", "text": "a breaker opens"}]})
    httpx_mock.add_response(url="https://my.test/api/search?q=gone", status_code=404)
    connector = MyConnector(base_url="https://my.test/api")

    assert [e.content for e in await connector.search("breaker")] == ["a breaker opens"]
    with pytest.raises(ConnectorNotFoundError):  # 4xx other than 429: no retry (one request)
        await connector.search("gone")
    assert len(httpx_mock.get_requests()) == 3
    await connector.close()


# --- Circuit Breaker ------------------------------------------------------------------------------

async def test_circuit_breaker_example_fails_fast_once_open() -> None:
    from connectors.resilience import get_circuit_breaker

    calls = 0

    async def api_call() -> str:
        nonlocal calls
        calls += 1
        raise ConnectorAPIError("HTTP 503", connector="stripe", status_code=503)

    async def guarded() -> Any:
        # Get named circuit breaker
        breaker = get_circuit_breaker("stripe_api")

        # Check before request
        if breaker.can_proceed():
            try:
                result = await api_call()
                breaker.record_success()
            except Exception:
                breaker.record_failure()
                raise
        else:
            # Circuit is open - fail fast
            cooldown = breaker.cooldown_remaining()
            raise ConnectorCircuitOpenError(f"Circuit open, {cooldown:.1f}s remaining")
        return result

    for _ in range(5):  # the default threshold
        with pytest.raises(ConnectorAPIError):
            await guarded()
    with pytest.raises(ConnectorCircuitOpenError, match=r"Circuit open, (60\.0|59\.\d)s remaining"):
        await guarded()
    assert calls == 5


# --- Recovery Strategies --------------------------------------------------------------------------

async def test_recovery_strategies_example(apisim) -> None:
    from connectors.recovery import (
        RecoveryConfig,
        RecoveryStrategy,
        create_recovery_chain,
        with_recovery,
    )

    connector = TokenHNConnector(token="recovery-example-token", base_url=apisim.hn)

    # Define recovery config
    config = RecoveryConfig(
        strategy=RecoveryStrategy.EXPONENTIAL_BACKOFF,
        max_retries=3,
        base_delay=1.0,
    )

    # Apply recovery to a function
    @with_recovery(config)
    async def fetch_data():
        return await connector.search("query")

    # Chain multiple strategies
    recovery_chain = create_recovery_chain([
        RecoveryConfig(strategy=RecoveryStrategy.RETRY_ONCE),
        RecoveryConfig(strategy=RecoveryStrategy.FALLBACK, fallback_value=[]),
    ])

    assert len(await fetch_data()) == 10

    @recovery_chain
    async def missing() -> list[Evidence]:
        raise ConnectorNotFoundError("no such item", connector="HNTest")

    assert await missing() == []  # not retryable: no retry delay, straight to the fallback
    await connector.close()


# --- Cache with TTL -------------------------------------------------------------------------------

async def test_cache_example_serves_the_second_fetch_from_memory(apisim) -> None:
    class MyConnector(BaseConnector):
        name = "MyCachedSource"
        source_type = SourceType.FORUM

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(
                max_cache_entries=500,
                cache_ttl_seconds=3600.0,  # 1 hour
                **kwargs,
            )

        async def search(self, query: str, limit: int = 10, **kwargs: Any) -> list[Evidence]:
            return []

        async def fetch(self, evidence_id: str) -> Evidence | None:
            # Check cache first
            cached = self._cache_get(evidence_id)
            if cached:
                return cached

            # Fetch from API
            evidence = await self._fetch_from_api(evidence_id)

            # Store in cache
            if evidence:
                self._cache_put(evidence_id, evidence)

            return evidence

        async def _fetch_from_api(self, evidence_id: str) -> Evidence | None:
            index = int(evidence_id) - HN_ID_OFFSET
            data = await self._get_json("/search", {"query": "", "page": index, "hitsPerPage": 1})
            hits = hits_of(data, self.name)
            return hit_to_evidence(hits[0], "mycached", self.source_type) if hits else None

        def get_cache_stats(self) -> dict:
            return self._cache_stats()

    connector = MyConnector(base_url=apisim.hn)
    item_id = str(HN_ID_OFFSET + 7)
    before = apisim.stats()["requests"]
    first = await connector.fetch(item_id)
    second = await connector.fetch(item_id)
    assert first is second and first is not None and first.source_id == item_id
    assert apisim.stats()["requests"] - before == 1
    stats = connector.get_cache_stats()
    assert (stats["entries"], stats["hits"], stats["misses"]) == (1, 1, 1)
    assert (stats["max_entries"], stats["ttl_seconds"]) == (500, 3600.0)
    await connector.close()
