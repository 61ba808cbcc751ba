"""Retry, freshness and failure policy shared by every ingestion asset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, FreshnessPolicy, Jitter, RetryPolicy, RetryRequested

from aragora_pipelines.sources import DAILY_WINDOW, WEEKLY_WINDOW
from aragora_pipelines.store import StoreDiskFull
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorQuotaError,
    ConnectorRateLimitError,
    ConnectorValidationError,
)
from connectors.limits import ResponseLimitError

# Transient API trouble (timeouts, 5xx) gets three more attempts, 30 s, 60 s, 120 s apart, each
# +/- jitter so a backfill does not retry in lockstep.
INGEST_RETRY_POLICY = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
# An open breaker is retried after its cooldown, this many times at most.
CIRCUIT_OPEN_RETRIES = 3
# A rate limit longer than the connector waits out (max_retry_wait) is retried after the server's wait,
# this many times at most (Dagster counts a step's attempts of every kind against this number).
RATE_LIMIT_RETRIES = 5

# The windows live beside the sources so `aragora-pipelines status` judges freshness the same way without Dagster.
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=DAILY_WINDOW.fail, warn_window=DAILY_WINDOW.warn)
WEEKLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=WEEKLY_WINDOW.fail, warn_window=WEEKLY_WINDOW.warn)


@contextmanager
def connector_failures() -> Iterator[None]:
    """Turn connector errors into Dagster's retry semantics.

    An open circuit breaker becomes a retry after the breaker's cooldown (not a hot loop), and a
    rate limit a retry after the server's Retry-After: the run waits without holding a worker and
    without using the RetryPolicy's backoff. Configuration problems (missing credentials, invalid
    requests, exhausted quota) fail at once without retries, with the connector's message naming
    what to set; so does a full disk, with the store's one-line message, and an answer over a size or
    JSON depth limit (:class:`connectors.limits.ResponseLimitError`). Anything else propagates
    to the asset's RetryPolicy.
    """
    try:
        yield
    except ConnectorCircuitOpenError as exc:
        wait = max(1.0, exc.cooldown_remaining)
        raise RetryRequested(max_retries=CIRCUIT_OPEN_RETRIES, seconds_to_wait=wait) from exc
    except ConnectorRateLimitError as exc:
        if exc.retry_after is None:  # the connector named no wait: the RetryPolicy's backoff applies
            raise
        raise RetryRequested(max_retries=RATE_LIMIT_RETRIES, seconds_to_wait=exc.retry_after) from exc
    except (ConnectorAuthError, ConnectorValidationError, ConnectorQuotaError) as exc:
        raise Failure(description=f"{exc} (not retried: fix the configuration, then re-run)",
                      allow_retries=False) from None
    except ResponseLimitError as exc:  # the same answer would come again; the message names the limit to raise
        raise Failure(description=f"{exc} (not retried)", allow_retries=False) from None
    except StoreDiskFull as exc:  # one line, not a DuckDB traceback; retrying before space is freed cannot help
        raise Failure(description=f"{exc} (not retried: free disk space, then re-run)", allow_retries=False) from None
