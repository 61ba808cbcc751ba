"""Which executor the code location's jobs use: Dagster's default, or Celery workers (README "Scale out").

Settings are read from the environment of each process (the run worker that submits steps and every Celery
worker), so a broker URL with a password never enters a run's config or the event log.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ExecutorDefinition

EXECUTOR_ENV = "ARAGORA_EXECUTOR"
CELERY_BROKER_ENV = "ARAGORA_CELERY_BROKER"
CELERY_BACKEND_ENV = "ARAGORA_CELERY_BACKEND"
CELERY_PREFIX_ENV = "ARAGORA_CELERY_PREFIX"
CELERY_VISIBILITY_ENV = "ARAGORA_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT = 3600  # Redis broker: seconds before a dead worker's task goes to another worker
EXECUTORS = ("multiprocess", "celery")


def executor_choice() -> str:
    """``ARAGORA_EXECUTOR``: ``multiprocess`` (the default: steps run on the launching machine) or ``celery``."""
    choice = os.environ.get(EXECUTOR_ENV, "").strip().lower() or "multiprocess"
    if choice not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)} (unset: multiprocess), got {choice!r}")
    if choice == "celery":
        celery_broker_scheme()
    return choice


def celery_broker_scheme() -> str:
    """The scheme of ``ARAGORA_CELERY_BROKER`` (``redis`` or ``amqp``); the URL itself is never shown."""
    url = os.environ.get(CELERY_BROKER_ENV, "").strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "amqp", "pyamqp"):
        shown = f"a {scheme}:// URL" if scheme else "no URL"
        raise ValueError(f"{EXECUTOR_ENV}=celery needs {CELERY_BROKER_ENV} set to a redis://host:6379/0 or "
                         f"amqp://user:password@host:5672// URL, got {shown}")
    return scheme


def celery_settings() -> dict[str, Any]:
    """Celery settings the executor and the workers must share (none secret): late acks, so a task whose worker
    dies goes to another worker, and with ``ARAGORA_CELERY_PREFIX`` Redis keys of their own."""
    text = os.environ.get(CELERY_VISIBILITY_ENV, "").strip() or str(DEFAULT_VISIBILITY_TIMEOUT)
    try:
        visibility = int(text)
    except ValueError:
        visibility = 0
    if visibility < 1:
        raise ValueError(f"{CELERY_VISIBILITY_ENV} must be a whole number of seconds >= 1 (longer than any step; "
                         f"default {DEFAULT_VISIBILITY_TIMEOUT}), got {text!r}")
    transport: dict[str, Any] = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
    if celery_broker_scheme().startswith("redis"):
        transport |= {"visibility_timeout": visibility, "unacked_restore_interval": max(1, min(10, visibility // 4)),
                      "unacked_restore_throttle": 1}
    settings: dict[str, Any] = {"task_acks_late": True, "task_reject_on_worker_lost": True,
                                "worker_prefetch_multiplier": 1, "broker_transport_options": transport}
    prefix = os.environ.get(CELERY_PREFIX_ENV, "").strip()
    if prefix:
        transport["global_keyprefix"] = prefix
        settings["result_backend_transport_options"] = {"global_keyprefix": prefix}
    return settings


def celery_backend_env() -> str:
    """The variable holding the result backend URL: ``ARAGORA_CELERY_BACKEND``, else the Redis broker's."""
    if os.environ.get(CELERY_BACKEND_ENV, "").strip():
        return CELERY_BACKEND_ENV
    if celery_broker_scheme().startswith("redis"):
        return CELERY_BROKER_ENV
    raise ValueError(f"an amqp:// broker needs {CELERY_BACKEND_ENV} (e.g. redis://host:6379/1, or rpc://)")


def celery_worker_settings() -> dict[str, Any]:
    """Everything a Celery worker's ``dagster_celery_config`` module sets: broker, backend and the shared settings."""
    return {"broker_url": os.environ[CELERY_BROKER_ENV], "result_backend": os.environ[celery_backend_env()],
            **celery_settings()}


def selected_executor() -> ExecutorDefinition | None:
    """Every job's executor: Celery workers with ``ARAGORA_EXECUTOR=celery`` (README "Scale out"), else None,
    Dagster's default (steps in processes on the launching machine). Broker and backend are read from each
    process's environment at run time (``env:``), so no URL or password is stored in a run's config."""
    if executor_choice() != "celery":
        return None
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ImportError("ARAGORA_EXECUTOR=celery needs the scale extra: pip install -c constraints.txt -e "
                          "'.[scale]'") from exc
    return celery_executor.configured({"broker": {"env": CELERY_BROKER_ENV}, "backend": {"env": celery_backend_env()},
                                       "config_source": celery_settings()}, name="celery")
