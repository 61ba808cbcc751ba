"""Webhook signature primitives shared by the integration connectors' ``webhooks`` modules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from connectors.exceptions import ConnectorAuthError


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
