"""A DuckLake store whose Parquet files are on S3, served on loopback by moto's server (the S3 protocol)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.provenance import SourceType
from tests.conftest import free_port

BUCKET = "aragora-lake"
CTX = LoadContext(connector="LocalDocs", run_id="run-1", asset_key="evidence_local_docs", partition_key="topic")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An S3 endpoint on 127.0.0.1 with an empty bucket; the store finds it through the standard AWS_* variables."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def test_a_lake_on_s3_stores_parquet_there_and_reads_it_back(s3: object, postgres_dsn: str) -> None:
    spec = f"ducklake:postgres:{postgres_dsn}"
    store = EvidenceStore(spec, lock_timeout=30, data_path=f"s3://{BUCKET}/store/")
    docs = [Evidence(id=f"local_docs:{i}", source_type=SourceType.DOCUMENT, source_id=str(i), title=f"doc {i}",
                     content=f"body {i}", created_at="2026-01-01T00:00:00Z") for i in range(200)]
    assert store.load_evidence(docs, CTX).rows_new == 200
    docs[7].content = "edited 7"
    assert store.load_evidence(docs, CTX).rows_changed == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]  # type: ignore[attr-defined]
    assert any(k.startswith("store/main/evidence_versions/") and k.endswith(".parquet") for k in keys)
    # Another process that knows only the catalog reads it back: the data path is recorded there.
    reader = EvidenceStore(spec, lock_timeout=30)
    assert reader.query("SELECT count(*) FROM evidence_versions") == [(201,)]
    assert reader.query("SELECT content FROM evidence WHERE id = 'local_docs:7'") == [("edited 7",)]
    assert reader.verify() == []
