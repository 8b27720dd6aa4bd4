"""The benches are product tools (issue 16): they import nothing from ``tests/``, ``make
bench`` runs every one of them (the FM-1 and screening benches included), and the
screening bench measures against a list of 100,000 entries unless told otherwise."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted((ROOT / "bench").glob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _make_target(name: str) -> list[str]:
    """The recipe lines of one target of the Makefile."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{name}\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_no_bench_imports_test_code() -> None:
    assert BENCHES
    offending = {p.name: sorted(n for n in _imports(p) if n == "tests" or
                                n.startswith("tests."))
                 for p in BENCHES}
    assert not {k: v for k, v in offending.items() if v}


def test_make_bench_runs_every_bench() -> None:
    recipe = " ".join(_make_target("bench"))
    missing = [p.name for p in BENCHES if not p.name.startswith("_")
               and f"bench/{p.name}" not in recipe]
    assert not missing, f"make bench does not run {missing}"
    assert "bench/fm1.py" in recipe and "bench/screening.py" in recipe


def test_the_screening_bench_uses_a_list_of_100000_entries_by_default() -> None:
    tree = ast.parse((ROOT / "bench" / "screening.py").read_text(encoding="utf-8"))
    defaults = {
        node.args[0].value: kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
        and node.args and isinstance(node.args[0], ast.Constant)
        for kw in node.keywords
        if kw.arg == "default" and isinstance(kw.value, ast.Constant)
    }
    assert defaults["--entries"] == 100_000
