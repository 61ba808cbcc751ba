#!/usr/bin/env python3
"""The peer a user would pick instead of ours: dlt's rest_api source loading the simulator's HackerNews search
into DuckDB (merge on objectID), measured by benchmarks/ingest_vs_dlt.py on the same data.

usage: python benchmarks/dlt_peer.py SIM_ROOT_URL DB_PATH EXPECTED_ROWS [--query Q] [--hits-per-page N]
Needs the `bench` extra (`make bench` installs dlt). Prints one line, ``dlt rows=N distinct=N seconds=S``,
and exits 1 when the stored rows differ from EXPECTED_ROWS.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time

import dlt
import duckdb
from dlt.sources.rest_api import rest_api_source


def hn_source(root_url: str, query: str, hits_per_page: int) -> object:
    """dlt's rest_api source over the Algolia search route, paged by page number up to nbPages."""
    return rest_api_source({
        "client": {"base_url": root_url, "paginator": {
            "type": "page_number", "base_page": 0, "page_param": "page", "total_path": "nbPages",
            "maximum_page": 1_000_000}},
        "resource_defaults": {"write_disposition": "merge", "primary_key": "objectID"},
        "resources": [{"name": "hn_stories", "endpoint": {
            "path": "hn/api/v1/search", "params": {"query": query, "hitsPerPage": hits_per_page},
            "data_selector": "hits"}}],
    })


def main(argv: list[str] | None = None) -> int:
    """Run the dlt pipeline into DB_PATH and report rows, distinct ids and seconds; 0 when rows are exact."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root_url", help="the simulator's root, e.g. http://127.0.0.1:8765/")
    parser.add_argument("db", help="DuckDB file to write")
    parser.add_argument("expected", type=int, help="rows the load must store")
    parser.add_argument("--query", default="evidence")
    parser.add_argument("--hits-per-page", type=int, default=100)
    args = parser.parse_args(argv)
    root_url = args.root_url if args.root_url.endswith("/") else args.root_url + "/"

    workdir = tempfile.mkdtemp(prefix="aragora-dlt-peer-")
    started = time.perf_counter()
    try:  # dlt keeps its pipeline state in workdir; a fresh one each run, so no state carries over
        pipeline = dlt.pipeline(pipeline_name="hn_peer", destination=dlt.destinations.duckdb(args.db),
                                dataset_name="peer", pipelines_dir=workdir)
        pipeline.run(hn_source(root_url, args.query, args.hits_per_page))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    with duckdb.connect(args.db, read_only=True) as con:
        rows, distinct = con.execute("SELECT count(*), count(DISTINCT object_id) FROM peer.hn_stories").fetchone()
    print(f"dlt rows={rows} distinct={distinct} seconds={seconds:.2f}")
    return 0 if rows == distinct == args.expected else 1


if __name__ == "__main__":
    sys.exit(main())
