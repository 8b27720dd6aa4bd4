"""A bounded sliding-window rate limiter (BeginLogin per client address and per user id).

:class:`RateLimiter` allows at most ``limit`` events per key in any ``window`` seconds.
It is in memory, per process: each gateway process (the log host, each worker) limits
what it serves itself, so with N processes a key gets at most N times the limit. The
per-user cap on open logins kept in the database (:meth:`server.store.sessions.
SessionStore.open_logins`) is shared by all processes and bounds what is *stored*.

Memory is bounded: a key keeps at most ``limit`` timestamps, and at most ``max_keys``
keys are tracked. When the table is full, keys whose window is empty are dropped first;
if every tracked key is still live the new key is refused (fail closed: an attacker who
fills the table with fresh addresses or user ids gets refusals, not an unlimited pass).
Thread-safe (BeginLogin runs in worker threads).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from siogw_api.errors import ConfigError


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (see the module doc)."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_keys: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ConfigError("a rate limit needs a positive limit, window and key count")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (and nothing counted) over the limit."""
        now = self._clock()
        horizon = now - self.window
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys and not self._evict(horizon):
                    return False
                events = deque(maxlen=self.limit)
                self._events[key] = events
            while events and events[0] <= horizon:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            self._events.move_to_end(key)
            return True

    def _evict(self, horizon: float) -> bool:
        """Drop keys with no event left in the window (least recent first); any freed?"""
        stale = [k for k, ev in self._events.items() if not ev or ev[-1] <= horizon]
        for k in stale:
            del self._events[k]
        return bool(stale)

    def __len__(self) -> int:
        return len(self._events)


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string (``ipv4:1.2.3.4:5678`` -> ``ipv4:1.2.3.4``).

    Ports change with every connection; a limit per address must not.
    """
    if peer.startswith(("ipv4:", "ipv6:")):
        head, _, tail = peer.rpartition(":")
        if head not in ("ipv4", "ipv6") and tail.isdigit():
            return head
    return peer
