"""The DuckLake backend's plumbing: where the lake is, its extensions from pinned wheels, its commit lock.

A DuckLake store is a catalog (Postgres for several machines, SQLite for several local processes) and Parquet
files under a data path (a directory or ``s3://``), read and written by DuckDB. Loads only append, so writers do
not conflict on rows; the one thing they must agree on is each item's next provenance ``seq`` and its
``previous_hash``. :meth:`LakeTarget.commit_lock` serialises just the commits of loads that add versions
(see ``EvidenceStore._merge``): a Postgres advisory lock for a ``postgres:`` catalog, a file lock beside a
``sqlite:`` catalog.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

LAKE_PREFIX = "ducklake:"
LAKE_ALIAS = "aragora"
# The advisory lock key of "a load is committing new versions" (any 64-bit number no other tool uses).
ADVISORY_LOCK_KEY = 0x4A7A60A5
_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


class LakeError(RuntimeError):
    """A DuckLake setting or service problem, with a message saying what to do."""


def extension_path(package: str, name: str) -> Path:
    """The extension ``name`` shipped in the pinned wheel ``package`` for the running DuckDB (never the network)."""
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise LakeError(f"the ducklake store needs the {package} package matching DuckDB {duckdb.__version__}: "
                        f"pip install -c constraints.txt {package}") from None
    path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise LakeError(f"no {name} extension for DuckDB {duckdb.__version__} in {path.parent.parent}; install the "
                        f"matching wheel (pip install -c constraints.txt '{package}=={duckdb.__version__}')")
    return path


def sql_text(value: str) -> str:
    """``value`` as a quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckLake refusing a commit another writer got in first (worth retrying)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("conflict" in text or "database is locked" in text
                                              or "could not serialize" in text)


@dataclass(frozen=True)
class LakeTarget:
    """A DuckLake store named by its attach string (``ducklake:postgres:dbname=...``) and its data path."""

    attach: str
    data_path: str | None = None

    @classmethod
    def parse(cls, spec: str, data_path: str | Path | None = None) -> LakeTarget:
        """Check ``spec`` names a catalog this store supports; one-line error otherwise."""
        catalog = spec[len(LAKE_PREFIX):]
        if not catalog.startswith(("postgres:", "sqlite:")):
            raise LakeError(f"unsupported DuckLake catalog in {redact_attach(spec)!r}: use "
                            "ducklake:postgres:dbname=NAME host=HOST user=USER or ducklake:sqlite:PATH")
        if not catalog.split(":", 1)[1].strip():
            raise LakeError(f"{redact_attach(spec)!r} names no catalog database; e.g. "
                            "ducklake:postgres:dbname=aragora host=127.0.0.1 user=postgres")
        return cls(spec, str(data_path) if data_path else None)

    @property
    def kind(self) -> str:
        """``postgres`` or ``sqlite``."""
        return self.attach[len(LAKE_PREFIX):].split(":", 1)[0]

    @property
    def catalog(self) -> str:
        """The catalog's connection string (libpq DSN) or SQLite file."""
        return self.attach[len(LAKE_PREFIX):].split(":", 1)[1]

    def display(self) -> str:
        """The attach string without a password, for messages and logs."""
        return redact_attach(self.attach)

    def local_dir(self) -> Path:
        """A local directory for what stays on this machine: staging files and the search index."""
        if self.data_path and "://" not in self.data_path:
            return Path(self.data_path)
        digest = hashlib.sha256(self.attach.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"aragora-lake-{digest}"

    def extensions(self) -> list[Path]:
        """The extension files an attach needs, from the pinned wheels."""
        paths = [extension_path("duckdb-extension-ducklake", "ducklake")]
        if self.kind == "postgres":
            paths.append(extension_path("duckdb-extension-postgres-scanner", "postgres_scanner"))
        else:
            paths.append(extension_path("duckdb-extension-sqlite-scanner", "sqlite_scanner"))
        if self.uses_s3:
            paths.append(extension_path("duckdb-extension-httpfs", "httpfs"))
        return paths

    @property
    def uses_s3(self) -> bool:
        """Whether the Parquet files may be on S3: the data path says so, or it is not given (the catalog's
        recorded path is read then) while the environment configures S3."""
        if self.data_path:
            return self.data_path.startswith("s3://")
        return any(os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"))

    @staticmethod
    def s3_secret_sql() -> str:
        """A temporary DuckDB S3 secret from the standard AWS_* environment (an endpoint for S3-compatible stores)."""
        env = os.environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        parts = ["TYPE s3", f"REGION {sql_text(region)}"]
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            parts += [f"KEY_ID {sql_text(env['AWS_ACCESS_KEY_ID'])}",
                      f"SECRET {sql_text(env['AWS_SECRET_ACCESS_KEY'])}"]
        if env.get("AWS_SESSION_TOKEN"):
            parts.append(f"SESSION_TOKEN {sql_text(env['AWS_SESSION_TOKEN'])}")
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            url = urlsplit(endpoint)
            parts += [f"ENDPOINT {sql_text(url.netloc)}", "URL_STYLE 'path'",
                      f"USE_SSL {'true' if url.scheme == 'https' else 'false'}"]
        return f"CREATE OR REPLACE TEMPORARY SECRET aragora_s3 ({', '.join(parts)})"

    def attach_sql(self, *, read_only: bool, snapshot: int | None = None, as_of: str | None = None,
                   create: bool = False) -> str:
        """The ATTACH statement: the lake as ``aragora``, read-only and at a past snapshot when asked."""
        options = []
        if self.data_path and create:
            options.append(f"DATA_PATH {sql_text(self.data_path)}")
        if read_only:
            options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        if as_of is not None:
            options.append(f"SNAPSHOT_TIME {sql_text(as_of)}")
        suffix = f" ({', '.join(options)})" if options else ""
        return f"ATTACH {sql_text(self.attach)} AS {LAKE_ALIAS}{suffix}"

    @contextmanager
    def commit_lock(self, timeout: float) -> Iterator[None]:
        """Hold the lake's one commit lock: Postgres advisory lock, or a file lock beside a SQLite catalog."""
        if self.kind == "sqlite":
            from filelock import FileLock, Timeout

            lock = FileLock(self.catalog + ".aragora-commit.lock")
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                raise LakeError(f"another load held the commit lock of {self.display()} for over {timeout:.0f}s"
                                ) from None
            try:
                yield
            finally:
                lock.release()
            return
        import psycopg2

        try:
            pg = psycopg2.connect(self.catalog, connect_timeout=10)
        except psycopg2.Error as exc:
            raise LakeError(f"cannot reach the Postgres catalog of {self.display()}: "
                            f"{redact_attach(str(exc).strip().splitlines()[0])}") from None
        try:
            pg.autocommit = True
            with pg.cursor() as cur:
                deadline = time.monotonic() + timeout
                while True:
                    cur.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
                    if cur.fetchone()[0]:
                        break
                    if time.monotonic() >= deadline:
                        raise LakeError(f"another load held the commit lock of {self.display()} for over "
                                        f"{timeout:.0f}s")
                    time.sleep(0.01)
                try:
                    yield
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        finally:
            pg.close()


def redact_attach(text: str) -> str:
    """``text`` with any ``password=...`` value hidden."""
    return _PASSWORD.sub(r"\1***", text)
