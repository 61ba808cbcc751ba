"""Fail fast when DuckDB and its extension wheels would not match (run by ``make install``).

The fts extension is loaded from the ``duckdb-extension-fts`` wheel built for one DuckDB version, so
bumping ``duckdb`` without its ``duckdb-extension-*`` pins installs fine and breaks at run time.
``check_pins.py constraints.txt`` checks the pins before installing; ``check_pins.py --installed``
checks what the running interpreter has installed. Standard library only (it runs before the venv exists).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
_EXTENSION = re.compile(r"^duckdb-extension-")


def normalize(name: str) -> str:
    """A distribution name in its PEP 503 form (``duckdb_extension_fts`` -> ``duckdb-extension-fts``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def mismatches(versions: dict[str, str]) -> list[str]:
    """``name==version`` of each DuckDB extension whose version is not DuckDB's (``versions`` by normalized name)."""
    duckdb = versions.get("duckdb")
    return [f"{name}=={version}" for name, version in sorted(versions.items())
            if _EXTENSION.match(name) and version != duckdb]


def pinned(constraints: Path) -> dict[str, str]:
    """The ``name==version`` pins of a constraints file, by normalized name."""
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalize(match[1])] = match[2]
    return pins


def installed() -> dict[str, str]:
    """The installed distributions' versions, by normalized name."""
    names = ((dist.metadata["Name"], dist.version) for dist in metadata.distributions())
    return {normalize(name): version for name, version in names if name}


def main(argv: list[str]) -> int:
    """Print one line naming the pins that differ from DuckDB's and return 1, else return 0."""
    if argv == ["--installed"]:
        versions, where, fix = installed(), "installed", "reinstall with: make clean install"
    elif len(argv) == 1 and Path(argv[0]).is_file():
        versions, where = pinned(Path(argv[0])), argv[0]
        fix = f"pin every duckdb-extension-* in {where} to the duckdb version (the matching wheels are on PyPI)"
    else:
        print("usage: check_pins.py CONSTRAINTS_FILE | --installed", file=sys.stderr)
        return 2
    wrong = mismatches(versions)
    if not wrong:
        return 0
    duckdb = f"duckdb=={versions['duckdb']}" if "duckdb" in versions else "no duckdb"
    print(f"{where}: {duckdb} but {', '.join(wrong)}; the fts extension must match DuckDB exactly: {fix}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
