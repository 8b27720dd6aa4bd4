"""RFC 9162 hashing, proofs and their verification (signing.merkle)."""

from __future__ import annotations

import pytest

from signing.errors import ProofError, RootMismatch, VerificationError
from signing.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ListHashSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 reference leaves used by certificate-transparency's own tests.
CT_LEAVES = [
    b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]


def test_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    size, root = root_from_leaf_hashes(leaf_hash(x) for x in CT_LEAVES)
    assert size == 8
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"x%d" % i) for i in range(n)]


def test_compact_range_matches_recursive_root() -> None:
    leaves = _leaves(70)
    cr = CompactRange()
    for n in range(1, 71):
        cr.append(leaves[n - 1])
        assert cr.root() == ListHashSource(leaves).subtree_hash(0, n)
        assert cr.root() == root_from_leaf_hashes(leaves[:n])[1]
        clone = CompactRange.from_frontier(n, cr.frontier())
        assert clone.root() == cr.root()


def test_every_inclusion_proof_verifies_and_wrong_index_fails() -> None:
    leaves = _leaves(40)
    src = ListHashSource(leaves)
    for size in range(1, 41):
        root = root_from_leaf_hashes(leaves[:size])[1]
        for index in range(size):
            proof = inclusion_proof(src, index, size)
            verify_inclusion(leaves[index], index, size, proof, root)
            other = (index + 1) % size
            if other != index:
                with pytest.raises(VerificationError):
                    verify_inclusion(leaves[index], other, size, proof, root)


def test_every_consistency_proof_verifies() -> None:
    leaves = _leaves(40)
    src = ListHashSource(leaves)
    roots = [root_from_leaf_hashes(leaves[:n])[1] for n in range(41)]
    for size2 in range(0, 41):
        for size1 in range(0, size2 + 1):
            proof = consistency_proof(src, size1, size2)
            verify_consistency(size1, size2, proof, roots[size1], roots[size2])
            if 0 < size1 < size2:
                with pytest.raises(RootMismatch):
                    verify_consistency(size1, size2, proof, roots[size1 - 1], roots[size2])


def test_preconditions_are_checked_first() -> None:
    leaf = leaf_hash(b"a")
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf, 3, 3, [], leaf)
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion(leaf, 0, 2, [b"short"], leaf)
    with pytest.raises(ProofError, match="sizes"):
        verify_consistency(5, 4, [leaf], leaf, leaf)
    with pytest.raises(ProofError, match="empty consistency proof"):
        verify_consistency(2, 4, [], leaf, leaf)
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(4, 4, [leaf], leaf, leaf)


def test_verifier_imports_no_grpc_or_sqlalchemy() -> None:
    import subprocess
    import sys

    code = ("import sys, audit.segments, audit.archive, audit.receipts, audit.cli, "
            "signing.merkle, signing.note; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'sqlalchemy')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pure_audit_modules_do_no_io() -> None:
    """audit.segments and audit.receipts take bytes: no file, OS or network modules."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "audit"
    io_modules = {"os", "pathlib", "gzip", "io", "shutil", "tempfile", "socket", "grpc",
                  "sqlalchemy", "subprocess", "fcntl", "audit.archive", "audit.log",
                  "audit.index", "audit.keys", "audit.tree"}
    for name in ("segments.py", "receipts.py"):
        tree = ast.parse((root / name).read_text("utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        assert not imported & io_modules, (name, imported & io_modules)
        assert "open(" not in (root / name).read_text("utf-8"), name
