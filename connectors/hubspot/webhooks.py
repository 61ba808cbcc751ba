"""HubSpot webhook verification (signature v3) and event parsing.

HubSpot sends ``X-HubSpot-Signature-v3``: base64 of HMAC-SHA256, under the app's client secret,
of ``method + URI + raw body + timestamp``, where the timestamp is ``X-HubSpot-Request-Timestamp``
(epoch milliseconds). Requests older than five minutes are to be rejected. The URI is the full
URL HubSpot called, with the URL-encoded characters of HubSpot's table decoded. With ``seen=`` a
delivery is also checked to be new: its ``eventId`` (a batch: the set of them) was not accepted before.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.exceptions import ConnectorAuthError, ConnectorParseError
from connectors.hubspot.models import HubSpotEvent
from connectors.webhooks import (
    SeenDeliveries,
    any_signature_matches,
    body_digest,
    check_replay,
    check_timestamp,
    header,
    hmac_sha256_b64,
    load_json,
)

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
DEFAULT_TOLERANCE = 300.0
_NAME = "hubspot"
_MAX_TIMESTAMP_DIGITS = 15  # epoch milliseconds reach 15 digits in the year 33658
# HubSpot's documented table of URL-encoded characters to decode in the URI before signing ("Validate the v3
# request signature", developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation).
_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}


def _signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-escapes decoded (either hex case)."""
    out = []
    i = 0
    while i < len(uri):
        escape = uri[i : i + 3].upper()
        if escape in _URI_DECODE:
            out.append(_URI_DECODE[escape])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def verify_signature(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    method: str,
    uri: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    seen: SeenDeliveries | None = None,
) -> None:
    """Check a delivery's v3 signature for ``method`` and the full request ``uri`` (constant-time).

    Raises :class:`ConnectorAuthError` when a header is missing or malformed, the signature does
    not match, or the timestamp is more than ``tolerance`` seconds from ``now`` (epoch seconds);
    with ``seen``, :class:`~connectors.webhooks.WebhookReplayError` when the events were already accepted.
    """
    if not secret:
        raise ConnectorAuthError("no HubSpot client secret given (HUBSPOT_CLIENT_SECRET)", connector=_NAME)
    signature = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise ConnectorAuthError(
            f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header: not a signed HubSpot v3 request",
            connector=_NAME,
        )
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise ConnectorAuthError(f"{TIMESTAMP_HEADER} is not epoch milliseconds", connector=_NAME)
    body = payload.encode() if isinstance(payload, str) else payload
    # A lone surrogate can never be part of what HubSpot signed: it encodes, and then simply does not match.
    message = (method.upper().encode("utf-8", "surrogatepass") + _signed_uri(uri).encode("utf-8", "surrogatepass")
               + body + timestamp.encode())
    if not any_signature_matches(hmac_sha256_b64(secret, message), [signature]):
        raise ConnectorAuthError(
            "HubSpot webhook signature does not match: wrong client secret, a different method or URI "
            "(use the full URL HubSpot called), or the body was altered",
            connector=_NAME,
        )
    check_timestamp(int(timestamp) / 1000, tolerance, now, _NAME)
    if seen is not None:
        check_replay(seen, _NAME, _delivery_id(load_json(body, "HubSpot", _NAME)), now, "HubSpot")


def _delivery_id(data: object) -> str | None:
    """A batch's identity: its one ``eventId``, or the digest of all of them (a retry resends the same events)."""
    events = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    ids = [event.get("eventId") if isinstance(event, dict) else None for event in events]
    if not ids or any(not isinstance(item, int | str) or isinstance(item, bool) or item == "" for item in ids):
        return None
    return str(ids[0]) if len(ids) == 1 else body_digest(sorted(str(item) for item in ids))


def parse_event(payload: bytes | str) -> list[HubSpotEvent]:
    """The typed events of a delivery's body: HubSpot batches them in a JSON array (verify it first)."""
    data = load_json(payload, "HubSpot", _NAME)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ConnectorParseError("HubSpot webhook body is neither an event nor an array of events", connector=_NAME)
    return [HubSpotEvent.from_api(item) for item in data]
