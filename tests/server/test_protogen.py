"""The committed generated code must match what `python -m server.protogen` produces."""

from __future__ import annotations

from pathlib import Path

from server import protogen


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py*"))}


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    protogen.generate(out)
    fresh = _tree(out)
    committed = _tree(protogen.OUT_DIR)
    assert fresh.keys() == committed.keys(), "proto set changed: run `make protos`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run `make protos`"


def test_generated_imports_are_package_relative() -> None:
    for path in protogen.OUT_DIR.rglob("*_pb2*.py"):
        assert "\nfrom siogw.v1 import" not in path.read_text(), path


def test_query_round_trip() -> None:
    from server.gen.siogw.v1 import query_pb2

    q = query_pb2.Query(request_id="r1", resource=11, parameters={"iin": "900101300123"})
    again = query_pb2.Query.FromString(q.SerializeToString(deterministic=True))
    assert again == q
