"""Credentials from environment variables."""

from __future__ import annotations

import os

from connectors.credentials.base import CredentialProvider


class EnvCredentialProvider(CredentialProvider):
    """Reads ``prefix + name`` from the process environment; empty values count as missing."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _lookup(self, name: str) -> str | None:
        return os.environ.get(self.prefix + name) or None

    def __repr__(self) -> str:
        return f"EnvCredentialProvider(prefix={self.prefix!r})"
