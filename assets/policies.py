"""Retry, freshness and failure policy shared by every ingestion asset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, FreshnessPolicy, Jitter, RetryPolicy, RetryRequested

from aragora_pipelines.sources import DAILY_WINDOW, WEEKLY_WINDOW
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorQuotaError,
    ConnectorValidationError,
)

# Transient API trouble (timeouts, 5xx, rate limits the connector could not ride out) gets three
# more attempts, 30 s, 60 s, 120 s apart, each +/- jitter so a backfill does not retry in lockstep.
INGEST_RETRY_POLICY = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
# An open breaker is retried after its cooldown, this many times at most.
CIRCUIT_OPEN_RETRIES = 3

# The windows live beside the sources so `aragora-pipelines status` judges freshness the same way without Dagster.
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=DAILY_WINDOW.fail, warn_window=DAILY_WINDOW.warn)
WEEKLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=WEEKLY_WINDOW.fail, warn_window=WEEKLY_WINDOW.warn)


@contextmanager
def connector_failures() -> Iterator[None]:
    """Turn connector errors into Dagster's retry semantics.

    An open circuit breaker becomes a retry after the breaker's cooldown (not a hot loop);
    configuration problems (missing credentials, invalid requests, exhausted quota) fail at
    once without retries, with the connector's message naming what to set. Anything else
    propagates to the asset's RetryPolicy.
    """
    try:
        yield
    except ConnectorCircuitOpenError as exc:
        wait = max(1.0, exc.cooldown_remaining)
        raise RetryRequested(max_retries=CIRCUIT_OPEN_RETRIES, seconds_to_wait=wait) from exc
    except (ConnectorAuthError, ConnectorValidationError, ConnectorQuotaError) as exc:
        raise Failure(description=f"{exc} (not retried: fix the configuration, then re-run)",
                      allow_retries=False) from None
