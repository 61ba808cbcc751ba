"""Topics: the YAML is the one truth; edits keep every other line, unsafe files are refused, the sensor syncs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DeleteDynamicPartitionsRequest,
    ExecuteInProcessResult,
    SensorResult,
    build_sensor_context,
)

from aragora_pipelines.cli import main
from aragora_pipelines.definitions import evidence_assets, topics_sensor
from aragora_pipelines.topics import (
    DEFAULT_TOPICS_FILE,
    MAX_FILE_BYTES,
    Topic,
    TopicError,
    add_topic,
    load_topics,
    remove_topic,
)

ROOT = Path(__file__).resolve().parents[2]
COMMENTED = """\
# header: what this file is
topics:
  # about alpha
  alpha:
    query: alpha words   # inline alpha
    claim_id: claim_alpha

  # about beta
  beta:
    query: "beta: quoted"
  # about gamma
  gamma: gamma words
# trailing comment
"""

# A "billion laughs" of about 1 KB: ten levels of nine aliases each name 9**10 strings once expanded.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{level}: &{level} [{', '.join([f'*{below}'] * 9)}]\n"
    for below, level in zip("abcdefghi", "bcdefghij", strict=True)
) + "topics:\n  boom:\n    query: *j\n"


def lines_without(text: str, *dropped: str) -> list[str]:
    return [line for line in text.splitlines() if line not in dropped]


# --- editing keeps the file ----------------------------------------------------------------------
def test_add_appends_and_leaves_every_existing_line(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(COMMENTED)
    assert add_topic(Topic("delta", "delta: words", "claim_delta"), path) is False
    text = path.read_text()
    assert lines_without(text, "  delta:", "    query: 'delta: words'", "    claim_id: claim_delta", "") == \
        lines_without(COMMENTED, "")
    assert list(load_topics(path)) == ["alpha", "beta", "gamma", "delta"]
    assert load_topics(path)["delta"] == Topic("delta", "delta: words", "claim_delta")


@pytest.mark.parametrize(("key", "gone"), [
    ("alpha", ["  # about alpha", "  alpha:", "    query: alpha words   # inline alpha", "    claim_id: claim_alpha"]),
    ("beta", ["  # about beta", "  beta:", '    query: "beta: quoted"']),
    ("gamma", ["  # about gamma", "  gamma: gamma words"]),
])
def test_remove_drops_only_the_entry_and_its_own_comment(tmp_path: Path, key: str, gone: list[str]) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(COMMENTED)
    remove_topic(key, path)
    assert lines_without(path.read_text(), "") == lines_without(COMMENTED, "", *gone)
    assert key not in load_topics(path) and len(load_topics(path)) == 2


def test_replace_changes_the_entry_in_place(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(COMMENTED)
    assert add_topic(Topic("beta", "new beta"), path, replace=True) is True
    assert path.read_text() == COMMENTED.replace('    query: "beta: quoted"', "    query: new beta")
    with pytest.raises(TopicError, match="already exists"):
        add_topic(Topic("beta", "again"), path)


def test_shipped_file_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    original = DEFAULT_TOPICS_FILE.read_text()
    path.write_text(original)
    add_topic(Topic("vector-databases", "vector database"), path)
    remove_topic("vector-databases", path)
    assert path.read_text() == original
    first = next(iter(load_topics(path).values()))
    remove_topic(first.key, path)
    add_topic(first, path)
    assert list(load_topics(path).values()) == [*list(load_topics(DEFAULT_TOPICS_FILE).values())[1:], first]
    assert path.read_text().startswith(original.split("topics:")[0] + "topics:\n")


def test_empty_and_flow_style_files_take_a_topic(tmp_path: Path) -> None:
    for text in ("", "# only a comment\n", "topics:\n", "topics: {}\n", "topics: {a: a words}\n"):
        path = tmp_path / "topics.yaml"
        path.write_text(text)
        add_topic(Topic("new-one", "new one"), path)
        assert load_topics(path)["new-one"] == Topic("new-one", "new one"), text
        assert ("# only a comment" in path.read_text()) == ("comment" in text)


@pytest.mark.slow  # three editor processes
def test_concurrent_editors_lose_no_topic(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(COMMENTED)
    script = ("import sys; from pathlib import Path; from aragora_pipelines.topics import Topic, add_topic\n"
              "for n in range(10): add_topic(Topic(f'w{sys.argv[2]}-{n}', 'q'), Path(sys.argv[1]))")
    editors = [subprocess.Popen([sys.executable, "-c", script, str(path), str(w)], cwd=ROOT) for w in range(3)]
    assert [editor.wait(timeout=120) for editor in editors] == [0, 0, 0]
    assert len(load_topics(path)) == 3 + 3 * 10
    assert "# about gamma" in path.read_text()


# --- reading is safe -----------------------------------------------------------------------------
def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 2_000
    with pytest.raises(TopicError, match="anchors and aliases") as error:
        load_topics(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert main(["topics", "list", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "anchors and aliases (&name, *name) are not allowed" in err


def test_a_single_anchor_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n  a: &q {query: shared}\n  b: *q\n")
    with pytest.raises(TopicError, match=r"anchors and aliases .* \(line 2\)"):
        load_topics(path)


def test_file_over_one_megabyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n" + "#" * MAX_FILE_BYTES)
    with pytest.raises(TopicError, match=f"{path} is larger than 1 MB"):
        load_topics(path)
    with pytest.raises(TopicError, match="larger than 1 MB"):
        add_topic(Topic("x", "x"), path)


@pytest.mark.parametrize(("text", "needle"), [
    ("topics:\n  a: {qury: typo}\n", "topic 'a' has unknown field(s) qury"),
    ("topics:\n  a: {query: 2024}\n", "query must be text"),
    ("topics:\n  a: x\n  a: y\n", "duplicate key"),
    ("topics:\n  Bad Key: x\n", "topic key 'Bad Key' is not valid"),
    ("topics: [a, b]\n", "'topics' must be a mapping"),
    ("topics:\n  a: [x\n", "not a valid topics file"),
])
def test_malformed_files_are_refused_and_never_rewritten(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    with pytest.raises(TopicError, match=str(path)) as error:
        load_topics(path)
    assert needle in str(error.value)
    with pytest.raises(TopicError):
        add_topic(Topic("new-one", "q"), path)
    assert path.read_text() == text


# --- the topics sensor, both ways ----------------------------------------------------------------
def tick(instance: DagsterInstance, cursor: str | None = None) -> SensorResult:
    """Evaluate the sensor and apply its partition requests the way the daemon does."""
    result = topics_sensor(build_sensor_context(instance=instance, cursor=cursor))
    for request in result.dynamic_partitions_requests:
        if isinstance(request, AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


@pytest.fixture
def sensor_topics(topics_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics_file))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return topics_file


def test_sensor_adds_file_topics_and_writes_back_a_ui_partition(sensor_topics: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    instance = DagsterInstance.ephemeral()
    first = tick(instance)
    assert set(instance.get_dynamic_partitions("topics")) == {"ai-safety", "rate-limiting"}
    assert set(json.loads(first.cursor)) == {"ai-safety", "rate-limiting"}
    assert tick(instance, first.cursor).skip_reason.skip_message == "topics are in sync"

    instance.add_dynamic_partitions("topics", ["vector-dbs"])  # what the UI's "Add partition" does
    before = sensor_topics.read_text()
    result = tick(instance, first.cursor)
    assert "partition 'vector-dbs' was added in the UI: wrote it to" in result.skip_reason.skip_message
    assert sensor_topics.read_text() == before + "  vector-dbs:\n    query: vector dbs\n"
    assert "vector-dbs" in instance.get_dynamic_partitions("topics")
    assert "vector-dbs" in json.loads(result.cursor)
    assert main(["topics", "list"]) == 0
    assert any(line.split() == ["vector-dbs", "vector", "dbs", "NULL"] for line in capsys.readouterr().out.splitlines())
    assert tick(instance, result.cursor).skip_reason.skip_message == "topics are in sync"


def test_sensor_deletes_a_removed_topic_but_keeps_a_materialized_one(
        sensor_topics: Path, instance: DagsterInstance, run_assets: Callable[..., ExecuteInProcessResult]) -> None:
    cursor = tick(instance).cursor
    assert run_assets([evidence_assets["local_docs"]], "ai-safety").success
    remove_topic("ai-safety", sensor_topics)
    remove_topic("rate-limiting", sensor_topics)
    result = tick(instance, cursor)
    assert instance.get_dynamic_partitions("topics") == ["ai-safety"]
    assert [key for request in result.dynamic_partitions_requests for key in request.partition_keys
            if isinstance(request, DeleteDynamicPartitionsRequest)] == ["rate-limiting"]
    kept = tick(instance, result.cursor)  # next tick: still kept, said again, never written back to the file
    assert kept.skip_reason.skip_message == (
        f"kept partition 'ai-safety': it is not in {sensor_topics} but topic 'ai-safety' has 1 materialized partition "
        "across 1 asset; run `aragora-pipelines topics remove ai-safety --force` to delete it, or add it to the file")
    assert load_topics(sensor_topics) == {}
    assert instance.get_dynamic_partitions("topics") == ["ai-safety"]


def test_first_tick_counts_unknown_partitions_as_removed(sensor_topics: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["left-by-old-remove", "Not A Key"])
    before = sensor_topics.read_text()
    tick(instance)
    assert set(instance.get_dynamic_partitions("topics")) == {"ai-safety", "rate-limiting"}
    assert sensor_topics.read_text() == before
    instance.add_dynamic_partitions("topics", ["Added In UI"])  # a key the file cannot hold: refused, said why
    result = tick(instance, json.dumps(["ai-safety", "rate-limiting"]))
    assert "Added In UI" not in instance.get_dynamic_partitions("topics")
    assert result.dynamic_partitions_requests[0].partition_keys == ["Added In UI"]
    assert sensor_topics.read_text() == before


def test_sensor_leaves_partitions_alone_without_a_topics_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(tmp_path / "missing.yaml"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["kept"])
    result = tick(instance)
    assert "no topics file at" in result.skip_reason.skip_message
    assert instance.get_dynamic_partitions("topics") == ["kept"]


def test_sensor_fails_on_an_unsafe_file_and_changes_nothing(sensor_topics: Path) -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["kept"])
    sensor_topics.write_text(ALIAS_BOMB)
    with pytest.raises(TopicError, match="anchors and aliases"):
        tick(instance, json.dumps(["kept"]))
    assert instance.get_dynamic_partitions("topics") == ["kept"] and sensor_topics.read_text() == ALIAS_BOMB
