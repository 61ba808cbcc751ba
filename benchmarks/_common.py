"""Shared by the benchmarks: the simulator, measured subprocesses, medians and tables.

The simulator is the test suite's (tests/support/apisim.py, started by tests/conftest.py), so benchmarks and
tests start it the same way; the dlt peer is benchmarks/dlt_peer.py (the `bench` extra, `make bench`).
Each measured side runs in its own process, started by a small launcher that times it (interpreter start
and imports included, for both sides alike) and reads its peak RSS from ``wait4``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import Sim, start_sim, stop_sim  # noqa: E402  (needs ROOT on sys.path)
from tests.support.apisim import BASE_TS, STEP_S  # noqa: E402

DLT_PEER = Path(__file__).with_name("dlt_peer.py")
# The Postgres server holding the DuckLake catalogs of the benchmarks that run on DuckLake (--postgres).
POSTGRES_DSN = "host=127.0.0.1 user=postgres"

__all__ = ["BASE_TS", "DLT_PEER", "POSTGRES_DSN", "ROOT", "STEP_S", "Measured", "Sim", "dlt_missing", "lake_database",
           "median", "postgres_missing", "print_table", "run_measured", "start_sim", "stop_sim"]


@dataclass(frozen=True)
class Measured:
    """One measured subprocess: wall seconds, peak RSS in MB, exit status and what it printed."""

    wall_s: float
    peak_mb: float
    returncode: int
    stdout: str


# Started by run_measured: a small Python that spawns the measured command and reports its wait4 rusage.
# Linux carries a process's RSS high-water mark across exec, and a child spawned straight from this
# process would start from the benchmark's own size (it imports DuckDB and Dagster to check results).
_LAUNCHER = """
import json, os, signal, sys, time
report, timeout, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
started = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(timeout)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"wall": wall, "maxrss_kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, out)
"""


def run_measured(cmd: Sequence[str], *, timeout: float = 900.0, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` and measure it alone: its wall time and its peak RSS (``wait4``), via a small launcher.

    A command still running after ``timeout`` seconds is killed (and reported with its signal as exit code).
    """
    with tempfile.TemporaryDirectory(prefix="aragora-measure-") as tmp:
        report, out, err = Path(tmp) / "report.json", Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.run(  # noqa: S603 (our own argv)
                [sys.executable, "-c", _LAUNCHER, str(report), str(int(timeout)), *cmd],
                stdout=stdout, stderr=stderr, cwd=ROOT, env={**os.environ, **(env or {})}, check=False)
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"the launcher failed ({proc.returncode}): {err.read_text()[-2000:]}")
        result = json.loads(report.read_text())
        stdout_text, stderr_text = out.read_text(), err.read_text()
    if result["code"] != 0:
        sys.stderr.write(f"{' '.join(cmd[:2])} exited with {result['code']}:\n{stderr_text[-4000:]}\n")
    return Measured(result["wall"], result["maxrss_kib"] / 1024, result["code"], stdout_text)


def dlt_missing() -> str | None:
    """Why the dlt peer cannot run in this interpreter (dlt not installed), or None when it can."""
    if importlib.util.find_spec("dlt") is None:
        return "dlt is not installed in this interpreter; run `make bench`, which installs the bench extra"
    return None


def postgres_missing(dsn: str) -> str | None:
    """Why no DuckLake catalog can be made on the Postgres server at ``dsn`` (unreachable), or None when it can."""
    import psycopg2

    try:
        psycopg2.connect(dsn + " dbname=postgres connect_timeout=5").close()
    except psycopg2.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"no Postgres ({reason}); give a reachable server's DSN with --postgres"
    return None


def lake_database(dsn: str, name: str, drop: bool = False) -> str:
    """Create (or drop) the Postgres database ``name`` for a DuckLake catalog; its libpq DSN."""
    import psycopg2

    admin = psycopg2.connect(dsn + " dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"{dsn} dbname={name}"


def median(values: Sequence[float]) -> float:
    """The median (NaN when empty)."""
    return statistics.median(values) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so the output can be pasted into a note as is."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))
