"""Credentials from AWS Secrets Manager (boto3)."""

from __future__ import annotations

import json
import os
from typing import Any

from connectors.credentials.base import CredentialProvider
from connectors.exceptions import ConnectorAuthError, ConnectorNetworkError, ConnectorValidationError
from connectors.redact import register_secret


class AWSSecretsManagerProvider(CredentialProvider):
    """One secret: a JSON object answers its keys; a plain string secret answers its own name.

    Each lookup reads the secret, so rotation shows at once; wrap the provider in
    ``CachedCredentialProvider`` to bound the calls.
    """

    def __init__(self, secret_name: str, region: str | None = None, client: Any = None) -> None:
        self.secret_name = secret_name
        self.region = region
        self._client = client

    def _secret_client(self) -> Any:
        """The Secrets Manager client, in ``region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``/the profile's.

        boto3 itself reads only ``AWS_DEFAULT_REGION``; no region at all is a configuration error (never retried).
        """
        if self._client is None:
            import boto3
            from botocore.exceptions import NoRegionError

            region = self.region or os.environ.get("AWS_REGION", "").strip() or None
            try:
                self._client = boto3.client("secretsmanager", region_name=region)
            except NoRegionError:
                raise ConnectorValidationError(
                    f"AWS Secrets Manager secret {self.secret_name!r} has no region: set AWS_REGION (or "
                    "AWS_DEFAULT_REGION, or ARAGORA_AWS_REGION for the pipelines), or pass region=..."
                ) from None
        return self._client

    def _load(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._secret_client().get_secret_value(SecretId=self.secret_name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                values: dict[str, str] = {}
            else:
                raise ConnectorAuthError(
                    f"AWS Secrets Manager refused secret {self.secret_name!r} ({code}); check the "
                    "IAM permissions and the region (ARAGORA_AWS_REGION)"
                ) from None
        except BotoCoreError as exc:
            raise ConnectorNetworkError(
                f"AWS Secrets Manager unreachable for secret {self.secret_name!r}: {type(exc).__name__}"
            ) from None
        else:
            raw = answer.get("SecretString")
            if raw is None and answer.get("SecretBinary") is not None:
                raw = answer["SecretBinary"].decode("utf-8")
            values = self._decode(raw or "")
        for value in values.values():
            register_secret(value)
        return values

    def _decode(self, raw: str) -> dict[str, str]:
        try:
            data = json.loads(raw)
        except ValueError:
            return {self.secret_name: raw} if raw else {}
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items() if v is not None}
        return {self.secret_name: raw}

    def _lookup(self, name: str) -> str | None:
        return self._load().get(name)

    def __repr__(self) -> str:
        return f"AWSSecretsManagerProvider({self.secret_name!r}, region={self.region!r})"
