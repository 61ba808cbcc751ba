"""Credentials as the guide promises them (issue 13): AWS regions, providers users write, async lookups,
the guide's dataclass field order."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from connectors.credentials import (
    AWSSecretsManagerProvider,
    CachedCredentialProvider,
    ChainedCredentialProvider,
    CredentialProvider,
    EnvCredentialProvider,
    aget_credential,
)
from connectors.exceptions import ConnectorAuthError, ConnectorValidationError, is_retryable_error
from connectors.hubspot.credentials import HubSpotCredentials
from connectors.redact import redact
from connectors.stripe.credentials import StripeCredentials
from tests.connectors.core_support import FakeClock


class VaultProvider:
    """A provider as a user writes it after the guide: only ``get(self, name)``; it counts its reads."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads: list[tuple[str, int]] = []  # (name, thread id)

    def get(self, name: str) -> str | None:
        self.reads.append((name, threading.get_ident()))
        return self.values.get(name)


class VaultSubclass(CredentialProvider):
    """The same, subclassing the guide's CredentialProvider and overriding ``get`` alone."""

    def get(self, name: str) -> str | None:
        return {"HUBSPOT_ACCESS_TOKEN": "pat-na1-subclassed-0000"}.get(name)


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS keys, no region anywhere (environment or a config file)."""
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(var, "testing")


# --- AWS region ---------------------------------------------------------------------------------------

def test_aws_provider_without_a_region_reads_aws_region(aws_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with mock_aws():
        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="prod/stripe", SecretString=json.dumps({"STRIPE_API_KEY": "sk_test_euRegionKey1234"}))
        assert AWSSecretsManagerProvider("prod/stripe").get("STRIPE_API_KEY") == "sk_test_euRegionKey1234"


def test_aws_region_comes_before_aws_default_region(aws_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(Name="prod/plain", SecretString="v-eu-1")
        assert AWSSecretsManagerProvider("prod/plain").get("prod/plain") == "v-eu-1"
        monkeypatch.delenv("AWS_REGION")
        assert AWSSecretsManagerProvider("prod/plain").get("prod/plain") is None  # us-east-1 has no such secret


def test_aws_provider_with_no_region_is_a_configuration_error_saying_what_to_set(aws_keys: None) -> None:
    with mock_aws(), pytest.raises(ConnectorValidationError, match="set AWS_REGION") as caught:
        AWSSecretsManagerProvider("prod/stripe").get("STRIPE_API_KEY")
    assert not is_retryable_error(caught.value)


# --- providers a user writes: get(name) only -----------------------------------------------------------

def test_cached_and_chained_accept_a_provider_with_only_get_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_ONLY_KEY", raising=False)
    vault = VaultProvider({"VAULT_ONLY_KEY": "vault-value-73a9c1"})
    chained = ChainedCredentialProvider([EnvCredentialProvider(), vault])
    cached = CachedCredentialProvider(chained, ttl=300, clock=FakeClock())
    assert cached.get("VAULT_ONLY_KEY") == "vault-value-73a9c1"
    assert cached.get("VAULT_ONLY_KEY") == "vault-value-73a9c1"
    assert [name for name, _ in vault.reads] == ["VAULT_ONLY_KEY"]  # the second read came from the cache
    assert cached.get("NOWHERE_AT_ALL") is None
    assert "vault-value-73a9c1" not in redact("leaked vault-value-73a9c1")  # the outer get registered it
    assert CachedCredentialProvider(VaultSubclass()).require("HUBSPOT_ACCESS_TOKEN") == "pat-na1-subclassed-0000"


def test_integration_credentials_read_from_a_provider_with_only_get_name() -> None:
    vault = VaultProvider({"STRIPE_API_KEY": "sk_test_vault0000000000000"})
    creds = StripeCredentials.from_env(vault)
    assert creds.secret_key == "sk_test_vault0000000000000"
    assert "sk_test_vault0000000000000" not in redact("key sk_test_vault0000000000000")
    with pytest.raises(ConnectorAuthError, match="STRIPE_API_KEY is not set"):
        StripeCredentials.from_env(VaultProvider({}))


def test_invalidate_makes_the_next_read_ask_the_source() -> None:
    vault = VaultProvider({"ROTATING_KEY": "first-value-0001"})
    cached = CachedCredentialProvider(ChainedCredentialProvider([vault]), ttl=300, clock=FakeClock())
    assert cached.get("ROTATING_KEY") == "first-value-0001"
    vault.values["ROTATING_KEY"] = "second-value-0002"
    assert cached.get("ROTATING_KEY") == "first-value-0001"
    cached.invalidate("ROTATING_KEY")
    assert cached.get("ROTATING_KEY") == "second-value-0002"


async def test_async_lookup_runs_the_blocking_read_in_a_worker_thread() -> None:
    vault = VaultProvider({"ASYNC_KEY": "async-value-5d2e"})
    loop_thread = threading.get_ident()
    values = await asyncio.gather(aget_credential(vault, "ASYNC_KEY"),
                                  CachedCredentialProvider(vault).aget("ASYNC_KEY"))
    assert values == ["async-value-5d2e", "async-value-5d2e"]
    assert len(vault.reads) == 2 and all(thread != loop_thread for _, thread in vault.reads)


# --- the guide's dataclass field order -----------------------------------------------------------------

def test_credential_dataclasses_keep_the_guides_field_order() -> None:
    assert [f.name for f in dataclasses.fields(StripeCredentials)][:2] == ["secret_key", "webhook_secret"]
    assert [f.name for f in dataclasses.fields(HubSpotCredentials)][:2] == ["access_token", "base_url"]
    regional = HubSpotCredentials("pat-na1-positional-0000", "https://api-eu1.hubapi.com")
    assert regional.base_url == "https://api-eu1.hubapi.com" and regional.client_secret is None
    stripe = StripeCredentials("sk_test_positional0000", "whsec_positional0000")
    assert stripe.webhook_secret == "whsec_positional0000"
