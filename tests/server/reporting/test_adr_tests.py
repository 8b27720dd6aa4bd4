"""The requirement -> tests tables of ADR 0009 (FM-1, R17/R18) and ADR 0010 (the List and
the Lists, R18) name tests that exist (issue 16): a renamed or removed test fails here,
not silently in the documentation.

In a table row, `` `path.py::test_x` `` names a test in a file (a bare file name is looked
up under ``tests/``), `` `::test_y` `` and a bare `` `test_z` `` one in the file named
last in the same cell, and `` `path.py` `` alone a file that must exist."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ADRS = ("docs/adr/0009-reporting.md", "docs/adr/0010-screening.md")
TOKEN = re.compile(r"`([^`]+)`")
REF = re.compile(r"^(?P<file>[\w/.-]+\.py)?(?:(?:::)?(?P<name>test_\w+))?$")


@cache
def _defined(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(n.name for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _file(name: str) -> Path | None:
    path = ROOT / name
    if path.is_file():
        return path
    found = sorted((ROOT / "tests").rglob(name)) if "/" not in name else []
    return found[0] if len(found) == 1 else None


def _references(adr: str) -> list[tuple[str, str, Path | None, str | None]]:
    """(row, token, file, test name) of every reference in the ADR's table rows."""
    refs = []
    for row in (ROOT / adr).read_text(encoding="utf-8").splitlines():
        if not row.startswith("|"):
            continue
        for cell in row.split("|"):
            current: Path | None = None
            for token in TOKEN.findall(cell):
                m = REF.match(token)
                if m is None or not (m["file"] or m["name"]):
                    continue
                if m["file"]:
                    current = _file(m["file"])
                    if current is None:
                        refs.append((row[:60], token, None, None))
                        continue
                refs.append((row[:60], token, current, m["name"]))
    return refs


def test_the_adrs_name_tests_that_exist() -> None:
    checked, missing = 0, []
    for adr in ADRS:
        for row, token, path, name in _references(adr):
            if path is None or (name is not None and name not in _defined(path)):
                missing.append(f"{adr}: {token} ({row}...)")
            checked += name is not None
    assert not missing, "\n".join(missing)
    assert checked >= 40  # the tables were read (not an empty pass)


def test_a_name_that_does_not_exist_is_caught(tmp_path: Path) -> None:
    row = ("| x | `tests/server/reporting/test_retention.py::test_no_such_test`, "
           "`::test_no_code_deletes_from_the_fm1_tables` |")
    (tmp_path / "adr.md").write_text(row + "\n", encoding="utf-8")
    refs = _references(str(tmp_path / "adr.md"))
    assert [(p is not None and n in _defined(p)) for _, _, p, n in refs] == [False, True]
