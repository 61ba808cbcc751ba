"""Credential providers: environment, AWS Secrets Manager (moto), chained, cached, selection, redaction."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from connectors.credentials import (
    AWSSecretsManagerProvider,
    CachedCredentialProvider,
    ChainedCredentialProvider,
    CredentialProvider,
    EnvCredentialProvider,
    get_credential_provider,
)
from connectors.exceptions import ConnectorAuthError, ConnectorError, ConnectorNetworkError, ConnectorValidationError
from tests.connectors.core_support import FakeClock

JSON_SECRET = {"STRIPE_API_KEY": "sk_test_awsJsonKey7731", "HUBSPOT_TOKEN": "hubspot-aws-value-9921"}
PLAIN_SECRET = "plain-aws-secret-value-5510"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto's Secrets Manager with a JSON secret (prod/stripe) and a plain-string one (prod/plain)."""
    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(var, value)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="prod/stripe", SecretString=json.dumps(JSON_SECRET))
        client.create_secret(Name="prod/plain", SecretString=PLAIN_SECRET)
        yield


class CountingProvider(CredentialProvider):
    """An in-memory provider that counts lookups (the slow backend behind a cache)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.lookups = 0

    def _lookup(self, name: str) -> str | None:
        self.lookups += 1
        return self.values.get(name)


# --- environment ------------------------------------------------------------------------------------

def test_env_provider_returns_the_value_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_API_KEY", "env-value-4f1c2b")
    monkeypatch.setenv("CORE_TEST_EMPTY", "")
    provider = EnvCredentialProvider()
    assert provider.get("CORE_TEST_API_KEY") == "env-value-4f1c2b"
    assert provider.get("CORE_TEST_EMPTY") is None
    assert provider.get("CORE_TEST_UNSET") is None
    assert EnvCredentialProvider(prefix="CORE_TEST_").get("API_KEY") == "env-value-4f1c2b"


def test_require_names_what_to_set() -> None:
    with pytest.raises(ConnectorAuthError, match="CORE_TEST_UNSET is not set") as caught:
        EnvCredentialProvider().require("CORE_TEST_UNSET", connector="Stripe")
    assert caught.value.connector == "Stripe"


# --- AWS Secrets Manager ------------------------------------------------------------------------------

def test_aws_json_secret_answers_its_keys(aws: None) -> None:
    provider = AWSSecretsManagerProvider("prod/stripe", region="us-east-1")
    assert provider.get("STRIPE_API_KEY") == "sk_test_awsJsonKey7731"
    assert provider.get("HUBSPOT_TOKEN") == "hubspot-aws-value-9921"
    assert provider.get("NOT_IN_SECRET") is None


def test_aws_plain_string_secret_answers_its_own_name(aws: None) -> None:
    provider = AWSSecretsManagerProvider("prod/plain", region="us-east-1")
    assert provider.get("prod/plain") == PLAIN_SECRET
    assert provider.get("STRIPE_API_KEY") is None


def test_aws_missing_secret_answers_none(aws: None) -> None:
    assert AWSSecretsManagerProvider("prod/does-not-exist", region="us-east-1").get("STRIPE_API_KEY") is None


def test_aws_sees_a_rotated_value_at_once(aws: None) -> None:
    provider = AWSSecretsManagerProvider("prod/plain", region="us-east-1")
    assert provider.get("prod/plain") == PLAIN_SECRET
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId="prod/plain", SecretString="rotated-aws-value-6612")
    assert provider.get("prod/plain") == "rotated-aws-value-6612"


def test_aws_access_denied_is_an_auth_error_naming_the_secret() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(ConnectorAuthError, match=r"prod/stripe.*AccessDeniedException"):
            AWSSecretsManagerProvider("prod/stripe", client=client).get("STRIPE_API_KEY")


def test_aws_unreachable_is_a_network_error() -> None:
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x", aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    with pytest.raises(ConnectorNetworkError, match="unreachable"):
        AWSSecretsManagerProvider("prod/stripe", client=client).get("STRIPE_API_KEY")


# --- chained and cached ----------------------------------------------------------------------------

def test_chained_returns_the_first_non_none_answer() -> None:
    first = CountingProvider({"A": "from-first-111"})
    second = CountingProvider({"A": "from-second-222", "B": "from-second-333"})
    chained = ChainedCredentialProvider([first, second])
    assert chained.get("A") == "from-first-111" and second.lookups == 0
    assert chained.get("B") == "from-second-333"
    assert chained.get("C") is None and (first.lookups, second.lookups) == (3, 2)
    with pytest.raises(ValueError):
        ChainedCredentialProvider([])


def test_chained_env_first_then_aws(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_envWinsKey4410")
    chained = ChainedCredentialProvider([EnvCredentialProvider(), AWSSecretsManagerProvider("prod/stripe")])
    assert chained.get("STRIPE_API_KEY") == "sk_test_envWinsKey4410"
    assert chained.get("HUBSPOT_TOKEN") == "hubspot-aws-value-9921"


def test_cached_keeps_hits_for_the_ttl_and_does_not_cache_misses() -> None:
    clock = FakeClock()
    backend = CountingProvider({"KEY": "cached-value-8181"})
    cached = CachedCredentialProvider(backend, ttl=300, clock=clock)
    assert cached.get("KEY") == "cached-value-8181"
    clock.advance(299)
    assert cached.get("KEY") == "cached-value-8181" and backend.lookups == 1
    clock.advance(1)
    backend.values["KEY"] = "rotated-value-8282"
    assert cached.get("KEY") == "rotated-value-8282" and backend.lookups == 2

    assert cached.get("NEW") is None
    backend.values["NEW"] = "appeared-value-8383"
    assert cached.get("NEW") == "appeared-value-8383"  # a miss was not remembered


# --- selection from the environment ------------------------------------------------------------------

def test_get_credential_provider_defaults_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_credential_provider(), EnvCredentialProvider)
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", " ENV ")
    assert isinstance(get_credential_provider(), EnvCredentialProvider)


def test_get_credential_provider_aws(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", "aws")
    monkeypatch.setenv("ARAGORA_AWS_SECRET_NAME", "prod/stripe")
    provider = get_credential_provider()
    assert isinstance(provider, CachedCredentialProvider)
    assert provider.get("STRIPE_API_KEY") == "sk_test_awsJsonKey7731"


def test_get_credential_provider_aws_needs_a_secret_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", "aws")
    with pytest.raises(ConnectorValidationError, match="ARAGORA_AWS_SECRET_NAME"):
        get_credential_provider()


def test_get_credential_provider_chained(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", "chained")
    monkeypatch.setenv("ARAGORA_AWS_SECRET_NAME", "prod/stripe")
    monkeypatch.setenv("HUBSPOT_TOKEN", "hubspot-env-value-1234")
    provider = get_credential_provider()
    assert isinstance(provider, ChainedCredentialProvider)
    assert provider.get("HUBSPOT_TOKEN") == "hubspot-env-value-1234"
    assert provider.get("STRIPE_API_KEY") == "sk_test_awsJsonKey7731"


@pytest.mark.parametrize("kind", ["aws", "chained"])
def test_many_reads_call_secrets_manager_once_per_configuration(
    aws: None, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    calls: list[str] = []
    real_client = boto3.client

    def counting_client(*args: object, **kwargs: object) -> object:
        client = real_client(*args, **kwargs)
        client.meta.events.register(
            "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"])
        )
        return client

    monkeypatch.setattr(boto3, "client", counting_client)
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", kind)
    monkeypatch.setenv("ARAGORA_AWS_SECRET_NAME", "prod/stripe")
    for _ in range(25):  # every connector construction asks get_credential_provider() afresh
        assert get_credential_provider().get("STRIPE_API_KEY") == "sk_test_awsJsonKey7731"
        assert get_credential_provider().get("HUBSPOT_TOKEN") == "hubspot-aws-value-9921"
    assert calls == ["prod/stripe", "prod/stripe"]  # one read per credential name, then the cache answers

    monkeypatch.setenv("ARAGORA_CREDENTIAL_CACHE_TTL", "60")  # another configuration: its own provider
    assert get_credential_provider().get("STRIPE_API_KEY") == "sk_test_awsJsonKey7731"
    assert len(calls) == 3


def test_the_aws_cache_ttl_is_a_setting(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", "aws")
    monkeypatch.setenv("ARAGORA_AWS_SECRET_NAME", "prod/stripe")
    assert get_credential_provider().ttl == 300.0
    monkeypatch.setenv("ARAGORA_CREDENTIAL_CACHE_TTL", " 45 ")
    assert get_credential_provider().ttl == 45.0
    for bad in ("five", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("ARAGORA_CREDENTIAL_CACHE_TTL", bad)
        with pytest.raises(ConnectorValidationError, match=rf"ARAGORA_CREDENTIAL_CACHE_TTL='{bad}' is not a positive"):
            get_credential_provider()


def test_get_credential_provider_rejects_an_unknown_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CREDENTIAL_PROVIDER", "vault")
    with pytest.raises(ConnectorValidationError, match=r"'vault' is not known; use one of: env, aws, chained"):
        get_credential_provider()


# --- redaction of handed-out values ----------------------------------------------------------------

def test_values_handed_out_are_redacted_from_later_errors(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_PLAIN", "unremarkable-env-value-3141")
    handed_out = [
        EnvCredentialProvider().get("CORE_TEST_PLAIN"),
        AWSSecretsManagerProvider("prod/plain").get("prod/plain"),
        CountingProvider({"X": "in-memory-value-2718"}).get("X"),
    ]
    for value in handed_out:
        error = ConnectorError(f"request with {value} failed", connector="X", details={"echo": value})
        assert value not in str(error) and value not in repr(error) and value not in json.dumps(error.details)


def test_aws_values_are_registered_as_soon_as_the_secret_is_read(aws: None) -> None:
    AWSSecretsManagerProvider("prod/stripe").get("STRIPE_API_KEY")  # reads every key of the secret
    error = ConnectorError(f"hubspot said {JSON_SECRET['HUBSPOT_TOKEN']}")
    assert JSON_SECRET["HUBSPOT_TOKEN"] not in str(error)


# --- values are cleaned when read (issue 12): trimmed, control characters refused by name ----------------------

def test_a_pasted_value_is_trimmed_by_every_provider(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TEST_PASTED", "  env-pasted-value-4471\r\n")
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="prod/pasted", SecretString=json.dumps({"CORE_TEST_PASTED": "aws-pasted-value-4472\n"}))
    assert EnvCredentialProvider().get("CORE_TEST_PASTED") == "env-pasted-value-4471"
    assert AWSSecretsManagerProvider("prod/pasted").get("CORE_TEST_PASTED") == "aws-pasted-value-4472"
    assert CountingProvider({"X": "\tmemory-value-4473 "}).get("X") == "memory-value-4473"
    assert CountingProvider({"X": " \r\n"}).get("X") is None


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x1b", "\x7f", "\x85", "\u200b"])
def test_a_control_character_inside_a_value_is_refused_naming_the_variable(
        aws: None, monkeypatch: pytest.MonkeyPatch, char: str) -> None:
    value = f"inner{char}ctl-value-4480"
    monkeypatch.setenv("CORE_TEST_CTL", value)
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="prod/ctl", SecretString=json.dumps({"CORE_TEST_CTL": value}))
    providers = [EnvCredentialProvider(), AWSSecretsManagerProvider("prod/ctl"),
                 CountingProvider({"CORE_TEST_CTL": value}),
                 ChainedCredentialProvider([CountingProvider({}), EnvCredentialProvider()])]
    for provider in providers:
        with pytest.raises(ConnectorAuthError, match=f"CORE_TEST_CTL contains the control character U\\+{ord(char):04X}"
                           ) as caught:
            provider.get("CORE_TEST_CTL")
        assert "ctl-value-4480" not in str(caught.value) and "inner" not in str(caught.value)


def test_integration_credentials_are_trimmed_and_checked_explicit_or_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.stripe.credentials import StripeCredentials

    assert StripeCredentials(secret_key="sk_test_pastedKey4490\r\n").secret_key == "sk_test_pastedKey4490"
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_envKey4491\n")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", " whsec_envSecret4492 ")
    from_env = StripeCredentials.from_env()
    assert (from_env.secret_key, from_env.webhook_secret) == ("sk_test_envKey4491", "whsec_envSecret4492")
    refused = r"StripeCredentials\.secret_key \(STRIPE_API_KEY\).*U\+000D"
    with pytest.raises(ConnectorAuthError, match=refused) as caught:
        StripeCredentials(secret_key="sk_test_in\rside4493")
    assert "side4493" not in str(caught.value)
    with pytest.raises(ConnectorAuthError, match="is empty"):
        StripeCredentials(secret_key=" \r\n")


def test_a_connector_argument_is_trimmed_and_checked() -> None:
    from connectors.github import GitHubConnector

    assert GitHubConnector(token="ghtoken-pasted-4495\r\n")._default_headers()["Authorization"] == (
        "Bearer ghtoken-pasted-4495")
    with pytest.raises(ConnectorAuthError, match=r"token \(argument of GitHubConnector\) contains the control char"):
        GitHubConnector(token="ghtoken\x1b[8m-4496")


def test_an_aws_error_about_a_secret_named_like_a_key_keeps_its_text() -> None:
    # "for secret 'prod/aragora-secret': EndpointConnectionError" was shown as "...-secret': ***".
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x", aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    with pytest.raises(ConnectorNetworkError, match=r"'prod/aragora-secret': EndpointConnectionError"):
        AWSSecretsManagerProvider("prod/aragora-secret", client=client).get("STRIPE_API_KEY")
