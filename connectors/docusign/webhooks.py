"""DocuSign Connect webhooks: HMAC signature verification and typed events.

Connect signs the raw body with every active HMAC key: ``X-DocuSign-Signature-1`` (and -2, -3,
... while keys rotate) is the base64 HMAC-SHA256 of the body; any one valid signature passes.
The scheme has no signed timestamp. The only time to check is the event's own
``generatedDateTime`` (read from the body after the signature is verified): when present it
must be within ``tolerance`` seconds of ``now``. A retried delivery keeps its original
``generatedDateTime``, so pass a larger ``tolerance`` (or None to skip the check) when retries
of older events must be accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.docusign.credentials import HMAC_KEY_ENV
from connectors.docusign.models import DocuSignEvent
from connectors.exceptions import ConnectorAuthError, ConnectorParseError
from connectors.text import parse_datetime
from connectors.webhooks import any_signature_matches, check_timestamp, hmac_sha256_b64

SIGNATURE_HEADER_PREFIX = "x-docusign-signature-"


def verify_signature(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`ConnectorAuthError` unless one ``X-DocuSign-Signature-N`` header signs ``payload``.

    ``now`` is epoch seconds (default: the clock). Comparison is constant time.
    """
    if not secret:
        raise ConnectorAuthError(f"no DocuSign Connect HMAC key: set {HMAC_KEY_ENV}", connector="docusign")
    candidates = [value for key, value in headers.items() if key.lower().startswith(SIGNATURE_HEADER_PREFIX)]
    if not candidates:
        raise ConnectorAuthError(
            "DocuSign webhook has no X-DocuSign-Signature-1 header (is HMAC enabled on the Connect configuration?)",
            connector="docusign",
        )
    if not any_signature_matches(hmac_sha256_b64(secret, payload), candidates):
        raise ConnectorAuthError("DocuSign webhook signature does not match the body", connector="docusign")
    if tolerance is None:
        return
    generated = _generated_at(payload)
    if generated is not None:
        check_timestamp(generated.timestamp(), tolerance, now, "docusign")


def parse_event(payload: bytes | str) -> DocuSignEvent:
    """The typed Connect event of a JSON (SIM) message; :class:`ConnectorParseError` for anything else."""
    return DocuSignEvent.from_api(_json_object(payload))


def _generated_at(payload: bytes) -> datetime | None:
    """The JSON message's generatedDateTime; None for legacy XML deliveries or when absent."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return parse_datetime(data.get("generatedDateTime")) if isinstance(data, dict) else None


def _json_object(payload: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise ConnectorParseError("DocuSign webhook body is not valid JSON", connector="docusign") from None
    if not isinstance(data, dict):
        raise ConnectorParseError("DocuSign webhook body is not a JSON object", connector="docusign")
    return data
