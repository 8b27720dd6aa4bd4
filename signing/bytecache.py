"""A thread-safe LRU bounded in BYTES, for what is derived from certificates.

The signing layer remembers what it derives from a certificate (the parsed object, its
PEM text, its DER, its public key and key id), because every signed request repeats one
of a few users' certificates. Bounded by entry count alone (1,024 or 4,096 entries), a
stream of distinct large certificates pinned ~0.6 GiB a process (issue 13, defect 10).
:class:`ByteBoundedCache` charges every entry ``cost`` bytes, an estimate of what it
keeps alive (key and value), keeps the total under ``max_bytes`` (least recently used
entries are dropped first), and never keeps a value derived from more than
``max_der_bytes`` of DER (it is computed each time instead). :attr:`bytes_used` is the
cache's own accounting (what tests read).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class ByteBoundedCache:
    """See the module docstring."""

    def __init__(self, max_bytes: int, max_der_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_der_bytes = max_der_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, value: Any, *, cost: int, der_bytes: int) -> None:
        """Keep ``value`` under ``key`` unless it derives from more than ``max_der_bytes``."""
        if der_bytes > self.max_der_bytes or cost > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            self._entries[key] = (value, cost)
            self._used += cost
            while self._used > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped

    @property
    def bytes_used(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0
