"""Secret redaction shared by errors, logs, metadata and stored rows.

Two layers: patterns that look like credentials (bearer tokens, ``api_key=`` query
values, well-known key prefixes), and the exact values that credential providers
have handed out, registered at the moment they are read.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

SENSITIVE_KEYS = frozenset(
    {
        "authorization", "proxy-authorization", "x-api-key", "api_key", "apikey", "api-key", "key",
        "token", "access_token", "refresh_token", "id_token", "bearer_token", "client_secret", "secret",
        "secret_key", "password", "passwd", "webhook_secret", "hmac_key", "signature", "sig",
        "x-subscription-token", "cookie", "set-cookie", "private_token", "auth",
    }
)

_PATTERNS = [
    # Authorization-style headers and "Bearer <token>" anywhere in text.
    # The token alphabet is RFC 6750's b64token, underscore included (a partial match would leak the rest).
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[\w.~+/=\-]{8,}"), r"\1 " + REDACTED),
    # key=value pairs in query strings, JSON-ish text or log lines.
    (
        re.compile(
            r"(?i)([\"']?\b(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|"
            r"secret[_-]?key|password|token|key|secret|signature|sig|hmac[_-]?key)\b[\"']?\s*[=:]\s*[\"']?)"
            r"([^\s&\"',;}]{4,})"
        ),
        r"\1" + REDACTED,
    ),
    # Well-known credential prefixes (Stripe, GitHub, Slack, AWS, OpenAI, HubSpot).
    (
        re.compile(
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bgithub_pat_[A-Za-z0-9_]{20,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
            r"|\bsk-[A-Za-z0-9_\-]{16,}|\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}"
        ),
        REDACTED,
    ),
]

_known_secrets: set[str] = set()
_known_sorted: tuple[str, ...] = ()  # longest first, rebuilt on registration (redact runs per stored row)
_known_lock = threading.Lock()
_MIN_SECRET_LEN = 6


def register_secret(value: str | None) -> None:
    """Remember a secret value so every later redaction removes it verbatim."""
    global _known_sorted
    if value and len(value) >= _MIN_SECRET_LEN:
        with _known_lock:
            if value not in _known_secrets:
                _known_secrets.add(value)
                _known_sorted = tuple(sorted(_known_secrets, key=len, reverse=True))


def redact(text: Any) -> str:
    """Return ``text`` as a string with every secret-looking value replaced by ``***``."""
    out = str(text)
    for secret in _known_sorted:
        if secret in out:
            out = out.replace(secret, REDACTED)
    for pattern, repl in _PATTERNS:
        if pattern.search(out):
            out = pattern.sub(repl, out)
    return out


def contains_secret(text: Any) -> bool:
    """True when redaction would change ``text``: used by asset checks on stored values."""
    s = str(text)
    return redact(s) != s


def redact_url(url: Any) -> str:
    """Redact credentials in a URL: userinfo and sensitive query parameters."""
    raw = str(url)
    try:
        parts = urlsplit(raw)
    except ValueError:
        return redact(raw)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if k.lower() in SENSITIVE_KEYS else v) for k, v in pairs], safe="*:,")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        items = [_redact_value(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def redact_mapping(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy a mapping (headers, params, details) with sensitive keys and values redacted, lists included."""
    return {
        key: REDACTED if str(key).lower() in SENSITIVE_KEYS else _redact_value(value)
        for key, value in (data or {}).items()
    }


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are redacted at the source (logger filters do not see children's records)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
