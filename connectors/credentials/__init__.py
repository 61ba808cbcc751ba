"""Credential providers: environment, AWS Secrets Manager, chained and cached.

Every value a provider hands out is registered for redaction, so it can never show up
in an error, a log line, Dagster metadata or a stored row.
"""

from __future__ import annotations

import functools
import math
import os

from connectors.credentials.aws import AWSSecretsManagerProvider
from connectors.credentials.base import (
    CredentialProvider,
    CredentialSource,
    aget_credential,
    get_credential,
    invalidate_credential,
)
from connectors.credentials.cached import CachedCredentialProvider
from connectors.credentials.chained import ChainedCredentialProvider
from connectors.credentials.env import EnvCredentialProvider
from connectors.exceptions import ConnectorValidationError

__all__ = [
    "AWSSecretsManagerProvider",
    "CachedCredentialProvider",
    "ChainedCredentialProvider",
    "CredentialProvider",
    "CredentialSource",
    "EnvCredentialProvider",
    "aget_credential",
    "get_credential",
    "get_credential_provider",
    "invalidate_credential",
    "reset_credential_providers",
]


DEFAULT_CACHE_TTL = 300.0  # seconds a value read from AWS Secrets Manager is reused


def _cache_ttl() -> float:
    """``ARAGORA_CREDENTIAL_CACHE_TTL`` in seconds (default 300); a one-line error for a bad value."""
    raw = os.environ.get("ARAGORA_CREDENTIAL_CACHE_TTL", "").strip()
    if not raw:
        return DEFAULT_CACHE_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = math.nan
    if not 0 < ttl < math.inf:
        raise ConnectorValidationError(
            f"ARAGORA_CREDENTIAL_CACHE_TTL={raw!r} is not a positive number of seconds; set it to e.g. 300"
        )
    return ttl


@functools.lru_cache(maxsize=16)
def _aws_provider(secret_name: str, region: str | None, ttl: float) -> CachedCredentialProvider:
    """One cached Secrets Manager provider per configuration, so its cache and client serve every lookup."""
    return CachedCredentialProvider(AWSSecretsManagerProvider(secret_name, region=region), ttl=ttl)


def reset_credential_providers() -> None:
    """Forget the memoised AWS providers and their cached values (tests; after changing the secret's settings)."""
    _aws_provider.cache_clear()


def _aws_from_env() -> CredentialProvider:
    secret_name = os.environ.get("ARAGORA_AWS_SECRET_NAME")
    if not secret_name:
        raise ConnectorValidationError(
            "ARAGORA_CREDENTIAL_PROVIDER asks for AWS Secrets Manager but ARAGORA_AWS_SECRET_NAME is not set; "
            "set it to the secret's name (and AWS_REGION or ARAGORA_AWS_REGION)."
        )
    region = os.environ.get("ARAGORA_AWS_REGION") or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION"
    )
    return _aws_provider(secret_name, region, _cache_ttl())


def get_credential_provider() -> CredentialProvider:
    """The provider chosen by ``ARAGORA_CREDENTIAL_PROVIDER``: ``env`` (default), ``aws`` or ``chained``.

    ``chained`` reads the environment first, then AWS Secrets Manager. Values read from AWS are cached
    for ``ARAGORA_CREDENTIAL_CACHE_TTL`` seconds (default 300) by one provider per secret, region and TTL.
    """
    kind = os.environ.get("ARAGORA_CREDENTIAL_PROVIDER", "env").strip().lower() or "env"
    if kind == "env":
        return EnvCredentialProvider()
    if kind == "aws":
        return _aws_from_env()
    if kind == "chained":
        return ChainedCredentialProvider([EnvCredentialProvider(), _aws_from_env()])
    raise ConnectorValidationError(
        f"ARAGORA_CREDENTIAL_PROVIDER={kind!r} is not known; use one of: env, aws, chained."
    )
