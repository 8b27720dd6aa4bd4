"""signing/, audit/ and softhsm/: no import cycles, no unexplained function-local imports.

A function-local import of a project module is allowed only to defer a heavy optional
dependency or start-up cost, with a comment starting ``# Deferred:`` on the line above.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signing", "audit", "softhsm")
PROJECT = {"siogw", "siogw_api", "signing", "audit", "softhsm", "clients", "server"}


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _scan() -> tuple[dict[str, set[str]], list[str]]:
    graph: dict[str, set[str]] = {}
    unexplained: list[str] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            module = _module_name(path)
            lines = path.read_text("utf-8").splitlines()
            tree = ast.parse("\n".join(lines))
            deps: set[str] = set()

            def visit(node: ast.AST, in_function: bool, in_type_checking: bool) -> None:
                for child in ast.iter_child_nodes(node):
                    func = in_function or isinstance(
                        child, ast.FunctionDef | ast.AsyncFunctionDef)
                    tc = in_type_checking or (
                        isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                    names: list[str] = []
                    if isinstance(child, ast.Import):
                        names = [a.name for a in child.names]
                    elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                        names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
                    names = [n for n in names if n.split(".")[0] in PROJECT]
                    if names:
                        above = lines[child.lineno - 2].strip() if child.lineno > 1 else ""
                        if in_function and not above.startswith("# Deferred:"):
                            unexplained.append(f"{module}:{child.lineno}")
                        if not tc:
                            deps.update(names)
                    visit(child, func, tc)

            visit(tree, False, False)
            graph[module] = deps
    return graph, unexplained


def test_no_unexplained_local_imports() -> None:
    _, unexplained = _scan()
    assert unexplained == []


def test_no_import_cycles() -> None:
    graph, _ = _scan()
    edges = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)
