"""The measured side of ours: one HackerNews ingest through ingest_evidence, in a process of its own.

usage: python benchmarks/_ours_worker.py SPEC_JSON   ({"base_url", "db", "limit", "hits_per_page", "knobs"},
optionally "data_path": "db" is a DuckDB file or a ``ducklake:...`` setting, whose Parquet files go to data_path)
Imports only what the ingest needs, so the process's peak RSS is the ingest's. Prints the LoadResult as JSON.
"""

from __future__ import annotations

import json
import sys

from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.store import EvidenceStore
from connectors.hackernews import HackerNewsConnector


def main(spec: dict) -> None:
    """Ingest ``spec["limit"]`` records from the simulator at ``spec["base_url"]`` into the store ``spec["db"]``."""
    connector = HackerNewsConnector(base_url=spec["base_url"], hits_per_page=spec["hits_per_page"],
                                    retry_parse_errors=True, **spec["knobs"])
    store = EvidenceStore(spec["db"], data_path=spec.get("data_path"))
    result = ingest_evidence(connector, store, query="evidence", limit=spec["limit"],
                             asset_key="evidence_hackernews", partition_key="benchmark")
    print(json.dumps({"rows_fetched": result.rows_fetched, "rows_new": result.rows_new,
                      "provenance": result.provenance_records}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
