"""`make run`: materialize the offline default through Dagster and show what was stored.

Runs the ``embedded_default`` job (sample documents and sample database) for every topic on
the instance in ``DAGSTER_HOME`` (an ephemeral one when unset), refreshes the catalog views,
lists the sources it skipped and why, and prints the store's counts and one example query.
"""

from __future__ import annotations

import os
import sys

from dagster import DagsterInstance

from aragora_pipelines.definitions import (
    RESOURCES,
    apply_pool_limits,
    catalog_job,
    defs,
    embedded_default_job,
    sync_topics,
)
from aragora_pipelines.resources import DuckDBStoreResource
from aragora_pipelines.sources import EMBEDDED_SOURCES, skip_reason, source_statuses
from aragora_pipelines.topics import scheduled_topics

EXAMPLE_QUERY = """SELECT source, title, round(reliability_score, 3) AS reliability
FROM evidence_current ORDER BY reliability_score DESC LIMIT 5"""
# Dagster's console logger prints every step event at DEBUG; the summary below is what `make run` is for.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def skipped_sources() -> list[tuple[str, str]]:
    """Each source the offline run leaves out, with the reason (what to set, or that it needs network)."""
    return [(status.source, skip_reason(status)) for status in source_statuses()
            if status.source not in EMBEDDED_SOURCES]


def main() -> int:
    """Run the offline default job for every topic and report."""
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    sync_topics(instance)
    apply_pool_limits(instance)
    topics = scheduled_topics(instance)
    job = defs.resolve_job_def(embedded_default_job.name)
    failed = []
    for topic in topics:
        result = job.execute_in_process(partition_key=topic, instance=instance, raise_on_error=False,
                                        run_config=QUIET_RUN_CONFIG)
        print(f"materialized {', '.join(f'evidence_{s}' for s in EMBEDDED_SOURCES)} [{topic}]: "
              f"{'ok' if result.success else 'FAILED'}")
        if not result.success:
            failed.append(topic)
    defs.resolve_job_def(catalog_job.name).execute_in_process(instance=instance, run_config=QUIET_RUN_CONFIG)

    for source, reason in skipped_sources():
        print(f"skipped {source}: {reason}")
    store_resource = RESOURCES["store"]
    assert isinstance(store_resource, DuckDBStoreResource)
    store = store_resource.get_store()
    counts = store.counts()
    print(f"\nstore: {store.location}")
    print(f"evidence rows: {counts['evidence']}  provenance records: {counts['provenance']}  "
          f"loads: {counts['loads']}  claim citations: {counts['claim_citations']}")
    print(f"\nexample query:\n{EXAMPLE_QUERY}")
    for source, title, reliability in store.query(EXAMPLE_QUERY):
        print(f"  {reliability:.3f}  {source:<10} {title}")
    problems = store.verify()
    print(f"\nprovenance chain: {'intact' if not problems else problems[0]}")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
