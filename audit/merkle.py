"""RFC 9162 Merkle tree building blocks: compact range and proof generation (pure).

* :class:`CompactRange` — the right-edge "frontier" of perfect subtrees; appending a
  leaf is O(log n) and the root of the whole prefix is available at any time.
* :func:`inclusion_proof` / :func:`consistency_proof` — RFC 9162 §2.1.3.1 / §2.1.4.1
  (the ``PATH`` and ``SUBPROOF`` recursions) over any :class:`HashSource`, so the same
  code serves proofs from an in-memory list and from the log's stored tree levels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from audit.errors import ProofError
from audit.verify import EMPTY_ROOT, node_hash


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
