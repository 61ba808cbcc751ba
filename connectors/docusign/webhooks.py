"""DocuSign Connect webhooks: HMAC signature verification and typed events.

Connect signs the raw body with every active HMAC key: ``X-DocuSign-Signature-1`` (and -2, -3,
... while keys rotate) is the base64 HMAC-SHA256 of the body; any one valid signature passes.
The scheme has no signed timestamp. The only time to check is the event's own
``generatedDateTime`` (read from the body after the signature is verified): it must be ISO 8601
and within ``tolerance`` seconds of ``now``, or the delivery is refused. A retried delivery keeps
its original ``generatedDateTime``, so pass a larger ``tolerance`` (or None to skip the check)
when retries of older events must be accepted. Connect events carry no id of their own: for the
replay check (``seen=``) a delivery is the digest of its body without ``retryCount``.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.docusign.credentials import HMAC_KEY_ENV
from connectors.docusign.models import DocuSignEvent
from connectors.exceptions import ConnectorParseError
from connectors.webhooks import BodySignature, body_digest, hmac_sha256_b64, load_json

SIGNATURE_HEADER_PREFIX = "x-docusign-signature-"
_NAME = "docusign"


def _signatures(headers: Mapping[str, str]) -> list[str]:
    """Every ``X-DocuSign-Signature-N`` value."""
    return [value for key, value in headers.items() if key.lower().startswith(SIGNATURE_HEADER_PREFIX)]


def _delivery_id(body: object) -> str | None:
    """A Connect message's identity: its body without the ``retryCount`` a retry changes."""
    return body_digest(body, drop=("retryCount",)) if isinstance(body, dict) else None


CONNECT_SIGNATURE = BodySignature(
    connector=_NAME,
    vendor="DocuSign",
    sign=hmac_sha256_b64,
    signatures=_signatures,
    time_path=("generatedDateTime",),
    delivery_id=_delivery_id,
    no_secret=f"no DocuSign Connect HMAC key: set {HMAC_KEY_ENV}",
    no_signature=(
        "DocuSign webhook has no X-DocuSign-Signature-1 header (is HMAC enabled on the Connect configuration?)"
    ),
    mismatch="DocuSign webhook signature does not match the body",
)
verify_signature = CONNECT_SIGNATURE.verify


def parse_event(payload: bytes | str) -> DocuSignEvent:
    """The typed Connect event of a JSON (SIM) message; :class:`ConnectorParseError` for anything else."""
    data = load_json(payload, "DocuSign", _NAME)
    if not isinstance(data, dict):
        raise ConnectorParseError("DocuSign webhook body is not a JSON object", connector=_NAME)
    return DocuSignEvent.from_api(data)
