"""PagerDuty v3 webhooks: signature verification and typed events.

``X-PagerDuty-Signature`` carries ``v1=<hex HMAC-SHA256 of the raw body>``; while a
subscription's secret rotates it lists several, comma-separated, and any one valid passes.
The scheme has no signed timestamp. The only time to check is the event's own
``occurred_at`` (read from the body after the signature is verified): when present it must be
within ``tolerance`` seconds of ``now``. PagerDuty retries failed deliveries with the original
``occurred_at``, so pass a larger ``tolerance`` (or None to skip the check) to accept them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.exceptions import ConnectorAuthError, ConnectorParseError
from connectors.pagerduty.credentials import WEBHOOK_SECRET_ENV
from connectors.pagerduty.models import PagerDutyEvent
from connectors.text import parse_datetime
from connectors.webhooks import any_signature_matches, check_timestamp, header, hmac_sha256_hex

SIGNATURE_HEADER = "X-PagerDuty-Signature"
SCHEME = "v1="


def verify_signature(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`ConnectorAuthError` unless a ``v1=`` signature in ``X-PagerDuty-Signature`` signs ``payload``.

    ``now`` is epoch seconds (default: the clock). Comparison is constant time.
    """
    if not secret:
        raise ConnectorAuthError(f"no PagerDuty webhook secret: set {WEBHOOK_SECRET_ENV}", connector="pagerduty")
    value = header(headers, SIGNATURE_HEADER) or ""
    candidates = [part.strip()[len(SCHEME):] for part in value.split(",") if part.strip().startswith(SCHEME)]
    if not candidates:
        raise ConnectorAuthError(f"PagerDuty webhook has no {SIGNATURE_HEADER}: v1=... header", connector="pagerduty")
    if not any_signature_matches(hmac_sha256_hex(secret, payload), candidates):
        raise ConnectorAuthError("PagerDuty webhook signature does not match the body", connector="pagerduty")
    if tolerance is None:
        return
    occurred = _occurred_at(payload)
    if occurred is not None:
        check_timestamp(occurred.timestamp(), tolerance, now, "pagerduty")


def parse_event(payload: bytes | str) -> PagerDutyEvent:
    """The typed event of a v3 webhook body; :class:`ConnectorParseError` when it is not one."""
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise ConnectorParseError("PagerDuty webhook body is not valid JSON", connector="pagerduty") from None
    return PagerDutyEvent.from_api(data)


def _occurred_at(payload: bytes) -> datetime | None:
    """The event's occurred_at, None when the verified body does not carry one."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    event = data.get("event") if isinstance(data, dict) else None
    return parse_datetime(event.get("occurred_at")) if isinstance(event, dict) else None
