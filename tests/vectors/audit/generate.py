"""Regenerate the audit Merkle test vectors: ``python tests/vectors/audit/generate.py``.

Writes ``inclusion.json`` and ``consistency.json`` beside this script. The vectors are
language-neutral (hex strings): leaves are the bytes ``b"leaf-%d" % i``; each vector
carries the expected root(s) and a list of systematic mutations (one bit flipped in
each proof hash, the leaf, the roots; index/size off by one; proof truncated or
extended) that a correct verifier must reject. ``tests/audit/test_vectors.py`` checks
that this script reproduces the files byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from signing.merkle import (  # noqa: E402  # noqa: E402
    ListHashSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)

SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 32, 33, 64, 100)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"leaf-%d" % i) for i in range(n)]


def flip(h: str, bit: int) -> str:
    b = bytearray(bytes.fromhex(h))
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return b.hex()


def inclusion_vectors() -> list[dict[str, Any]]:
    out = []
    all_leaves = leaves(max(SIZES))
    for size in SIZES:
        src = ListHashSource(all_leaves[:size])
        root = root_from_leaf_hashes(all_leaves[:size])[1].hex()
        indices = sorted({0, size // 2, size - 1, (size * 2) // 3})
        for index in indices:
            proof = [p.hex() for p in inclusion_proof(src, index, size)]
            base = {"index": index, "size": size, "leaf_hash": all_leaves[index].hex(),
                    "proof": proof, "root": root}
            muts: list[dict[str, Any]] = []
            for i, p in enumerate(proof):
                muts.append({"what": f"flip bit {i * 37 % 256} of proof[{i}]",
                             "proof": [*proof[:i], flip(p, i * 37 % 256), *proof[i + 1:]]})
            muts.append({"what": "flip bit 0 of leaf", "leaf_hash": flip(base["leaf_hash"], 0)})
            muts.append({"what": "flip bit 255 of root", "root": flip(root, 255)})
            muts.append({"what": "index + 1", "index": index + 1})
            if index > 0:
                muts.append({"what": "index - 1", "index": index - 1})
            muts.append({"what": "size * 2", "size": size * 2})
            if size // 2 > index:
                muts.append({"what": "size // 2", "size": size // 2})
            if proof:
                muts.append({"what": "proof truncated", "proof": proof[:-1]})
            muts.append({"what": "proof extended", "proof": [*proof, root]})
            out.append({**base, "mutations": muts})
    return out


def consistency_vectors() -> list[dict[str, Any]]:
    out = []
    all_leaves = leaves(max(SIZES))
    for size2 in SIZES:
        src = ListHashSource(all_leaves[:size2])
        root2 = root_from_leaf_hashes(all_leaves[:size2])[1].hex()
        for size1 in sorted({1, size2 // 2 or 1, size2 - 1 or 1, size2}):
            root1 = root_from_leaf_hashes(all_leaves[:size1])[1].hex()
            proof = [p.hex() for p in consistency_proof(src, size1, size2)]
            base = {"size1": size1, "size2": size2, "root1": root1, "root2": root2,
                    "proof": proof}
            muts: list[dict[str, Any]] = []
            for i, p in enumerate(proof):
                muts.append({"what": f"flip bit {i * 53 % 256} of proof[{i}]",
                             "proof": [*proof[:i], flip(p, i * 53 % 256), *proof[i + 1:]]})
            muts.append({"what": "flip bit 7 of root1", "root1": flip(root1, 7)})
            muts.append({"what": "flip bit 200 of root2", "root2": flip(root2, 200)})
            if size1 < size2:
                muts.append({"what": "size2 * 2", "size2": size2 * 2})
                if size1 > 1:
                    muts.append({"what": "size1 - 1", "size1": size1 - 1})
                muts.append({"what": "proof truncated", "proof": proof[:-1]})
            muts.append({"what": "proof extended", "proof": [*proof, root1]})
            out.append({**base, "mutations": muts})
    return out


def render(name: str, vectors: list[dict[str, Any]]) -> bytes:
    doc = {
        "description": f"RFC 9162 {name} proofs over leaves SHA-256(0x00||'leaf-<i>'); "
        "every mutation must be rejected",
        "vectors": vectors,
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def outputs() -> dict[str, bytes]:
    return {
        "inclusion.json": render("inclusion", inclusion_vectors()),
        "consistency.json": render("consistency", consistency_vectors()),
    }


def main() -> None:
    for name, data in outputs().items():
        (HERE / name).write_bytes(data)
        print(f"wrote {HERE / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
