"""The log's Merkle tree on disk: one file of node hashes per level.

``level-00.bin`` holds the leaf hashes, ``level-KK.bin`` the hashes of the perfect,
aligned subtrees of ``2**KK`` leaves, each 32 bytes at ``index * 32``. A level only
ever grows by whole nodes as they complete, so every perfect subtree an RFC 9162 proof
asks for is one ``pread``, and any proof costs O(log n) reads. The in-memory
:class:`~signing.merkle.CompactRange` keeps appends O(log n). These files are derived
data: the log truncates or rebuilds them from the segments when they disagree, and
fsyncs them before each seal so the levels up to every sealed size survive power loss.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from signing.errors import ProofError
from signing.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    largest_power_of_two_below,
    node_hash,
)


class TreeStore:
    """Stored levels plus a compact range. Not thread-safe: the log serialises access."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._fds: dict[int, int] = {}
        self._pending: dict[int, list[tuple[int, bytes]]] = {}
        self._range = CompactRange(on_node=self._on_node)

    # -- files -------------------------------------------------------------------------
    def _fd(self, level: int) -> int:
        fd = self._fds.get(level)
        if fd is None:
            path = self.directory / f"level-{level:02d}.bin"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.fchmod(fd, 0o600)
            self._fds[level] = fd
        return fd

    def stored_leaves(self) -> int:
        """How many leaf hashes level 0 holds on disk."""
        return os.fstat(self._fd(0)).st_size // HASH_SIZE

    def sync(self) -> None:
        """fsync every level file (the sealer calls this before writing a seal, so the
        levels up to any sealed size are durable). Safe beside concurrent appends."""
        for fd in list(self._fds.values()):
            os.fsync(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # -- state -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._range.size

    def reset_to(self, size: int) -> None:
        """Truncate every level to a tree of ``size`` leaves and reload the frontier."""
        if size > self.stored_leaves():
            raise ProofError(f"stored tree has fewer than {size} leaves")
        level = 0
        while True:
            path = self.directory / f"level-{level:02d}.bin"
            if not path.exists() and (size >> level) == 0:
                break
            os.ftruncate(self._fd(level), (size >> level) * HASH_SIZE)
            level += 1
        nodes: list[bytes] = []
        for k in range(size.bit_length() - 1, -1, -1):
            if size >> k & 1:
                index = (size >> k) - 1
                nodes.append(self._read(k, index))
        self._range = CompactRange.from_frontier(size, nodes)
        self._range._on_node = self._on_node

    def _on_node(self, level: int, index: int, value: bytes) -> None:
        self._pending.setdefault(level, []).append((index, value))

    def append(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaves: one pwrite per touched level (no fsync: derived data)."""
        start = self._range.size
        leaves = list(leaf_hashes)
        for h in leaves:
            self._range.append(h)
        if leaves:
            os.pwrite(self._fd(0), b"".join(leaves), start * HASH_SIZE)
        pending, self._pending = self._pending, {}
        for level, items in pending.items():
            first = items[0][0]
            os.pwrite(self._fd(level), b"".join(v for _, v in items), first * HASH_SIZE)

    def _read(self, level: int, index: int) -> bytes:
        data = os.pread(self._fd(level), HASH_SIZE, index * HASH_SIZE)
        if len(data) != HASH_SIZE:
            raise ProofError(f"tree level {level} has no node {index}")
        return data

    # -- reading -----------------------------------------------------------------------
    def subtree_hash(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n <= 0 or hi > self._range.size:
            raise ProofError(f"no subtree [{lo}, {hi}) in a tree of {self._range.size}")
        if n & (n - 1) == 0 and lo % n == 0:
            return self._read(n.bit_length() - 1, lo // n)
        k = largest_power_of_two_below(n)
        return node_hash(self.subtree_hash(lo, lo + k), self.subtree_hash(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self._range.size:
            return self._range.root()
        if size == 0:
            return EMPTY_ROOT
        return self.subtree_hash(0, size)

    def leaf(self, index: int) -> bytes:
        return self._read(0, index)
