"""Webhook signature primitives shared by the integration connectors' ``webhooks`` modules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connectors.exceptions import ConnectorAuthError, ConnectorParseError, ConnectorValidationError
from connectors.text import parse_datetime

# How long a delivery id is remembered: Stripe retries an unacknowledged delivery for up to three days,
# HubSpot for a day, DocuSign and PagerDuty for less, so a retry inside this window is still recognised.
DEFAULT_REPLAY_RETENTION = 3 * 24 * 3600.0
# The in-memory record keeps at most this many ids (the oldest go first), so a flood cannot exhaust memory.
DEFAULT_MAX_DELIVERIES = 100_000


def hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of ``message`` under ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    """HMAC-SHA256 as lower-case hex."""
    return hmac_sha256(secret, message).hex()


def hmac_sha256_b64(secret: str | bytes, message: bytes) -> str:
    """HMAC-SHA256 as standard base64."""
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def any_signature_matches(expected: str, candidates: list[str]) -> bool:
    """Constant-time comparison of ``expected`` with each candidate (every candidate is compared)."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.strip().encode("utf-8", "surrogatepass"))
    return matched


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, case-insensitively."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def check_timestamp(timestamp: float, tolerance: float, now: float | None, connector: str) -> None:
    """Raise :class:`ConnectorAuthError` when ``timestamp`` is further than ``tolerance`` s from now."""
    now = time.time() if now is None else now
    try:
        distance = abs(now - float(timestamp))
    except OverflowError:  # a signed but absurd integer timestamp
        raise ConnectorAuthError("webhook timestamp is out of range: stale or forged delivery",
                                 connector=connector) from None
    if not distance <= tolerance:
        raise ConnectorAuthError(
            f"webhook timestamp is {distance:.0f}s away from now (tolerance {tolerance:.0f}s): "
            "stale or replayed delivery",
            connector=connector,
        )


def load_json(payload: bytes | str, vendor: str, connector: str) -> Any:
    """The parsed JSON of a webhook body; :class:`ConnectorParseError` naming ``vendor`` when it is not JSON."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, too many digits, bad UTF-8
        raise ConnectorParseError(f"{vendor} webhook body is not JSON: {exc}", connector=connector) from None
    except RecursionError:
        raise ConnectorParseError(f"{vendor} webhook body is nested too deeply to parse", connector=connector) from None


def _event_time(body: Any, path: tuple[str, ...]) -> datetime | None:
    """The time written as text at ``path`` in a parsed JSON body; None when it is absent or not a time."""
    node = body
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str):
        return None
    try:
        return parse_datetime(node)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00, before year 1 in UTC: not a time within any tolerance
        return None


class WebhookReplayError(ConnectorAuthError):
    """A genuine delivery whose id was already accepted within the retention window.

    A receiver should acknowledge it (HTTP 2xx, so the sender stops retrying) without processing it again;
    code that only catches :class:`ConnectorAuthError` still refuses it.
    """

    def __init__(self, message: str = "", *, delivery_id: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.delivery_id = delivery_id


class SeenDeliveries(Protocol):
    """Where a receiver remembers the delivery ids it accepted, for the replay check (in memory, or the store)."""

    def remember(self, service: str, delivery_id: str, now: float) -> bool:
        """Record ``delivery_id`` at ``now`` (epoch seconds); False when it was already seen within the retention."""
        ...

    def forget(self, service: str, delivery_id: str) -> None:
        """Drop ``delivery_id``, so the sender's retry is accepted (call it when processing the delivery failed)."""
        ...


class InMemorySeenDeliveries:
    """Delivery ids of one process, each kept ``retention`` seconds, at most ``max_entries`` (oldest dropped).

    Thread-safe. A restart forgets everything, and an id dropped for room can be replayed: use the store's
    ``DuckDBSeenDeliveries`` where that matters.
    """

    def __init__(self, retention: float = DEFAULT_REPLAY_RETENTION, max_entries: int = DEFAULT_MAX_DELIVERIES) -> None:
        if not retention > 0 or max_entries < 1:
            raise ConnectorValidationError(
                f"webhook replay retention must be > 0 s and max_entries >= 1 (got {retention!r}, {max_entries!r})")
        self.retention = float(retention)
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, service: str, delivery_id: str, now: float) -> bool:
        """Record ``delivery_id``; False when it was already seen less than ``retention`` seconds before ``now``."""
        key = (service, delivery_id)
        with self._lock:
            while self._seen and now - next(iter(self._seen.values())) >= self.retention:
                self._seen.popitem(last=False)
            seen_at = self._seen.get(key)
            if seen_at is not None and now - seen_at < self.retention:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True

    def forget(self, service: str, delivery_id: str) -> None:
        """Drop ``delivery_id`` so a retry of it is accepted."""
        with self._lock:
            self._seen.pop((service, delivery_id), None)

    def __len__(self) -> int:
        return len(self._seen)


def check_replay(seen: SeenDeliveries | None, service: str, delivery_id: str | None, now: float | None,
                 vendor: str) -> None:
    """Record a verified delivery's id in ``seen``; :class:`WebhookReplayError` when it was already there.

    A body without an id (``delivery_id`` None or empty) is a :class:`ConnectorParseError`.
    """
    if seen is None:
        return
    if not delivery_id:
        raise ConnectorParseError(f"{vendor} webhook body has no event id, so a replay cannot be detected",
                                  connector=service)
    if not seen.remember(service, delivery_id, time.time() if now is None else now):
        raise WebhookReplayError(
            f"{vendor} delivery {delivery_id[:100]} was already accepted: a replay, or a retry of a delivery "
            "already processed; acknowledge it without processing it again",
            connector=service, delivery_id=delivery_id,
        )


def body_digest(body: Any, drop: tuple[str, ...] = ()) -> str:
    """A stable id for a JSON body with no id of its own: sha256 of its canonical form without the ``drop`` keys."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in drop}
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class BodySignature:
    """A webhook scheme that HMAC-signs the raw body alone, with no signed timestamp (DocuSign, PagerDuty).

    ``signatures`` picks the candidate signatures out of the headers (several while secrets rotate;
    any one valid passes) and ``sign`` computes the expected one. The only time to check is the
    event's own ISO 8601 text, read from the verified JSON body at ``time_path``: it must be there and
    within ``tolerance`` seconds of ``now``. ``delivery_id`` names the delivery in the parsed body, for
    the replay check. The messages say what is missing or wrong.
    """

    connector: str
    vendor: str
    sign: Callable[[str | bytes, bytes], str]
    signatures: Callable[[Mapping[str, str]], list[str]]
    time_path: tuple[str, ...]
    delivery_id: Callable[[Any], str | None]
    no_secret: str
    no_signature: str
    mismatch: str

    def verify(
        self,
        payload: bytes,
        headers: Mapping[str, str],
        secret: str | bytes,
        *,
        tolerance: float | None = 300,
        now: float | None = None,
        seen: SeenDeliveries | None = None,
    ) -> None:
        """Raise :class:`ConnectorAuthError` unless a signature in ``headers`` signs ``payload`` (constant-time).

        ``now`` is epoch seconds (default: the clock); ``tolerance=None`` skips the event-time check,
        for retried deliveries that keep their original time. With ``seen``, a delivery already accepted
        raises :class:`WebhookReplayError`. A signed body that is not a JSON event is a :class:`ConnectorParseError`.
        """
        if not secret:
            raise ConnectorAuthError(self.no_secret, connector=self.connector)
        candidates = self.signatures(headers)
        if not candidates:
            raise ConnectorAuthError(self.no_signature, connector=self.connector)
        if not any_signature_matches(self.sign(secret, payload), candidates):
            raise ConnectorAuthError(self.mismatch, connector=self.connector)
        if tolerance is None and seen is None:
            return
        body = load_json(payload, self.vendor, self.connector)
        if tolerance is not None:
            moment = _event_time(body, self.time_path)
            if moment is None:
                raise ConnectorAuthError(
                    f"{self.vendor} webhook has no ISO 8601 {'.'.join(self.time_path)}, so its age cannot be "
                    "checked; refused (pass tolerance=None to accept deliveries without one)",
                    connector=self.connector,
                )
            check_timestamp(moment.timestamp(), tolerance, now, self.connector)
        if seen is not None:
            try:
                delivery = self.delivery_id(body)
            except RecursionError:  # a body just shallow enough to parse can be too deep to serialise for a digest
                raise ConnectorParseError(f"{self.vendor} webhook body is nested too deeply to parse",
                                          connector=self.connector) from None
            check_replay(seen, self.connector, delivery, now, self.vendor)
