"""LocalDocsConnector: ranking, formats, path guards in search and fetch, mtime window and scores."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from connectors.base import Evidence
from connectors.exceptions import ConnectorAuthError, ConnectorParseError, ConnectorValidationError
from connectors.local_docs import LocalDocsConnector
from connectors.provenance import SourceType


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream draws ``text`` in Helvetica (written by hand, xref included)."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write(root: Path, relative: str, content: str | bytes, age_days: float = 0.0) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    moment = time.time() - age_days * 86400
    os.utime(path, (moment, moment))
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    write(root, "guide.md", "# Rate limiting guide\n\nA token bucket refills tokens. Token buckets allow bursts.\n")
    write(root, "notes.txt", "The leaky bucket drains at a constant rate.\n", age_days=10)
    write(root, "sub/intro.rst", "Introduction\n============\n\nNothing relevant here.\n")
    write(
        root,
        "page.html",
        "<html><head><title>Bucket &amp; friends</title><script>var token = 'bucket';</script></head>"
        "<body><h1>Heading</h1><p>Bucket algorithms <b>compared</b>.</p></body></html>",
    )
    write(root, "data.json", json.dumps({"title": "JSON record", "body": "token accounting", "n": None}))
    write(root, "paper.pdf", minimal_pdf("Token bucket rate limiting in PDF"))
    return root


@pytest.fixture
def connector(docs: Path) -> LocalDocsConnector:
    return LocalDocsConnector(root=docs)


def test_the_handwritten_pdf_fixture_has_a_text_layer() -> None:
    reader = PdfReader(io.BytesIO(minimal_pdf("hello pdf")))
    assert reader.pages[0].extract_text() == "hello pdf"


async def test_search_ranks_by_distinct_terms_then_match_count(connector: LocalDocsConnector, docs: Path) -> None:
    results = await connector.search("token bucket", limit=10)
    paths = [e.source_id for e in results]
    # guide.md and paper.pdf match both words; guide.md more often. The others match one word.
    assert paths[:2] == ["guide.md", "paper.pdf"]
    assert set(paths[2:]) == {"page.html", "notes.txt", "data.json"}
    assert "sub/intro.rst" not in paths
    top = results[0]
    assert top.id == "local_docs:guide.md"
    assert top.source_type is SourceType.DOCUMENT
    assert top.title == "Rate limiting guide"
    assert top.metadata["matched_terms"] == ["token", "bucket"]
    assert top.metadata["match_count"] >= 4
    assert top.metadata["path"] == "guide.md"
    assert top.metadata["extension"] == ".md"
    assert top.metadata["size_bytes"] == (docs / "guide.md").stat().st_size
    assert "token bucket" in top.metadata["snippet"].lower()
    json.dumps([e.to_dict() for e in results])  # metadata is JSON-serialisable


async def test_limit_is_honoured_exactly(tmp_path: Path) -> None:
    for i in range(7):
        write(tmp_path, f"doc{i}.txt", f"evidence number {i}")
    connector = LocalDocsConnector(root=tmp_path)
    assert len(await connector.search("evidence", limit=3)) == 3
    assert len(await connector.search("evidence", limit=50)) == 7
    with pytest.raises(ConnectorValidationError, match="limit"):
        await connector.search("evidence", limit=0)


async def test_a_query_without_words_lists_every_document_newest_first(connector: LocalDocsConnector) -> None:
    results = await connector.search("  ", limit=10)
    assert len(results) == 6
    assert results[-1].source_id == "notes.txt"  # ten days old, the others are new


async def test_html_is_turned_into_text_without_scripts(connector: LocalDocsConnector) -> None:
    evidence = await connector.fetch("page.html")
    assert evidence is not None
    assert evidence.title == "Bucket & friends"
    assert "Bucket algorithms compared." in evidence.content
    assert "<" not in evidence.content and "var token" not in evidence.content


async def test_pdf_json_and_rst_are_extracted(connector: LocalDocsConnector) -> None:
    pdf = await connector.fetch("paper.pdf")
    assert pdf is not None and pdf.content == "Token bucket rate limiting in PDF"
    assert pdf.title == "paper"  # the PDF carries no /Title, so the file stem is used
    record = await connector.fetch("data.json")
    assert record is not None and record.title == "JSON record"
    assert json.loads(record.content) == {"title": "JSON record", "body": "token accounting", "n": None}
    rst = await connector.fetch("local_docs:sub/intro.rst")
    assert rst is not None and rst.title == "Introduction" and rst.id == "local_docs:sub/intro.rst"


async def test_fetch_returns_the_same_id_as_search(connector: LocalDocsConnector) -> None:
    found = {e.id: e for e in await connector.search("leaky")}
    fetched = await connector.fetch("notes.txt")
    assert fetched is not None and fetched.id in found
    assert fetched.content_hash == found[fetched.id].content_hash
    again = await connector.fetch("./notes.txt")
    assert again is not None and again.id == "local_docs:notes.txt"


async def test_fetch_of_a_missing_file_is_none(connector: LocalDocsConnector) -> None:
    assert await connector.fetch("nope.md") is None
    assert await connector.fetch("local_docs:sub/none.txt") is None


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../outside.md", r"'\.\.'"),
        ("sub/../../outside.md", r"'\.\.'"),
        ("/etc/passwd", "absolute"),
        (".secret.md", "hidden"),
        (".git/config.md", "hidden"),
        ("sub/.private/notes.md", "hidden"),
        ("", "non-empty"),
        ("sub\\intro.rst", "'/' separators"),
        ("script.py", "unsupported type"),
        ("sub", "not a regular file"),
    ],
)
async def test_fetch_refuses_paths_outside_the_rules(
    connector: LocalDocsConnector, docs: Path, relative: str, reason: str
) -> None:
    write(docs.parent, "outside.md", "token bucket secrets")
    write(docs, ".secret.md", "token")
    write(docs, ".git/config.md", "token")
    write(docs, "sub/.private/notes.md", "token")
    write(docs, "script.py", "token = 1")
    with pytest.raises(ConnectorValidationError, match=reason) as info:
        await connector.fetch(relative)
    assert "refused path" in str(info.value)


async def test_fetch_refuses_an_absolute_path_even_inside_the_root(connector: LocalDocsConnector, docs: Path) -> None:
    with pytest.raises(ConnectorValidationError, match="absolute"):
        await connector.fetch(str(docs / "guide.md"))


async def test_symlinks_leaving_the_root_are_refused_in_fetch_and_skipped_in_search(
    connector: LocalDocsConnector, docs: Path
) -> None:
    outside = write(docs.parent, "outside.md", "zebra classified")
    (docs / "escape.md").symlink_to(outside)
    (docs / "linked_dir").symlink_to(docs.parent, target_is_directory=True)
    with pytest.raises(ConnectorValidationError, match="outside the root"):
        await connector.fetch("escape.md")
    with pytest.raises(ConnectorValidationError, match="outside the root"):
        await connector.fetch("linked_dir/outside.md")
    assert await connector.search("zebra") == []


async def test_a_symlink_to_a_hidden_file_inside_the_root_is_refused(connector: LocalDocsConnector, docs: Path) -> None:
    hidden = write(docs, ".env.txt", "zebra=1")
    (docs / "visible.txt").symlink_to(hidden)
    with pytest.raises(ConnectorValidationError, match="hidden"):
        await connector.fetch("visible.txt")
    assert await connector.search("zebra") == []


async def test_a_symlink_staying_inside_the_root_is_served(connector: LocalDocsConnector, docs: Path) -> None:
    (docs / "alias.md").symlink_to(docs / "guide.md")
    evidence = await connector.fetch("alias.md")
    assert evidence is not None and evidence.title == "Rate limiting guide"


async def test_hidden_and_oversized_files_are_skipped_by_search(docs: Path) -> None:
    write(docs, ".hidden.md", "zebra")
    write(docs, ".cache/notes.md", "zebra")
    write(docs, "big.txt", "zebra " * 400)
    write(docs, "small.txt", "zebra")
    connector = LocalDocsConnector(root=docs, max_file_bytes=1000)
    assert [e.source_id for e in await connector.search("zebra")] == ["small.txt"]
    with pytest.raises(ConnectorValidationError, match="max_file_bytes=1000"):
        await connector.fetch("big.txt")


async def test_an_unreadable_pdf_is_skipped_by_search_and_a_parse_error_in_fetch(docs: Path) -> None:
    write(docs, "broken.pdf", b"%PDF-1.4 zebra this is not a pdf")
    write(docs, "zebra.txt", "zebra")
    connector = LocalDocsConnector(root=docs)
    assert [e.source_id for e in await connector.search("zebra")] == ["zebra.txt"]
    with pytest.raises(ConnectorParseError, match=r"broken\.pdf"):
        await connector.fetch("broken.pdf")


async def test_empty_files_and_a_pdf_without_text_do_not_crash(tmp_path: Path) -> None:
    write(tmp_path, "empty.md", "")
    write(tmp_path, "blank.pdf", blank_pdf())
    write(tmp_path, "bad.json", "{not json")
    write(tmp_path, "long.txt", "word " * 3000)
    connector = LocalDocsConnector(root=tmp_path)
    empty = await connector.fetch("empty.md")
    blank = await connector.fetch("blank.pdf")
    bad = await connector.fetch("bad.json")
    long = await connector.fetch("long.txt")
    assert empty is not None and empty.content == "" and empty.title == "empty"
    assert blank is not None and blank.content == ""
    assert bad is not None and bad.content == "{not json"
    assert long is not None
    assert empty.confidence == pytest.approx(0.4)
    assert long.confidence > 0.85


async def test_not_configured_raises_auth_error_naming_the_env_var() -> None:
    connector = LocalDocsConnector()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="ARAGORA_LOCAL_DOCS_ROOT"):
        await connector.search("x")
    with pytest.raises(ConnectorAuthError, match="ARAGORA_LOCAL_DOCS_ROOT"):
        await connector.fetch("a.md")


async def test_the_root_is_read_from_the_environment(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_LOCAL_DOCS_ROOT", str(docs))
    connector = LocalDocsConnector()
    assert connector.is_configured and connector.is_available
    assert [e.source_id for e in await connector.search("leaky")] == ["notes.txt"]


async def test_a_root_that_is_not_a_directory_is_a_validation_error(tmp_path: Path) -> None:
    file_root = write(tmp_path, "file.txt", "x")
    for root in (file_root, tmp_path / "missing"):
        with pytest.raises(ConnectorValidationError, match="not a directory"):
            await LocalDocsConnector(root=root).search("x")


async def test_since_and_until_filter_on_modification_time(tmp_path: Path) -> None:
    write(tmp_path, "old.txt", "zebra", age_days=30)
    write(tmp_path, "mid.txt", "zebra", age_days=5)
    write(tmp_path, "new.txt", "zebra")
    connector = LocalDocsConnector(root=tmp_path)
    now = datetime.now(UTC)
    recent = await connector.search("zebra", since=now - timedelta(days=7))
    assert {e.source_id for e in recent} == {"mid.txt", "new.txt"}
    window = await connector.search("zebra", since=now - timedelta(days=7), until=now - timedelta(days=1))
    assert [e.source_id for e in window] == ["mid.txt"]
    naive = await connector.search("zebra", until=(now - timedelta(days=20)).replace(tzinfo=None))
    assert [e.source_id for e in naive] == ["old.txt"]


async def test_freshness_decays_smoothly_with_the_file_age(tmp_path: Path) -> None:
    for name, age in (("a.txt", 0), ("b.txt", 100), ("c.txt", 365)):
        write(tmp_path, name, "zebra", age_days=age)
    connector = LocalDocsConnector(root=tmp_path, authority=0.7)
    scores = {e.source_id: e for e in await connector.search("zebra")}
    assert scores["a.txt"].freshness > scores["b.txt"].freshness > scores["c.txt"].freshness
    assert scores["a.txt"].freshness == pytest.approx(1.0, abs=1e-3)
    assert scores["c.txt"].freshness == pytest.approx(0.5, abs=1e-3)
    assert all(e.authority == 0.7 for e in scores.values())
    assert scores["c.txt"].created_at is not None and scores["c.txt"].created_at.endswith("Z")


async def test_fetch_is_cached_until_the_file_changes(connector: LocalDocsConnector, docs: Path) -> None:
    first = await connector.fetch("notes.txt")
    assert await connector.fetch("notes.txt") is first
    assert connector.get_cache_stats()["hits"] == 1
    write(docs, "notes.txt", "Rewritten content, longer than before.", age_days=1)
    changed = await connector.fetch("notes.txt")
    assert changed is not None and changed.content == "Rewritten content, longer than before."


def test_bad_knobs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConnectorValidationError, match="max_file_bytes"):
        LocalDocsConnector(root=tmp_path, max_file_bytes=0)
    with pytest.raises(ConnectorValidationError, match="authority"):
        LocalDocsConnector(root=tmp_path, authority=1.5)


# --- hardening (issue 12): one bad file never sinks the folder ------------------------------------------
def mutated_pdfs(count: int, seed: int = 12) -> list[bytes]:
    """``count`` damaged copies of two valid PDFs: bytes overwritten, PDF tokens inserted, spans cut or copied."""
    rng = random.Random(seed)
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Rate limiting"})
    buffer = io.BytesIO()
    writer.write(buffer)
    seeds = [minimal_pdf("Token bucket rate limiting in PDF"), buffer.getvalue()]
    tokens = [b"0", b"-1", b"99999999999", b"/", b"<<", b">>", b"[", b"R", b" obj", b"stream"]
    out = []
    for n in range(count):
        data = bytearray(seeds[n % 2])
        for _ in range(rng.randint(1, 4)):
            op, i = rng.random(), rng.randrange(len(data))
            if op < 0.4:
                data[i] = rng.randrange(256)
            elif op < 0.6:
                data[i:i] = rng.choice(tokens)
            elif op < 0.8:
                del data[i : i + rng.randint(1, 20)]
            else:
                j = rng.randrange(len(data))
                data[i:i] = data[j : j + rng.randint(1, 30)]
        out.append(bytes(data))
    return out


async def test_a_folder_of_damaged_pdfs_loses_only_the_unreadable_ones(tmp_path: Path) -> None:
    # Before: pypdf raised AttributeError (mutant 7) and LimitReachedError (mutant 299), which the connector did
    # not expect, and the whole search ended with a traceback.
    for n, data in enumerate(mutated_pdfs(300)):
        write(tmp_path, f"pdf/{n:03}.pdf", data)
    write(tmp_path, "guide.md", "# Guide\n\nzebra")
    connector = LocalDocsConnector(root=tmp_path)
    found = await connector.search("", limit=1000)
    assert "guide.md" in [e.source_id for e in found]
    assert len(found) + len(connector.skipped) == 301
    assert connector.skipped and all("not a readable PDF" in reason for _, reason in connector.skipped)
    assert {"pdf/007.pdf", "pdf/299.pdf"} <= {path for path, _ in connector.skipped}


async def test_a_self_referencing_symlink_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: Path.resolve raised RuntimeError('Symlink loop') and the search ended there.
    write(tmp_path, "guide.md", "zebra")
    (tmp_path / "self.md").symlink_to("self.md")
    (tmp_path / "a.md").symlink_to("b.md")
    (tmp_path / "b.md").symlink_to("a.md")
    connector = LocalDocsConnector(root=tmp_path)
    with caplog.at_level("WARNING", logger="connectors.local_docs"):
        found = await connector.search("zebra")
    assert [e.source_id for e in found] == ["guide.md"]
    assert [path for path, _ in connector.skipped] == ["a.md", "b.md", "self.md"]
    assert "'self.md': it cannot be resolved (a symlink loop?)" in caplog.text
    with pytest.raises(ConnectorValidationError, match="symlink loop"):
        await connector.fetch("self.md")


async def test_json_nested_a_thousand_deep_is_skipped_and_fetch_says_why(tmp_path: Path) -> None:
    # Before: RecursionError from json.loads ended the search with a traceback.
    write(tmp_path, "deep.json", "[" * 1000 + "]" * 1000)
    write(tmp_path, "deep_object.json", '{"a": ' * 1000 + "1" + "}" * 1000)
    write(tmp_path, "ok.json", json.dumps({"title": "Fine", "body": [[["zebra"]]]}))
    connector = LocalDocsConnector(root=tmp_path)
    assert [e.source_id for e in await connector.search("zebra")] == ["ok.json"]
    assert sorted(connector.skipped) == [("deep.json", "deep.json: JSON nested too deeply to read"),
                                         ("deep_object.json", "deep_object.json: JSON nested too deeply to read")]
    with pytest.raises(ConnectorParseError, match=r"deep\.json: JSON nested too deeply"):
        await connector.fetch("deep.json")


async def test_names_differing_only_in_undecodable_bytes_get_distinct_fetchable_ids(tmp_path: Path) -> None:
    # Before: both ids held the same lone surrogate, which the store wrote as '?': a duplicate key, 0 stored.
    for raw, text in ((b"report\xff.md", "zebra one"), (b"report\xfe.md", "zebra two"), (b"caf\xe9.txt", "zebra 3")):
        (tmp_path / os.fsdecode(raw)).write_text(text)
    connector = LocalDocsConnector(root=tmp_path)
    found = await connector.search("zebra", limit=10)
    ids = sorted(e.id for e in found)
    assert ids == ["local_docs:caf\\xe9.txt", "local_docs:report\\xfe.md", "local_docs:report\\xff.md"]
    for evidence in found:
        evidence.id.encode("utf-8")  # no lone surrogate left: storable as UTF-8
        again = await connector.fetch(evidence.id)
        assert again is not None and (again.id, again.content) == (evidence.id, evidence.content)
    assert (await connector.fetch("local_docs:report\\xff.md")).title == "report\\xff"


def finishes(call: Callable[[], object], seconds: float = 60.0) -> bool:
    """Whether ``call`` returns within ``seconds`` (a daemon thread: a runaway call cannot hold the test run)."""
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


def test_a_page_of_unclosed_title_tags_is_read_in_linear_time(tmp_path: Path) -> None:
    # Before: the <title> regex backtracked over every '<title' to the end of the page: over 120 s for this
    # 1.2 MB page, 33 s for a 480 KB one. The generous limit only separates linear from quadratic.
    write(tmp_path, "trap.html", "<title" * 200_000)
    write(tmp_path, "trap2.html", "<h1 " * 120_000 + "<title>Real title</title>")
    connector = LocalDocsConnector(root=tmp_path)
    found: list[Evidence] = []
    assert finishes(lambda: found.extend(asyncio.run(connector.search("", limit=10))))
    assert sorted((e.source_id, e.title) for e in found) == [("trap.html", "trap"), ("trap2.html", "Real title")]
