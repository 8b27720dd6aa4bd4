"""RFC 9162 Merkle trees, pure: hashing, proof verification and proof building.

No I/O. Shared by the audit log (its tree, receipts and checkpoints), the offline
verifiers and the client library.

* **Hashing** (RFC 9162 §2.1.1): ``leaf = SHA-256(0x00 || data)``,
  ``node = SHA-256(0x01 || left || right)``, empty tree = ``SHA-256("")``.
* **Proofs**: :func:`verify_inclusion` (RFC 9162 §2.1.3.2) and
  :func:`verify_consistency` (§2.1.4.2). Preconditions are checked first
  (:class:`~signing.errors.ProofError`); a wrong result is a
  :class:`~signing.errors.RootMismatch`.
* :class:`CompactRange` — the right-edge "frontier" of perfect subtrees; appending a
  leaf is O(log n) and the root of the whole prefix is available at any time.
* :func:`inclusion_proof` / :func:`consistency_proof` — RFC 9162 §2.1.3.1 / §2.1.4.1
  (the ``PATH`` and ``SUBPROOF`` recursions) over any :class:`HashSource`, so the same
  code serves proofs from an in-memory list and from the log's stored tree levels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from signing.errors import ProofError, RootMismatch

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
ZERO_HASH_HEX = "0" * 64

_sha256 = hashlib.sha256


# --- hashing ------------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """(size, MTH) of the tree over the given leaf hashes, in O(log n) memory."""
    stack: list[bytes] = []
    size = 0
    for h in leaf_hashes:
        index = size
        while index & 1:
            h = node_hash(stack.pop(), h)
            index >>= 1
        stack.append(h)
        size += 1
    if not stack:
        return 0, EMPTY_ROOT
    h = stack[-1]
    for left in reversed(stack[:-1]):
        h = node_hash(left, h)
    return size, h


def check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


# --- inclusion (RFC 9162 §2.1.3.2) --------------------------------------------------------
def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf`` (a leaf hash) at ``index``."""
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    check_hash(leaf, "leaf hash")
    for i, p in enumerate(proof):
        check_hash(p, f"proof[{i}]")
    # Step 2: fn = index, sn = size - 1; step 3: r = leaf hash.
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        # Step 4a.
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        # Step 4b.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # Step 4c.
        fn >>= 1
        sn >>= 1
    # Step 5: sn must be 0.
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Return None if ``proof`` shows ``leaf`` at ``index`` in the tree ``(size, root)``."""
    check_hash(root, "root")
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if computed != root:
        raise RootMismatch(computed, bytes(root), what="inclusion proof root mismatch")


# --- consistency (RFC 9162 §2.1.4.2) ------------------------------------------------------
def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Return None if the tree ``(size2, root2)`` extends ``(size1, root1)``."""
    check_hash(root1, "first root")
    check_hash(root2, "second root")
    for i, p in enumerate(proof):
        check_hash(p, f"proof[{i}]")
    if size1 < 0 or size2 < size1:
        raise ProofError(f"bad consistency sizes {size1} -> {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise RootMismatch(bytes(root1), bytes(root2), what="equal-size roots differ")
        return
    if size1 == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    # Step 1.
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    # Step 2: first is an exact power of two -> prepend first_hash.
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    # Step 3.
    fn, sn = size1 - 1, size2 - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise RootMismatch(fr, bytes(root1), what="consistency proof: first root mismatch")
    if sr != root2:
        raise RootMismatch(sr, bytes(root2), what="consistency proof: second root mismatch")


# --- proof building (RFC 9162 §2.1.3.1, §2.1.4.1) ------------------------------------


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


class HashSource(Protocol):
    def subtree_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for ``lo < hi``."""


class CompactRange:
    """Frontier of perfect subtree roots covering leaves ``[0, size)``.

    ``on_node(level, index, hash)`` (optional) is told about every perfect node completed
    at ``level >= 1``, which lets a store persist the tree's levels incrementally.
    """

    __slots__ = ("_nodes", "_on_node", "size")

    def __init__(
        self, on_node: Callable[[int, int, bytes], None] | None = None
    ) -> None:
        self.size = 0
        self._nodes: list[bytes] = []  # highest level first
        self._on_node = on_node

    @classmethod
    def from_frontier(cls, size: int, nodes: Sequence[bytes]) -> CompactRange:
        if len(nodes) != bin(size).count("1"):
            raise ProofError("frontier does not match tree size")
        cr = cls()
        cr.size = size
        cr._nodes = list(nodes)
        return cr

    def frontier(self) -> list[bytes]:
        return list(self._nodes)

    def append(self, leaf_hash: bytes) -> None:
        nodes = self._nodes
        index = self.size
        h = leaf_hash
        level = 0
        while index & 1:
            h = node_hash(nodes.pop(), h)
            index >>= 1
            level += 1
            if self._on_node is not None:
                self._on_node(level, index, h)
        nodes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        nodes = self._nodes
        h = nodes[-1]
        for left in reversed(nodes[:-1]):
            h = node_hash(left, h)
        return h


class ListHashSource:
    """A :class:`HashSource` over a list of leaf hashes (for tests and vectors)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves

    def subtree_hash(self, lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return self.leaves[lo]
        k = largest_power_of_two_below(hi - lo)
        return node_hash(self.subtree_hash(lo, lo + k), self.subtree_hash(lo + k, hi))


def inclusion_proof(src: HashSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf-side hash first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    proof: list[bytes] = []

    def path(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = largest_power_of_two_below(n)
        if m < k:
            path(m, lo, lo + k)
            proof.append(src.subtree_hash(lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            proof.append(src.subtree_hash(lo, lo + k))

    path(index, 0, size)
    return proof


def consistency_proof(src: HashSource, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]); empty when size1 is 0 or size2."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"bad consistency sizes {size1} > {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(src.subtree_hash(lo, hi))
            return
        k = largest_power_of_two_below(n)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            proof.append(src.subtree_hash(lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(src.subtree_hash(lo, lo + k))

    subproof(size1, 0, size2, True)
    return proof
