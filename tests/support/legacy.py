"""Stores as older versions of this project wrote them, for the migration tests.

``tests/fixtures/store_v3`` is a schema-3 store (before loads became append-only), exported with DuckDB's
``EXPORT DATABASE`` from a file that the store code of commit fada075 wrote; ``make_v3.py`` there made it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

STORE_V3 = Path(__file__).resolve().parents[1] / "fixtures" / "store_v3"


def v3_store(path: Path) -> Path:
    """A DuckDB file at ``path`` holding the schema-3 fixture exactly as the old code left it."""
    con = duckdb.connect(str(path))
    con.execute(f"IMPORT DATABASE '{STORE_V3}'")
    con.close()
    return path
