#!/usr/bin/env python3
"""A 30-day backfill of evidence_hackernews (one topic) against the simulator, through real Dagster runs.

Each partition is one Dagster run (``materialize`` of the project's asset with the project's resources,
recorded in a DagsterInstance on SQLite in a temporary DAGSTER_HOME, with its asset checks), launched
from a pool of worker processes: 1 worker, then 4. Workers are warmed up (imports done) before the clock
starts, so the figure is the backfill's, not Python's start-up. Every run writes the same DuckDB file:
the store's writer lock serialises the writes while the fetches overlap.

The simulator holds one record every 37 s from the first day on (about 2,335 a day) and honours each run's
day window as Algolia does, so every partition fetches and stores its own day's records.

``--stores duckdb,ducklake`` runs it on both backends, side by side: the DuckDB file, and DuckLake with its
catalog in a new Postgres database (``--postgres``, dropped afterwards) and its Parquet files in a temporary
directory; on DuckLake the loads append concurrently.

Prints wall times, their ratio (target: 4 workers take at most half as long) and failed runs (must be 0).
Exits non-zero when a run failed or the store does not hold exactly the simulator's records of those days.
usage: python benchmarks/backfill.py [--days 30] [--latency-ms 1000] [--workers 1,4] [--stores duckdb,ducklake]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import BASE_TS, POSTGRES_DSN, STEP_S, lake_database, print_table, start_sim, stop_sim

TOPIC = "rate-limiting"
ASSET = "evidence_hackernews"
DAY_S = 86_400
PER_DAY = math.ceil(DAY_S / STEP_S)  # the most records one day holds: each run's limit


def warm_up() -> None:
    """Pool initializer: import Dagster and the code location once per worker, before the clock starts."""
    import aragora_pipelines.definitions  # noqa: F401


def run_partition(day: str, limit: int) -> tuple[str, bool, str]:
    """One Dagster run of evidence_hackernews for ``day`` x TOPIC; (day, success, run id)."""
    from dagster import DagsterInstance, MultiPartitionKey, materialize

    from aragora_pipelines.definitions import RESOURCES, evidence_assets

    with DagsterInstance.get() as instance:
        result = materialize([evidence_assets["hackernews"]], resources=RESOURCES, instance=instance,
                             partition_key=MultiPartitionKey({"date": day, "topic": TOPIC}),
                             run_config={"ops": {ASSET: {"config": {"limit": limit}}},
                                         "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                             tags={"benchmark": "backfill"}, raise_on_error=False)
    return day, result.success, result.run_id


def ready() -> int:
    """A short task answered by a warmed-up worker (its pid); short enough that idle workers share them."""
    time.sleep(0.05)
    return os.getpid()


def backfill(workers: int, days: list[str], limit: int) -> tuple[float, list[tuple[str, bool, str]]]:
    """Run every partition with ``workers`` processes; (wall seconds, per-run outcomes)."""
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=warm_up)
    try:
        pids: set[int] = set()
        while len(pids) < workers:  # every worker has imported the code location
            pids |= set(pool.starmap(ready, [()] * workers * 4))
        started = time.perf_counter()
        outcomes = pool.starmap(run_partition, [(day, limit) for day in days])
        wall = time.perf_counter() - started
    finally:
        pool.close()  # let the workers exit on their own (terminate() would interrupt Dagster's shutdown)
        pool.join()
    return wall, outcomes


def check_store(expected: int) -> list[str]:
    """Problems with the store the environment names after a backfill (distinct ids, duplicates, chain)."""
    from aragora_pipelines.resources import open_store

    store = open_store()
    rows, distinct = store.query("SELECT count(*), count(DISTINCT id) FROM evidence")[0]
    problems = [] if rows == distinct == expected else [f"{store.backend}: {rows} rows, {distinct} distinct, "
                                                        f"expected {expected}"]
    return problems + store.verify()


def main(argv: list[str] | None = None) -> int:
    """Backfill at 1 and 4 workers and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument("--workers", default="1,4", help="comma-separated pool sizes")
    parser.add_argument("--stores", default="duckdb", help="comma-separated backends: duckdb, ducklake")
    parser.add_argument("--postgres", default=POSTGRES_DSN,
                        help="libpq DSN of the Postgres server for the DuckLake catalogs")
    args = parser.parse_args(argv)
    stores = args.stores.split(",")
    if set(stores) - {"duckdb", "ducklake"}:
        parser.error(f"--stores {args.stores}: choose from duckdb, ducklake")
    if args.days < 1:
        parser.error(f"--days {args.days}: give at least 1")
    first = datetime.fromtimestamp(BASE_TS, UTC).date()  # the simulator's first record
    days = [(first + timedelta(days=i)).isoformat() for i in range(args.days)]
    levels = [int(w) for w in args.workers.split(",")]

    sim = start_sim(records=math.ceil(args.days * DAY_S / STEP_S), latency_ms=args.latency_ms)
    expected = sim.truth("hn", since=BASE_TS, until=BASE_TS + args.days * DAY_S)["count"]
    table, problems, walls = [], [], {}
    try:
        with tempfile.TemporaryDirectory(prefix="aragora-backfill-") as tmp:
            work = Path(tmp)
            topics = work / "topics.yaml"
            topics.write_text(f"topics:\n  {TOPIC}:\n    query: rate limiting\n")
            os.environ.update({"ARAGORA_HACKERNEWS_BASE_URL": sim.hn, "ARAGORA_TOPICS_FILE": str(topics),
                               "ARAGORA_START_DATE": days[0]})
            for backend in stores:
                for workers in levels:
                    home = work / f"dagster_home_{backend}_{workers}"
                    home.mkdir()
                    (home / "dagster.yaml").write_text("# SQLite storage in this folder (the default)\n"
                                                       "telemetry:\n  enabled: false\n")
                    os.environ["DAGSTER_HOME"] = str(home)
                    if backend == "duckdb":
                        os.environ.pop("ARAGORA_STORE", None)
                        os.environ["ARAGORA_DUCKDB_PATH"] = str(work / f"evidence_{workers}.duckdb")
                    else:
                        catalog = lake_database(args.postgres, f"aragora_bench_{os.getpid()}_{workers}")
                        os.environ.update({"ARAGORA_STORE": f"ducklake:postgres:{catalog}",
                                           "ARAGORA_STORE_DATA_PATH": str(work / f"lake_{workers}")})
                    from dagster import DagsterInstance

                    with DagsterInstance.get() as instance:
                        instance.add_dynamic_partitions("topics", [TOPIC])
                    try:
                        wall, outcomes = backfill(workers, days, PER_DAY)
                        failed = [day for day, ok, _ in outcomes if not ok]
                        problems += [f"{backend}, {workers} workers: run for {day} failed" for day in failed]
                        problems += [f"{backend}, {workers} workers: {p}" for p in check_store(expected)]
                    finally:
                        if backend == "ducklake":
                            lake_database(args.postgres, f"aragora_bench_{os.getpid()}_{workers}", drop=True)
                    walls[backend, workers] = wall
                    table.append([backend, workers, len(outcomes), f"{wall:.1f}", f"{wall / len(outcomes):.2f}",
                                  len(failed)])
    finally:
        stop_sim(sim)

    print(f"\n### backfill: {args.days} daily partitions of {ASSET} x '{TOPIC}', {expected:,} records in all "
          f"(about {PER_DAY:,} a day; simulator, {args.latency_ms:.0f} ms per request), one Dagster run each\n")
    print_table(["store", "workers", "runs", "wall s", "s per run", "failed runs"], table)
    if len(levels) == 2:
        for backend in stores:
            ratio = walls[backend, levels[1]] / walls[backend, levels[0]]
            print(f"\n{backend}: ratio {levels[1]} workers / {levels[0]}: {ratio:.2f} "
                  f"(target <= 0.50: {'met' if ratio <= 0.5 else 'MISSED'})")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
