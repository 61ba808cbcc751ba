"""Stripe webhook verification (``Stripe-Signature``) and event parsing.

Stripe signs ``"{t}.{raw body}"`` with HMAC-SHA256 under the endpoint's secret and sends
``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` (several ``v1`` while a secret
is being rolled). A delivery is genuine when any ``v1`` matches and ``t`` is within the tolerance;
with ``seen=`` it is also new: the event ``id`` was not accepted before (a replay within the tolerance,
or a retry of a delivery already processed, raises :class:`~connectors.webhooks.WebhookReplayError`).
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.exceptions import ConnectorAuthError, ConnectorParseError
from connectors.stripe.models import StripeEvent
from connectors.webhooks import (
    SeenDeliveries,
    any_signature_matches,
    check_replay,
    check_timestamp,
    header,
    hmac_sha256_hex,
    load_json,
)

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE = 300.0
_NAME = "stripe"


def _parse_signature_header(value: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a ``Stripe-Signature`` header value."""
    timestamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = item
        elif key == "v1":
            signatures.append(item)
    if timestamp is None or not signatures:
        raise ConnectorAuthError(
            f"{SIGNATURE_HEADER} header has no t= timestamp or no v1= signature", connector=_NAME
        )
    try:
        return int(timestamp), signatures
    except ValueError:
        raise ConnectorAuthError(f"{SIGNATURE_HEADER} timestamp is not an integer", connector=_NAME) from None


def verify_signature(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    seen: SeenDeliveries | None = None,
) -> None:
    """Check a delivery's ``Stripe-Signature`` against the raw ``payload`` (constant-time).

    Raises :class:`ConnectorAuthError` when the header is missing or malformed, no ``v1``
    signature matches, or ``t`` is more than ``tolerance`` seconds from ``now`` (epoch seconds);
    with ``seen``, :class:`~connectors.webhooks.WebhookReplayError` when the event was already accepted.
    """
    if not secret:
        raise ConnectorAuthError("no Stripe webhook secret given (STRIPE_WEBHOOK_SECRET)", connector=_NAME)
    value = header(headers, SIGNATURE_HEADER)
    if not value:
        raise ConnectorAuthError(f"missing {SIGNATURE_HEADER} header: not a signed Stripe delivery", connector=_NAME)
    timestamp, signatures = _parse_signature_header(value)
    body = payload.encode() if isinstance(payload, str) else payload
    expected = hmac_sha256_hex(secret, f"{timestamp}.".encode() + body)
    if not any_signature_matches(expected, signatures):
        raise ConnectorAuthError(
            "Stripe webhook signature does not match: wrong endpoint secret, or the body was altered "
            "(verify the raw request bytes, not re-serialised JSON)",
            connector=_NAME,
        )
    check_timestamp(timestamp, tolerance, now, _NAME)
    if seen is not None:
        data = load_json(body, "Stripe", _NAME)
        event_id = data.get("id") if isinstance(data, dict) else None
        check_replay(seen, _NAME, event_id if isinstance(event_id, str) else None, now, "Stripe")


def parse_event(payload: bytes | str) -> StripeEvent:
    """The typed event of a delivery's body (verify it first)."""
    data = load_json(payload, "Stripe", _NAME)
    if not isinstance(data, dict) or data.get("object") != "event":
        raise ConnectorParseError("Stripe webhook body is not an event object", connector=_NAME)
    return StripeEvent.from_api(data)
