"""The committed ``siogw_api/v1`` must match what ``python protos/generate.py`` produces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    path = ROOT / "protos" / "generate.py"
    spec = importlib.util.spec_from_file_location("protos_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py*"))}


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    gen = _generator()
    gen.generate(tmp_path)
    fresh = _tree(tmp_path / gen.GENERATED_PACKAGE)
    committed = _tree(ROOT / gen.GENERATED_PACKAGE)
    assert fresh.keys() == committed.keys(), "proto set changed: run `make protos`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run `make protos`"


def test_generated_imports_need_no_rewriting() -> None:
    """The generated modules import each other as ``siogw_api.v1``, never ``siogw.v1``."""
    for path in (ROOT / "siogw_api" / "v1").glob("*_pb2*.py"):
        text = path.read_text()
        assert "\nfrom siogw.v1 import" not in text, path


def test_wire_names_stay_siogw_v1() -> None:
    from siogw_api.v1 import auth_pb2, query_pb2

    assert auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name == "siogw.v1.AuthService"
    q = query_pb2.Query(request_id="r1", resource=11, parameters={"iin": "900101300123"})
    again = query_pb2.Query.FromString(q.SerializeToString(deterministic=True))
    assert again == q
