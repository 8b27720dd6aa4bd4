"""A per-process cache of checked sessions, valid while the authentication epoch holds.

Every call of the gateway re-checks its session in full (``Gateway.authenticate_token``):
the session row, the user, the certificate and its revocations, the consent and the
maintenance windows, read in one statement, then the certificate's chain and its
revocation. A query does it twice (admission, and again before the answer is released:
``Gateway.recheck_session``). Measured with ``bench/gateway.py`` (ADR 0007), those two
checks were ~20% of the event loop's time per query.

Whether anything they read has changed is one number: the **authentication epoch**, a row
the database itself bumps in the transaction of every change of those tables (triggers,
migration 10), so no write path (a block, a revocation, a logout, a consent, a window
published or cancelled, housekeeping) can forget to. A cached check is used only while:

* the epoch read now equals the one read *before* the cached check's own read (a change
  committed in between makes the entry stale at once, never the other way round);
* the time is before the entry's ``valid_until``: the session's expiry, the end of the
  certificate chain's validity, and the start of the next maintenance window, whichever
  is first (what changes with the clock alone, without a write);
* the CRLs say the same (checked on every hit, from memory, as before), and the trust
  material is the one the entry was checked against.

Only a session that passed every check and whose certificate path has no revocation
entry at all (a future-dated one would start to apply without a write) is kept. A
refusal is never cached: it is read and decided in full every time.

Bounded: at most ``max_entries`` sessions (least recently used dropped first); 0 turns
the cache off (``[limits] session_cache_entries``). Thread-safe.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CachedCheck(Generic[T]):
    """One session that passed every check, and what bounds its reuse."""

    epoch: int
    valid_until: _dt.datetime
    #: The trust store the chain's revocation was last checked against.
    trust_store: object
    value: T


class SessionCache(Generic[T]):
    """See the module docstring."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a session cache holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedCheck[T]] = OrderedDict()
        self._lock = threading.Lock()
        #: Hits and misses (for the bench and the tests).
        self.hits = 0
        self.misses = 0

    def get(self, token_hash: str, epoch: int, now: _dt.datetime) -> CachedCheck[T] | None:
        """The entry of ``token_hash`` if it is still good at ``epoch`` and ``now``; a
        stale one is dropped."""
        with self._lock:
            entry = self._entries.get(token_hash)
            if entry is None:
                self.misses += 1
                return None
            if entry.epoch != epoch or now >= entry.valid_until:
                del self._entries[token_hash]
                self.misses += 1
                return None
            self._entries.move_to_end(token_hash)
            self.hits += 1
            return entry

    def put(self, token_hash: str, entry: CachedCheck[T]) -> None:
        with self._lock:
            self._entries[token_hash] = entry
            self._entries.move_to_end(token_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, token_hash: str) -> None:
        with self._lock:
            self._entries.pop(token_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
