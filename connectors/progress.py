"""Progress events from the request path: pages answered, retries, rate-limit waits, items read.

Connectors call :func:`notify`; whoever wants to show progress (the command line) registers a callback
with :func:`observe` for the duration of a fetch. The callback lives in a context variable, so it follows
``asyncio.run`` into the fetch's tasks and never leaks between concurrent runs. Without an observer,
:func:`notify` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

Kind = Literal["response", "retry", "wait", "items"]


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened while fetching.

    ``response``: an HTTP answer (``status``); ``retry``: attempt ``attempt`` failed (``detail``) and the next
    follows in ``seconds``; ``wait``: a rate-limit pause of ``seconds``; ``items``: ``count`` more items read.
    """

    kind: Kind
    connector: str
    operation: str = ""
    status: int | None = None
    attempt: int = 0
    seconds: float = 0.0
    count: int = 0
    detail: str = ""


Observer = Callable[[ProgressEvent], None]
_observer: ContextVar[Observer | None] = ContextVar("aragora_progress_observer", default=None)


@contextmanager
def observe(callback: Observer) -> Iterator[None]:
    """Send every progress event raised in this context (and tasks started from it) to ``callback``."""
    token = _observer.set(callback)
    try:
        yield
    finally:
        _observer.reset(token)


def notify(kind: Kind, connector: str, **fields: object) -> None:
    """Report one event to the current observer, if any (cheap when nobody listens)."""
    callback = _observer.get()
    if callback is not None:
        callback(ProgressEvent(kind, connector, **fields))  # type: ignore[arg-type]
