"""The credential provider interface."""

from __future__ import annotations

import asyncio
import inspect
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret


def clean_credential(name: str, value: object, connector: str | None = None) -> str | None:
    """``value`` as text without surrounding whitespace, None when empty; a control character inside is refused.

    A pasted key often ends in a line break, which an HTTP client refuses quoting the whole header. The
    :class:`ConnectorAuthError` names ``name`` and the character, never the value.
    """
    if value is None:
        return None
    text = str(value).strip()
    bad = next((char for char in text if unicodedata.category(char) in ("Cc", "Cf")), None)
    if bad is not None:
        raise ConnectorAuthError(
            f"credential {name} contains the control character U+{ord(bad):04X}; set it again without it "
            "(surrounding whitespace and line breaks are removed, characters inside are not)",
            connector=connector,
        )
    return text or None


class CredentialSource(Protocol):
    """What the credential wrappers and connectors need of a provider: ``get(name)`` (the guide's interface)."""

    def get(self, name: str) -> str | None:
        """The value of credential ``name``, or None."""


class CredentialProvider(ABC):
    """Answers a credential name with its value, or None when this provider does not have it.

    A subclass implements ``_lookup``, or (as the guide shows) overrides ``get(self, name)`` alone.
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "get" in cls.__dict__ and getattr(cls._lookup, "__isabstractmethod__", False):
            cls._lookup = cls.__dict__["get"]  # a get-only provider needs no separate lookup

    @abstractmethod
    def _lookup(self, name: str) -> str | None:
        """Provider-specific lookup."""

    async def aget(self, name: str, *, secret: bool = True) -> str | None:
        """:meth:`get` run in a worker thread, so a blocking backend (boto3) never stalls the event loop."""
        return await aget_credential(self, name, secret=secret)

    def get(self, name: str, *, secret: bool = True) -> str | None:
        """The value of credential ``name`` or None; a secret value is registered for redaction.

        ``secret=False`` is for settings read the same way (a folder, a DSN path, a contact string)
        that must stay readable in error messages. The value is cleaned by :func:`clean_credential`.
        """
        value = self._lookup(name)
        if value is not None and secret:
            register_secret(str(value))  # before the check, so even a refused value never shows
        return clean_credential(name, value)

    def require(self, name: str, connector: str | None = None) -> str:
        """The value of ``name``, or :class:`ConnectorAuthError` saying what to set."""
        value = self.get(name)
        if value is None:
            raise ConnectorAuthError(
                f"credential {name} is not set; export {name}=... or store it in the configured "
                "credential provider (ARAGORA_CREDENTIAL_PROVIDER)",
                connector=connector,
            )
        return value


def _takes_secret(get: Callable[..., object]) -> bool:
    """Whether a provider's ``get`` accepts ``secret=`` (ours do; one a user writes after the guide may not)."""
    try:
        parameters = inspect.signature(get).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "secret" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def get_credential(provider: CredentialSource, name: str, *, secret: bool = True) -> str | None:
    """``provider``'s value for ``name``, cleaned, and registered for redaction when ``secret``.

    Works with any object that has ``get(name)``; ``secret=False`` leaves a setting readable in errors.
    """
    if _takes_secret(provider.get):
        return provider.get(name, secret=secret)  # type: ignore[call-arg]
    value = provider.get(name)
    if value is not None and secret:
        register_secret(str(value))
    return clean_credential(name, value)


async def aget_credential(provider: CredentialSource, name: str, *, secret: bool = True) -> str | None:
    """:func:`get_credential` in a worker thread: connectors read credentials this way inside their event loop."""
    return await asyncio.to_thread(get_credential, provider, name, secret=secret)


def invalidate_credential(provider: CredentialSource, name: str | None = None) -> None:
    """Ask ``provider`` to forget what it keeps for ``name`` (all names when None), if it keeps anything.

    :class:`CachedCredentialProvider` drops its entries and wrappers pass the call on, so the next read
    asks the source (a rotated secret shows at once).
    """
    invalidate = getattr(provider, "invalidate", None)
    if callable(invalidate):
        invalidate(name)
