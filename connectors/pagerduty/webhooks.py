"""PagerDuty v3 webhooks: signature verification and typed events.

``X-PagerDuty-Signature`` carries ``v1=<hex HMAC-SHA256 of the raw body>``; while a
subscription's secret rotates it lists several, comma-separated, and any one valid passes.
The scheme has no signed timestamp. The only time to check is the event's own
``occurred_at`` (read from the body after the signature is verified): it must be ISO 8601 and
within ``tolerance`` seconds of ``now``, or the delivery is refused. PagerDuty retries failed
deliveries with the original ``occurred_at``, so pass a larger ``tolerance`` (or None to skip the
check) to accept them. The replay check (``seen=``) keys on the signed ``event.id``.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.pagerduty.credentials import WEBHOOK_SECRET_ENV
from connectors.pagerduty.models import PagerDutyEvent
from connectors.webhooks import BodySignature, header, hmac_sha256_hex, load_json

SIGNATURE_HEADER = "X-PagerDuty-Signature"
SCHEME = "v1="
_NAME = "pagerduty"


def _signatures(headers: Mapping[str, str]) -> list[str]:
    """The ``v1=`` signatures of ``X-PagerDuty-Signature``."""
    value = header(headers, SIGNATURE_HEADER) or ""
    return [part.strip()[len(SCHEME):] for part in value.split(",") if part.strip().startswith(SCHEME)]


def _delivery_id(body: object) -> str | None:
    """The event's ``id`` (inside the signed body: the unsigned ``X-Webhook-Id`` header could be changed)."""
    event = body.get("event") if isinstance(body, dict) else None
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


WEBHOOK_SIGNATURE = BodySignature(
    connector=_NAME,
    vendor="PagerDuty",
    sign=hmac_sha256_hex,
    signatures=_signatures,
    time_path=("event", "occurred_at"),
    delivery_id=_delivery_id,
    no_secret=f"no PagerDuty webhook secret: set {WEBHOOK_SECRET_ENV}",
    no_signature=f"PagerDuty webhook has no {SIGNATURE_HEADER}: v1=... header",
    mismatch="PagerDuty webhook signature does not match the body",
)
verify_signature = WEBHOOK_SIGNATURE.verify


def parse_event(payload: bytes | str) -> PagerDutyEvent:
    """The typed event of a v3 webhook body; :class:`ConnectorParseError` when it is not one."""
    return PagerDutyEvent.from_api(load_json(payload, "PagerDuty", _NAME))
