"""The project's import graph: no cycles, dependencies point one way, few deferred imports.

Read from the source with :mod:`ast` (nothing is imported), so an import inside a
function counts as much as one at the top: a function-local import does not hide a
cycle from this test. Imports under ``if TYPE_CHECKING:`` are ignored (they never run).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("siogw_api", "signing", "audit", "server", "clients", "softhsm", "siogw")

#: Which packages each package may import (its own modules always). The direction of
#: ADR 0008: siogw_api <- signing <- audit <- server; siogw_api <- signing <- clients;
#: softhsm is development tooling over signing; siogw (the command and the demo) on top.
ALLOWED: dict[str, set[str]] = {
    "siogw_api": set(),
    "signing": {"siogw_api"},
    "audit": {"siogw_api", "signing"},
    "server": {"siogw_api", "signing", "audit"},
    "clients": {"siogw_api", "signing"},
    "softhsm": {"siogw_api", "signing"},
    "siogw": set(PACKAGES),
}

#: Module-level exceptions to ALLOWED, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("signing.cli", "softhsm.store"): "`siogw token`/`siogw ca` open the project-local "
    "SoftHSM store (development tooling) when SOFTHSM2_CONF is unset; the signing "
    "library itself never imports softhsm (tests/signing/test_modules.py)",
}

#: A function-local import of a project module must say why, with this marker in a
#: comment on its line or above it in the same function (one comment may cover the
#: imports that follow it): it defers a heavy dependency or start-up cost.
DEFERRED_MARKER = "deferred:"


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module
    line: int
    local: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "v1" in path.relative_to(ROOT).parts:  # generated code
                continue
            out[_module_name(path)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (a module, or a name inside a package)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, local: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{a.name}" for a in child.names] or [base]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != module:
                    yield Import(module, target, child.lineno, local)
            yield from visit(child, inner)

    yield from visit(tree, False)


def _graph() -> tuple[dict[str, Path], list[Import]]:
    modules = _modules()
    edges = [imp for name, path in modules.items() for imp in _imports(name, path, modules)]
    return modules, edges


def _cycles(nodes: list[str], edges: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edges:
        succ[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in nodes:
        if node not in index:
            connect(node)
    return out


def test_no_import_cycles_among_project_modules() -> None:
    modules, edges = _graph()
    cycles = _cycles(sorted(modules), edges)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_dependencies_point_one_way() -> None:
    _, edges = _graph()
    wrong = sorted({
        f"{e.source} -> {e.target} (line {e.line})" for e in edges
        if e.target.split(".")[0] != e.source.split(".")[0]
        and e.target.split(".")[0] not in ALLOWED[e.source.split(".")[0]]
        and (e.source, e.target) not in EXCEPTIONS
    })
    assert wrong == [], "imports against the dependency direction: " + "; ".join(wrong)


def test_function_local_imports_of_project_modules_say_why() -> None:
    modules, edges = _graph()
    unexplained = []
    for e in edges:
        if not e.local:
            continue
        lines = modules[e.source].read_text().splitlines()
        if not _explained(lines, e.line):
            unexplained.append(f"{e.source}:{e.line} imports {e.target}")
    assert unexplained == [], (
        f"function-local imports without a '# {DEFERRED_MARKER} <why>' comment: "
        + "; ".join(sorted(set(unexplained))))


def _explained(lines: list[str], line: int) -> bool:
    """The marker on ``line`` (1-based) or above it, up to the enclosing ``def``."""
    for text in reversed(lines[:line]):
        if DEFERRED_MARKER in text.lower():
            return True
        stripped = text.lstrip()
        if stripped.startswith(("def ", "async def ")):
            return False
    return False


def test_the_checker_sees_a_cycle_hidden_in_a_function() -> None:
    edges = [Import("a", "b", 1, False), Import("b", "a", 5, True), Import("b", "c", 2, False)]
    assert _cycles(["a", "b", "c"], edges) == [["a", "b"]]
