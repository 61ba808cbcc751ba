"""Webhook signature primitives shared by the integration connectors' ``webhooks`` modules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.exceptions import ConnectorAuthError, ConnectorParseError
from connectors.text import parse_datetime


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
        matched |= hmac.compare_digest(expected.encode(), candidate.strip().encode())
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
    if abs(now - timestamp) > tolerance:
        raise ConnectorAuthError(
            f"webhook timestamp is {abs(now - timestamp):.0f}s away from now (tolerance {tolerance:.0f}s): "
            "stale or replayed delivery",
            connector=connector,
        )


def load_json(payload: bytes | str, vendor: str, connector: str) -> Any:
    """The parsed JSON of a webhook body; :class:`ConnectorParseError` naming ``vendor`` when it is not JSON."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConnectorParseError(f"{vendor} webhook body is not JSON: {exc}", connector=connector) from None


def _event_time(payload: bytes, path: tuple[str, ...]) -> datetime | None:
    """The datetime at ``path`` in a JSON body; None when the body is not JSON or carries none."""
    try:
        node: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return parse_datetime(node)


@dataclass(frozen=True)
class BodySignature:
    """A webhook scheme that HMAC-signs the raw body alone, with no signed timestamp (DocuSign, PagerDuty).

    ``signatures`` picks the candidate signatures out of the headers (several while secrets rotate;
    any one valid passes) and ``sign`` computes the expected one. The only time to check is the
    event's own, read from the verified JSON body at ``time_path``: when present it must be within
    ``tolerance`` seconds of ``now``. The messages say what is missing or wrong.
    """

    connector: str
    sign: Callable[[str | bytes, bytes], str]
    signatures: Callable[[Mapping[str, str]], list[str]]
    time_path: tuple[str, ...]
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
    ) -> None:
        """Raise :class:`ConnectorAuthError` unless a signature in ``headers`` signs ``payload`` (constant-time).

        ``now`` is epoch seconds (default: the clock); ``tolerance=None`` skips the event-time check,
        for retried deliveries that keep their original time.
        """
        if not secret:
            raise ConnectorAuthError(self.no_secret, connector=self.connector)
        candidates = self.signatures(headers)
        if not candidates:
            raise ConnectorAuthError(self.no_signature, connector=self.connector)
        if not any_signature_matches(self.sign(secret, payload), candidates):
            raise ConnectorAuthError(self.mismatch, connector=self.connector)
        moment = _event_time(payload, self.time_path) if tolerance is not None else None
        if moment is not None:
            check_timestamp(moment.timestamp(), tolerance, now, self.connector)
