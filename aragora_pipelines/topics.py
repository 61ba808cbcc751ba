"""Topics: the queries debates need. The YAML file is the one truth; the ``topics`` dynamic partitions follow it.

The file is read with a round-trip loader that refuses anchors and aliases (an alias bomb expands a few KB into
GB) and files over 1 MB; edits keep comments, key order and formatting, under a lock, written atomically.
:func:`reconcile` is what the topics sensor does each tick: add partitions for new topics, write topics added in
the UI back to the file, delete partitions of removed topics unless they have materializations.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

DEFAULT_TOPICS_FILE = Path(__file__).with_name("topics.yaml")
TOPIC_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PARTITIONS = "topics"  # the name of the DynamicPartitionsDefinition the evidence assets use
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 16  # topics -> key -> fields is 3 deep; anything far deeper is not a topics file
FIELDS = ("query", "claim_id")


class TopicError(ValueError):
    """A topic file or key problem, with what to fix."""


@dataclass(frozen=True)
class Topic:
    """One topic: its partition key, the search query it stands for, and an optional claim it supports."""

    key: str
    query: str
    claim_id: str | None = None


def topics_file() -> Path:
    """The topics YAML in use: ``ARAGORA_TOPICS_FILE`` or the one shipped with the project."""
    return Path(os.environ.get("ARAGORA_TOPICS_FILE") or DEFAULT_TOPICS_FILE)


def validate_key(key: str) -> str:
    """Check a topic key is usable as a partition key (lower-case letters, digits, '-', '_'; no commas)."""
    if not TOPIC_KEY.match(key):
        raise TopicError(
            f"topic key {key!r} is not valid: use 1-63 lower-case letters, digits, '-' or '_' "
            "(it becomes a Dagster partition key)"
        )
    return key


def query_for_key(key: str) -> str:
    """The default query of a topic added without one (e.g. from the UI): its key with spaces."""
    return re.sub(r"[-_]+", " ", key).strip()


# --- reading -------------------------------------------------------------------------------------
class _NoAliasComposer(Composer):  # type: ignore[misc]
    """A composer that refuses anchors and aliases before anything is built, so a bomb costs nothing."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "anchors and aliases (&name, *name) are not allowed in a topics file; "
                                "write each topic out in full", event.start_mark)
        return super().compose_node(parent, index)


def _yaml() -> YAML:
    """A round-trip YAML (comments and order kept) with the alias-refusing composer and bounded nesting."""
    yaml = YAML(typ="rt")
    yaml.Composer = _NoAliasComposer
    yaml.max_depth = MAX_DEPTH
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long query
    return yaml


def _describe(exc: YAMLError) -> str:
    """A YAML error on one line: the problem and its line."""
    if isinstance(exc, MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark or exc.context_mark
        return f"{exc.problem}" + (f" (line {mark.line + 1})" if mark is not None else "")
    return " ".join(str(exc).split())


def _read_text(path: Path) -> str | None:
    """The file's text (``None`` when missing), refused beyond ``MAX_FILE_BYTES``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TopicError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TopicError(f"{path} is larger than {MAX_FILE_BYTES // 1_000_000} MB; a topics file lists topics, "
                         "keep it small")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TopicError(f"{path} is not UTF-8 text") from None


def _parse(text: str | None, path: Path) -> Any:
    """The parsed document (``None`` when missing or empty); anchors and aliases refused."""
    try:
        return _yaml().load(text) if text else None
    except YAMLError as exc:
        raise TopicError(f"{path} is not a valid topics file: {_describe(exc)}") from None


def _entries(document: Any, path: Path) -> dict[str, Any]:
    """The ``topics`` mapping of a parsed file (``{}`` when absent)."""
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise TopicError(f"{path}: expected a mapping with a 'topics' key")
    entries = document.get("topics")
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise TopicError(f"{path}: 'topics' must be a mapping of key -> {{query, claim_id}}")
    return entries


def _topic(key: Any, spec: Any, path: Path) -> Topic:
    """One entry as a Topic: ``key:`` alone, ``key: query`` or ``key: {query, claim_id}``."""
    if not isinstance(key, str):
        raise TopicError(f"{path}: topic key {key!r} must be text")
    try:
        validate_key(key)
    except TopicError as exc:
        raise TopicError(f"{path}: {exc}") from None
    if spec is None or isinstance(spec, str):
        spec = {"query": spec}
    if not isinstance(spec, dict):
        raise TopicError(f"{path}: topic {key!r} must be a query or a mapping with query and claim_id")
    unknown = [str(field) for field in spec if field not in FIELDS]
    if unknown:
        raise TopicError(f"{path}: topic {key!r} has unknown field(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(FIELDS)}")
    for field in FIELDS:
        if spec.get(field) is not None and not isinstance(spec[field], str):
            raise TopicError(f"{path}: topic {key!r}: {field} must be text (quote it)")
    return Topic(key, spec.get("query") or query_for_key(key), spec.get("claim_id") or None)


def load_topics(path: Path | None = None) -> dict[str, Topic]:
    """Read the topics file safely, in file order; a missing file means no topics."""
    path = path or topics_file()
    return _topics_in(_parse(_read_text(path), path), path)


def _topics_in(document: Any, path: Path) -> dict[str, Topic]:
    """Every topic of a parsed file, in file order."""
    return {str(key): _topic(key, spec, path) for key, spec in _entries(document, path).items()}


def topic_for(key: str, path: Path | None = None) -> Topic:
    """The topic for a partition key; a key not (yet) in the file searches its words."""
    return load_topics(path).get(key) or Topic(validate_key(key), query_for_key(key))


# --- editing -------------------------------------------------------------------------------------
class TopicExists(TopicError):
    """The topic to add is already in the file."""


def add_topic(topic: Topic, path: Path | None = None, replace: bool = False) -> bool:
    """Append ``topic`` to the file, or with ``replace`` change it in place; returns whether it existed."""
    return _change(path or topics_file(), validate_key(topic.key), topic, replace)


def remove_topic(key: str, path: Path | None = None) -> None:
    """Remove one topic from the file, with the comment lines just above it."""
    path = path or topics_file()
    if not path.exists():
        raise TopicError(f"no topic {key!r}: {path} does not exist")
    _change(path, key, None, replace=True)


def _change(path: Path, key: str, topic: Topic | None, replace: bool) -> bool:
    """Set (``topic``) or remove (``None``) one entry under the file lock, leaving every other line as it was.

    Entries laid out one per line are edited as text (verified by parsing the result); anything else (an empty
    or flow-style mapping) is re-emitted by the round-trip dumper, which also keeps comments and order.
    """
    try:
        with _locked(path):
            text = _read_text(path) or ""
            document = _parse(text, path)
            want = _topics_in(document, path)
            existed = key in want
            if topic is None and not existed:
                raise TopicError(f"no topic {key!r} in {path}; known: {', '.join(want) or 'none'}")
            if topic is not None and existed and not replace:
                raise TopicExists(f"topic {key!r} already exists in {path}; use --replace to change it")
            if topic is None:
                del want[key]
            else:
                want[key] = topic
            new = _edit_lines(text, _entries(document, path), key, topic)
            if new is None or list(_topics_in(_parse(new, path), path).items()) != list(want.items()):
                new = _edit_document(text, document, key, topic)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(new, "utf-8")
            tmp.replace(path)
    except OSError as exc:
        raise TopicError(f"cannot write {path}: {exc.strerror}") from None
    return existed


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), so two editors never lose each other's change.

    Edits replace the file, so a waiter that locked the old file retries on the new one.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                yield
                return
        finally:
            os.close(fd)


def _spec(topic: Topic) -> CommentedMap:
    """A topic's YAML value: its query and, if any, its claim."""
    spec = CommentedMap(query=topic.query)
    if topic.claim_id:
        spec["claim_id"] = topic.claim_id
    return spec


def _edit_lines(text: str, entries: Any, key: str, topic: Topic | None) -> str | None:
    """The file with one entry removed, replaced or appended as text; ``None`` unless entries are one per line.

    An entry owns its key line, the lines indented under it, and the comment lines right above it at its
    indentation; blank lines and other comments stay where they are.
    """
    if not isinstance(entries, CommentedMap) or not entries or entries.fa.flow_style():
        return None
    keys = list(entries)
    rows = [entries.lc.key(k) for k in keys]
    col = rows[0][1]
    if any(c != col for _, c in rows) or len({r for r, _ in rows}) != len(rows):
        return None
    lines = text.splitlines(keepends=True)
    lines[-1] = lines[-1] if lines[-1].endswith("\n") else lines[-1] + "\n"

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" ")) if line.strip() else -1

    starts, ends = [], []
    for i, (row, _) in enumerate(rows):
        start = row
        while start > 0 and lines[start - 1].lstrip().startswith("#") and indent(lines[start - 1]) == col:
            start -= 1
        end = row + 1
        for j in range(row + 1, rows[i + 1][0] if i + 1 < len(rows) else len(lines)):
            if indent(lines[j]) == -1:
                continue
            if indent(lines[j]) <= col:
                break
            end = j + 1
        starts.append(start)
        ends.append(end)
    if key in entries:
        i = keys.index(key)
        if topic is None:
            del lines[starts[i]:ends[i]]
            cut = starts[i]
            while cut > 0 and indent(lines[cut - 1]) == -1 and (cut == len(lines) or indent(lines[cut]) == -1):
                cut -= 1
                del lines[cut]  # no double gap, no trailing gap, where the entry was
        else:
            lines[rows[i][0]:ends[i]] = [_render(topic, col)]
    elif topic is not None:
        gap = "\n" if len(rows) > 1 and indent(lines[starts[-1] - 1]) == -1 else ""
        lines.insert(ends[-1], gap + _render(topic, col))
    return "".join(lines)


def _render(topic: Topic, col: int) -> str:
    """One entry as YAML text, indented to ``col``."""
    buffer = io.StringIO()
    _yaml().dump(CommentedMap({topic.key: _spec(topic)}), buffer)
    return "".join(" " * col + line for line in buffer.getvalue().splitlines(keepends=True))


def _edit_document(text: str, document: Any, key: str, topic: Topic | None) -> str:
    """The whole document re-emitted by the round-trip dumper with one entry set or removed.

    A file of comments only parses to nothing: its text is kept and the new document follows it.
    """
    prefix = text.rstrip("\n") + "\n" if document is None and text.strip() else ""
    document = document if document is not None else CommentedMap()
    if not document.get("topics"):
        document["topics"] = CommentedMap()  # also turns an empty flow mapping `{}` into block style
    if topic is None:
        del document["topics"][key]
    else:
        document["topics"][key] = _spec(topic)
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    return prefix + buffer.getvalue()


# --- the Dagster side ----------------------------------------------------------------------------
def scheduled_topics(instance: Any, path: Path | None = None) -> list[str]:
    """The topics schedules and checks act on: those in the topics file that have a partition.

    A partition kept only for its data after its topic left the file is not scheduled again; with no topics
    file at all the partitions are all there is.
    """
    partitions = list(instance.get_dynamic_partitions(PARTITIONS))
    path = path or topics_file()
    if not path.exists():
        return partitions
    have = set(partitions)
    return [key for key in load_topics(path) if key in have]


def materialized_partitions(instance: Any, key: str) -> dict[str, int]:
    """Per asset, how many of its materialized partitions belong to topic ``key`` (``key`` or ``day|key``)."""
    counts: dict[str, int] = {}
    for asset_key in instance.get_asset_keys():
        count = sum(1 for partition in instance.get_materialized_partitions(asset_key) if key in partition.split("|"))
        if count:
            counts[asset_key.to_user_string()] = count
    return counts


def describe_materializations(key: str, counts: dict[str, int]) -> str:
    """``topic 'x' has N materialized partitions across M assets``, from :func:`materialized_partitions`."""
    total = sum(counts.values())
    return (f"topic {key!r} has {total} materialized partition{'s' * (total != 1)} across {len(counts)} "
            f"asset{'s' * (len(counts) != 1)}")


@dataclass(frozen=True)
class TopicSync:
    """One reconciliation: the partitions to add and delete, what was done and why, the sensor's next cursor."""

    add: list[str]
    delete: list[str]
    notes: list[str]
    cursor: str


def reconcile(instance: Any, cursor: str | None, path: Path | None = None) -> TopicSync:
    """Bring the ``topics`` partitions in line with the topics file, the one truth.

    ``cursor`` holds the keys the file had last time. A partition the file lacks and the cursor knows was removed
    from the file: deleted if it was never materialized, else kept and reported (data is never orphaned silently).
    One the cursor does not know was added in the UI: written back to the file with its key's words as query.
    With no cursor (the first tick) every such partition counts as removed.
    """
    path = path or topics_file()
    if not path.exists():
        return TopicSync([], [], [f"no topics file at {path}; partitions left as they are"], cursor or "")
    topics = load_topics(path)
    partitions = list(instance.get_dynamic_partitions(PARTITIONS))
    known = set(json.loads(cursor)) if cursor else None
    add = [key for key in topics if key not in set(partitions)]
    notes = [f"adding partitions for the new topics in {path}: {', '.join(add)}"] if add else []
    strays = [key for key in partitions if key not in topics]
    from_ui = [key for key in strays if known is not None and key not in known and TOPIC_KEY.match(key)]
    written: list[str] = []
    for key in from_ui:
        try:
            add_topic(Topic(key, query_for_key(key)), path)
        except TopicExists:
            continue  # written meanwhile, e.g. by `topics add`
        except TopicError as exc:
            notes.append(f"partition {key!r} was added in the UI but could not be written back ({exc}); "
                         f"add it with `aragora-pipelines topics add {key}`")
            continue
        written.append(key)
        notes.append(f"partition {key!r} was added in the UI: wrote it to {path} with query {query_for_key(key)!r}; "
                     f"change it with `aragora-pipelines topics add {key} --query Q --replace`")
    delete, kept = [], []
    for key in (key for key in strays if key not in from_ui):
        valid = bool(TOPIC_KEY.match(key))
        why = f"is not in {path}" if valid else "is not a valid topic key (add topics with `topics add`)"
        counts = materialized_partitions(instance, key)
        if counts:
            kept.append(key)
            notes.append(f"kept partition {key!r}: it {why} but {describe_materializations(key, counts)}; run "
                         f"`aragora-pipelines topics remove {shlex.quote(key)} --force` to delete it"
                         + (", or add it to the file" if valid else ""))
        else:
            delete.append(key)
            notes.append(f"deleting partition {key!r}: it {why} and was never materialized")
    return TopicSync(add, delete, notes, json.dumps(sorted({*topics, *written, *kept})))
