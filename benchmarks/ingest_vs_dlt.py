#!/usr/bin/env python3
"""Our HackerNews ingestion against dlt's rest_api source, side by side on the loopback simulator.

Ours goes through ``aragora_pipelines.ingest.ingest_evidence``, the path the Dagster assets and the
CLI use (evidence rows, provenance chain and the loads row in one transaction); dlt runs
``benchmarks/dlt_peer.py`` (rest_api -> DuckDB, merge on objectID) on the same simulated data
(tests/support/apisim.py). dlt comes with the `bench` extra: `make bench` installs it and runs this.
Each side runs in its own process, three times, alternating; medians are reported.

Sections: 1. ours vs dlt at 20,000 records (targets: wall <= 1/3 and peak RSS <= 1/2 of dlt's, rows
exact; skipped when dlt is not installed); 2. ours at 20k/100k/200k records, seconds per 10k (flat =
linear cost); 3. what each injected fault costs in requests; 4. ingest on each backend: ours at --records
into a fresh store on each backend of ``--stores`` (default ``duckdb``; ``--stores duckdb,ducklake`` adds
DuckLake, its catalog in a new Postgres database on ``--postgres``, dropped afterwards, and its Parquet files
in a temporary directory), then an unchanged re-ingest, as rows/s with the ratio lake/file; without a
reachable Postgres the lake's row says "skipped". Exits non-zero only when a side stores the wrong number of rows.

usage: python benchmarks/ingest_vs_dlt.py [--records 20000] [--runs 3] [--scale 20000,100000,200000]
                                          [--no-faults] [--stores duckdb,ducklake] [--postgres DSN]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    DLT_PEER,
    POSTGRES_DSN,
    Measured,
    Sim,
    dlt_missing,
    lake_database,
    median,
    postgres_missing,
    print_table,
    run_measured,
    start_sim,
    stop_sim,
)

WORKER = Path(__file__).with_name("_ours_worker.py")

PAGE = 100  # hits per page, as dlt_peer.py asks for
LATENCY_MS = 10
# Loopback simulator: no pacing; 8 pages in flight (the connector's default gate).
OURS_KNOBS: dict[str, Any] = {"rate_limit": False, "max_concurrency": 8}
# Fault runs: enough retries that every page arrives; a 0.5 s timeout so a 2 s hang is cut short.
FAULT_KNOBS: dict[str, Any] = {**OURS_KNOBS, "base_delay": 0.05, "max_delay": 1.0, "max_retries": 12,
                               "timeout": 0.5, "circuit_failure_threshold": 30}
# Each fault alone (hangs at 5% so that a few happen in 50 pages), then the mix of all four.
FAULTS = [
    ("none", {}),
    ("503, 20% of requests", {"fail_rate": 0.2}),
    ("429 + Retry-After: 1, every 7th", {"ratelimit_every": 7}),
    ("truncated body, 5%", {"garbage_rate": 0.05}),
    ("hang 2 s (timeout 0.5 s), 5%", {"hang_rate": 0.05, "hang_s": 2}),
    ("all four (20% 503, 429 every 7th, 5% truncated, 2% hangs)",
     {"fail_rate": 0.2, "ratelimit_every": 7, "garbage_rate": 0.05, "hang_rate": 0.02, "hang_s": 2}),
]


def run_ours(sim: Sim, db: str | Path, limit: int, knobs: dict[str, Any] = OURS_KNOBS,
             data_path: Path | None = None) -> Measured:
    """One measured ingest of ours, in its own process, into ``db`` (a DuckDB file, or a lake's setting)."""
    spec = {"base_url": sim.hn, "db": str(db), "limit": limit, "hits_per_page": PAGE, "knobs": knobs,
            "data_path": str(data_path) if data_path else None}
    return run_measured([sys.executable, str(WORKER), json.dumps(spec)])


def stored_rows(db: str | Path, data_path: Path | None = None) -> tuple[int, int, int, list[str]]:
    """(evidence rows, distinct ids, provenance records, verify problems) of a store (a file, or a lake)."""
    from aragora_pipelines.store import EvidenceStore

    store = EvidenceStore(db, data_path=data_path)
    rows, distinct = store.query("SELECT count(*), count(DISTINCT id) FROM evidence")[0]
    return rows, distinct, store.counts()["provenance"], store.verify()


def run_dlt(sim: Sim, db: Path, expected: int) -> tuple[Measured, int]:
    """One measured dlt_peer.py run; returns it and the rows dlt stored (distinct ids, or -1 if it differs)."""
    measured = run_measured([sys.executable, str(DLT_PEER), sim.root + "/", str(db), str(expected)])
    found = re.search(r"rows=(\d+) distinct=(\d+)", measured.stdout)
    rows = int(found.group(1)) if found and found.group(1) == found.group(2) else -1
    return measured, rows


def side_by_side(records: int, runs: int, work: Path) -> bool:
    """Section 1; True when both sides stored exactly ``records`` rows in every run."""
    sim = start_sim(records=records, latency_ms=LATENCY_MS)
    ours: list[Measured] = []
    dlt: list[Measured] = []
    rows_ok = True
    try:
        for run in range(runs):  # alternate, so machine noise hits both sides alike
            db = work / f"ours-{run}.duckdb"
            ours.append(run_ours(sim, db, records))
            rows, distinct, provenance, problems = stored_rows(db)
            ok = ours[-1].returncode == 0 and rows == distinct == provenance == records and not problems
            rows_ok &= ok
            print(f"  ours run {run + 1}: {ours[-1].wall_s:.2f} s, {ours[-1].peak_mb:.0f} MB, rows={rows} "
                  f"distinct={distinct} provenance={provenance} verify={'ok' if not problems else problems[0]}")
            measured, dlt_rows = run_dlt(sim, work / f"dlt-{run}.duckdb", records)
            dlt.append(measured)
            rows_ok &= dlt_rows == records
            print(f"  dlt  run {run + 1}: {measured.wall_s:.2f} s, {measured.peak_mb:.0f} MB, rows={dlt_rows}")
    finally:
        stop_sim(sim)
    ours_wall, dlt_wall = median([m.wall_s for m in ours]), median([m.wall_s for m in dlt])
    ours_rss, dlt_rss = median([m.peak_mb for m in ours]), median([m.peak_mb for m in dlt])
    print(f"\n### {records:,} HN records, {PAGE}/page, {LATENCY_MS} ms latency; median of {runs} runs each\n")
    print_table(
        ["side", "wall s", "peak RSS MB", "rows"],
        [["ours (ingest_evidence -> DuckDB + provenance)", f"{ours_wall:.2f}", f"{ours_rss:.0f}", records],
         ["dlt rest_api -> DuckDB (merge)", f"{dlt_wall:.2f}", f"{dlt_rss:.0f}", records],
         ["ratio ours/dlt", f"{ours_wall / dlt_wall:.2f} (target <= 0.33: "
          f"{'met' if ours_wall / dlt_wall <= 1 / 3 else 'MISSED'})",
          f"{ours_rss / dlt_rss:.2f} (target <= 0.50: {'met' if ours_rss / dlt_rss <= 0.5 else 'MISSED'})",
          "exact" if rows_ok else "WRONG"]],
    )
    return rows_ok


def scaling(sizes: list[int], work: Path) -> bool:
    """Section 2: ours at each size, seconds per 10k records; True when every size stored exactly its rows."""
    table, rows_ok = [], True
    for size in sizes:
        sim = start_sim(records=size, latency_ms=LATENCY_MS)
        try:
            db = work / f"scale-{size}.duckdb"
            measured = run_ours(sim, db, size)
        finally:
            stop_sim(sim)
        rows, distinct, provenance, _ = stored_rows(db)
        ok = measured.returncode == 0 and rows == distinct == provenance == size
        rows_ok &= ok
        table.append([f"{size:,}", f"{measured.wall_s:.2f}", f"{measured.wall_s / size * 10_000:.2f}",
                      f"{measured.peak_mb:.0f}", rows if ok else f"WRONG ({rows})"])
    print(f"\n### ours by size ({PAGE}/page, {LATENCY_MS} ms latency): seconds per 10k should stay flat\n")
    print_table(["records", "wall s", "s per 10k", "peak RSS MB", "rows"], table)
    return rows_ok


def fault_costs(work: Path) -> bool:
    """Section 3: requests each injected fault costs (from the simulator's /_stats); True when nothing was lost."""
    records, table, rows_ok, clean = 5_000, [], True, 0
    for name, flags in FAULTS:
        sim = start_sim(records=records, **flags)
        try:
            db = work / f"fault-{len(table)}.duckdb"
            measured = run_ours(sim, db, records, FAULT_KNOBS)
            stats, truth = sim.stats(), sim.truth("hn")
        finally:
            stop_sim(sim)
        rows, distinct, provenance, problems = stored_rows(db) if measured.returncode == 0 else (0, 0, 0, [])
        ok = rows == distinct == provenance == truth["count"] and not problems
        rows_ok &= ok
        clean = clean or stats["requests"]
        injected = sum(stats["faults"].values())
        extra = stats["requests"] - clean
        table.append([name, stats["requests"], extra, injected,
                      f"{extra / injected:.2f}" if injected else "-", f"{measured.wall_s:.1f}",
                      "exact" if ok else "WRONG"])
    print(f"\n### what each fault costs ({records:,} records, {PAGE}/page, ids checked against /_truth/hn)\n")
    print_table(["fault", "requests", "extra requests", "faults injected", "extra per fault", "wall s", "rows"],
                table)
    return rows_ok


def on_each_backend(stores: list[str], records: int, runs: int, postgres: str, work: Path) -> bool:
    """Section 4: ours into a fresh store on each backend, then unchanged again; True when every store held exactly
    ``records`` rows (a lake skipped for want of Postgres counts as fine: it is reported, not measured).
    """
    skipped = {"ducklake": postgres_missing(postgres)} if "ducklake" in stores else {}
    sim = start_sim(records=records, latency_ms=LATENCY_MS)
    first: dict[str, list[Measured]] = {backend: [] for backend in stores}
    again: dict[str, list[Measured]] = {backend: [] for backend in stores}
    exact = {backend: True for backend in stores}
    try:
        for run in range(runs):
            for backend in stores:
                if skipped.get(backend):
                    continue
                catalog = f"aragora_bench_ingest_{os.getpid()}_{run}"
                db, data_path = work / f"backend-{run}.duckdb", None
                if backend == "ducklake":
                    db, data_path = f"ducklake:postgres:{lake_database(postgres, catalog)}", work / f"lake-{run}"
                try:
                    for measured in (first, again):  # a fresh store, then the same records unchanged
                        measured[backend].append(run_ours(sim, db, records, data_path=data_path))
                        rows, distinct, provenance, problems = stored_rows(db, data_path)
                        done = measured[backend][-1]
                        new_rows = json.loads(done.stdout)["rows_new"] if done.returncode == 0 else -1
                        exact[backend] &= (done.returncode == 0 and rows == distinct == provenance == records
                                           and new_rows == (0 if measured is again else records) and not problems)
                        print(f"  {backend} run {run + 1}, {'re-ingest' if measured is again else 'ingest'}: "
                              f"{done.wall_s:.2f} s, new={new_rows} rows={rows} distinct={distinct} "
                              f"provenance={provenance} verify={'ok' if not problems else problems[0]}")
                finally:
                    if backend == "ducklake":
                        lake_database(postgres, catalog, drop=True)
    finally:
        stop_sim(sim)
    table: list[list[object]] = []
    figures: dict[str, list[float]] = {}  # per backend: wall s, rows/s, peak MB, re-ingest wall s, re-ingest rows/s
    for backend in stores:
        if skipped.get(backend):
            table.append([backend, *"-" * 5, f"skipped: {skipped[backend]}"])  # last, so the figures stay narrow
            continue
        wall, rewall = median([m.wall_s for m in first[backend]]), median([m.wall_s for m in again[backend]])
        figures[backend] = [wall, records / wall, median([m.peak_mb for m in first[backend]]), rewall,
                            records / rewall]
        table.append([backend, f"{wall:.2f}", f"{records / wall:,.0f}", f"{figures[backend][2]:.0f}",
                      "exact" if exact[backend] else "WRONG", f"{rewall:.2f}", f"{records / rewall:,.0f}"])
    if {"duckdb", "ducklake"} <= figures.keys():
        ratios = [f"{lake / file:.2f}" for lake, file in zip(figures["ducklake"], figures["duckdb"], strict=True)]
        table.append(["ratio lake/file", *ratios[:3], "", *ratios[3:]])
    print(f"\n### ingest on each backend: {records:,} HN records into a fresh store, then again unchanged "
          f"({PAGE}/page, {LATENCY_MS} ms latency; median of {runs} runs)\n")
    print_table(["store", "wall s", "rows/s", "peak RSS MB", "rows", "re-ingest wall s", "re-ingest rows/s"], table)
    return all(exact.values())


def main(argv: list[str] | None = None) -> int:
    """Run the sections and print their tables; non-zero exit only on wrong row counts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", default="20000,100000,200000", help="comma-separated sizes ('' skips)")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault-cost section")
    parser.add_argument("--stores", default="duckdb", help="comma-separated backends for section 4: duckdb, ducklake")
    parser.add_argument("--postgres", default=POSTGRES_DSN, help="libpq DSN of the Postgres server for DuckLake")
    args = parser.parse_args(argv)
    stores = args.stores.split(",")
    if not stores or set(stores) - {"duckdb", "ducklake"} or len(set(stores)) != len(stores):
        parser.error(f"--stores {args.stores}: give duckdb, ducklake or both, comma-separated")
    if args.records < 1 or args.runs < 1:
        parser.error(f"--records {args.records} --runs {args.runs}: give at least 1 of each")
    ok = True
    with tempfile.TemporaryDirectory(prefix="aragora-bench-") as tmp:
        work = Path(tmp)
        missing = dlt_missing()
        if missing:
            print(f"\n### ours vs dlt: skipped: {missing}")
        else:
            ok &= side_by_side(args.records, args.runs, work)
        if args.scale:
            ok &= scaling([int(size) for size in args.scale.split(",")], work)
        if not args.no_faults:
            ok &= fault_costs(work)
        ok &= on_each_backend(stores, args.records, args.runs, args.postgres, work)
    if not ok:
        print("\nFAILED: a side stored the wrong number of rows (see above)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
