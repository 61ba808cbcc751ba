"""scripts/check_pins.py: ``make install`` stops when DuckDB and a duckdb-extension-* pin differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_pins.py"


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def constraints(tmp_path: Path, text: str) -> str:
    path = tmp_path / "constraints.txt"
    path.write_text(text)
    return str(path)


def test_a_duckdb_bump_without_its_extension_pins_fails_with_one_line(tmp_path: Path) -> None:
    path = constraints(
        tmp_path, "click==8.5.1\nduckdb==1.5.6\nduckdb_extension_fts==1.5.5\nduckdb-extension-json==1.5.6\n"
    )
    result = check(path)
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}: duckdb==1.5.6 but duckdb-extension-fts==1.5.5; ")
    assert "json" not in line and "pin every duckdb-extension-* in" in line


def test_matching_pins_and_the_projects_constraints_pass(tmp_path: Path) -> None:
    assert check(constraints(tmp_path, "duckdb==1.5.6\nDuckDB.Extension_FTS == 1.5.6  # fts\n")).returncode == 0
    assert check(str(ROOT / "constraints.txt")).returncode == 0
    assert check("--installed").returncode == 0  # this venv was installed from those pins


def test_an_extension_pinned_without_duckdb_fails(tmp_path: Path) -> None:
    result = check(constraints(tmp_path, "duckdb-extension-fts==1.5.5\n"))
    assert result.returncode == 1 and "no duckdb but duckdb-extension-fts==1.5.5" in result.stderr


@pytest.mark.parametrize("args", [(), ("missing-constraints.txt",), ("a", "b")])
def test_bad_arguments_print_the_usage(args: tuple[str, ...]) -> None:
    result = check(*args)
    assert result.returncode == 2 and "usage: check_pins.py" in result.stderr


def test_make_install_checks_the_pins_before_and_after_installing() -> None:
    dry_run = subprocess.run(["make", "-n", "-W", "constraints.txt", "install"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=True).stdout.splitlines()

    def step(fragment: str) -> int:
        return next(i for i, line in enumerate(dry_run) if fragment in line)

    assert (step("check_pins.py constraints.txt") < step(" -m venv ") < step("pip install -q -c constraints.txt -e")
            < step("check_pins.py --installed"))
