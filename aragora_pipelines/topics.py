"""Topics: the queries debates need, kept in a YAML file and mirrored as Dagster dynamic partitions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_TOPICS_FILE = Path(__file__).with_name("topics.yaml")
TOPIC_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


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


def load_topics(path: Path | None = None) -> dict[str, Topic]:
    """Read the topics file; a missing file means no topics."""
    path = path or topics_file()
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TopicError(f"{path} is not valid YAML: {exc}") from None
    entries = data.get("topics") or {}
    if not isinstance(entries, dict):
        raise TopicError(f"{path}: 'topics' must be a mapping of key -> {{query, claim_id}}")
    topics: dict[str, Topic] = {}
    for key, spec in entries.items():
        validate_key(str(key))
        spec = spec or {}
        if isinstance(spec, str):
            spec = {"query": spec}
        topics[str(key)] = Topic(str(key), str(spec.get("query") or query_for_key(str(key))), spec.get("claim_id"))
    return topics


def save_topics(topics: dict[str, Topic], path: Path | None = None) -> None:
    """Write the topics file (atomically, so a reader never sees half a file)."""
    path = path or topics_file()
    body = {"topics": {t.key: ({"query": t.query} | ({"claim_id": t.claim_id} if t.claim_id else {}))
                       for t in sorted(topics.values(), key=lambda t: t.key)}}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(body, sort_keys=False), "utf-8")
    tmp.replace(path)


def topic_for(key: str, path: Path | None = None) -> Topic:
    """The topic for a partition key; a key added from the UI and absent from the file searches its words."""
    return load_topics(path).get(key) or Topic(validate_key(key), query_for_key(key))
