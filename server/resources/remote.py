"""A connector to a real upstream information system over HTTP/JSON.

Protocol (one endpoint per resource, configured as a URL): ``POST <url>`` with
``Content-Type: application/json`` and body ``{"resource": <n>, "parameters": {...}}``;
the upstream answers ``200`` with a JSON object (the resource's data). See
``docs/adr/0004-connectors.md`` for why HTTP/JSON and not gRPC.

Resilience, from the inside out:

* **Per-attempt deadline** — each attempt is bounded by ``timeout`` seconds (socket
  timeout inside the worker thread, plus :func:`asyncio.wait_for` around it).
* **Retries** — :mod:`tenacity` retries *transient* failures only (timeouts, refused or
  dropped connections, HTTP 5xx) up to ``attempts`` times with exponential backoff
  (``backoff_base * 2**k``, capped at ``backoff_max``). A 4xx or a body that is not a JSON
  object is :class:`UpstreamRejected` at once.
* **Circuit breaker** — every attempt asks the :class:`CircuitBreaker` first. After
  ``failure_threshold`` consecutive transient failures it opens: calls fail fast with
  :class:`UpstreamUnavailable` (gRPC ``UNAVAILABLE``) without touching the network. After
  ``reset_timeout`` seconds it lets one trial call through (half-open): success closes
  it, failure re-opens it for another cool-down.
"""

from __future__ import annotations

import asyncio
import enum
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from server.resources.catalogue import Resource
from server.resources.errors import UpstreamRejected, UpstreamUnavailable
from siogw_api.errors import ConfigError

__all__ = ["BreakerState", "CircuitBreaker", "RemoteConnector"]

#: Largest upstream answer accepted (bytes).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class BreakerState(enum.StrEnum):
    """States of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open after N consecutive failures → half-open after a cool-down.

    ``clock`` returns seconds (monotonic); tests pass their own. Thread-safe.
    ``on_state_change(name, opened, failures)``, when set, is called (outside the lock,
    must not block or raise) when the breaker opens (``opened=True``) and when it closes
    again (``False``): the Journal of emergencies (:mod:`server.emergency_watch`).
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "upstream",
    ) -> None:
        if failure_threshold < 1 or reset_timeout < 0:
            raise ConfigError("circuit breaker needs failure_threshold >= 1, reset_timeout >= 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.on_state_change: Callable[[str, bool, int], None] | None = None

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose cool-down is over reads half-open)."""
        with self._lock:
            if (self._state is BreakerState.OPEN
                    and self._clock() - self._opened_at >= self.reset_timeout):
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        """Transient failures since the last success."""
        with self._lock:
            return self._failures

    def before_call(self) -> None:
        """Admit a call or raise :class:`UpstreamUnavailable` (fail fast)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            if self._state is BreakerState.OPEN:
                remaining = self.reset_timeout - (self._clock() - self._opened_at)
                if remaining > 0:
                    raise UpstreamUnavailable(
                        f"{self.name}: circuit breaker open",
                        detail=f"{self._failures} consecutive failures; "
                               f"next trial in {remaining:.1f}s",
                    )
                self._state = BreakerState.HALF_OPEN
                self._trial_in_flight = False
            if self._trial_in_flight:
                raise UpstreamUnavailable(
                    f"{self.name}: circuit breaker half-open", detail="a trial call is in flight"
                )
            self._trial_in_flight = True

    def record_success(self) -> None:
        """The upstream answered: close the breaker."""
        with self._lock:
            was_closed = self._state is BreakerState.CLOSED
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trial_in_flight = False
        if not was_closed and self.on_state_change is not None:
            self.on_state_change(self.name, False, 0)

    def abandon(self) -> None:
        """A call ended without a verdict (cancelled): free the half-open trial slot."""
        with self._lock:
            self._trial_in_flight = False

    def record_failure(self) -> None:
        """A transient failure: count it; open at the threshold or after a failed trial."""
        with self._lock:
            was_closed = self._state is BreakerState.CLOSED
            self._failures += 1
            if (self._state is BreakerState.HALF_OPEN
                    or self._failures >= self.failure_threshold):
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
            self._trial_in_flight = False
            opened = was_closed and self._state is BreakerState.OPEN
            failures = self._failures
        if opened and self.on_state_change is not None:
            self.on_state_change(self.name, True, failures)


class _Transient(Exception):
    """An attempt failed in a way worth retrying (internal to this module)."""


class RemoteConnector:
    """Fetches a resource from an upstream HTTP/JSON endpoint with retries and a breaker."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff_base: float = 0.2,
        backoff_max: float = 2.0,
        breaker: CircuitBreaker | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream URL must be http:// or https://, got {url!r}")
        if timeout <= 0 or attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise ConfigError("remote connector needs timeout > 0, attempts >= 1, backoff >= 0")
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.breaker = breaker or CircuitBreaker(name=url)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         **(headers or {})}
        #: Attempts made over the connector's life (for metrics and tests).
        self.attempts_made = 0

    async def fetch(self, resource: Resource, params: Mapping[str, str]) -> dict[str, Any]:
        """POST the query upstream; retry transient failures; fail fast when the breaker is open."""
        body = json.dumps(
            {"resource": resource.number, "parameters": dict(params)}, sort_keys=True
        ).encode()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_base, max=self.backoff_max),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(resource, body)
        except _Transient as exc:
            raise UpstreamUnavailable(
                f"resource {resource.number}: upstream unavailable after "
                f"{self.attempts} attempt(s)",
                detail=str(exc),
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(self, resource: Resource, body: bytes) -> dict[str, Any]:
        self.breaker.before_call()  # UpstreamUnavailable is not retried
        self.attempts_made += 1
        try:
            raw = await asyncio.wait_for(
                asyncio.to_thread(self._post, body), timeout=self.timeout
            )
        except (_Transient, TimeoutError) as exc:
            self.breaker.record_failure()
            if isinstance(exc, TimeoutError):
                raise _Transient(f"deadline of {self.timeout}s exceeded") from exc
            raise
        except UpstreamRejected:
            self.breaker.record_success()  # the upstream is alive, it just said no
            raise
        except BaseException:  # cancelled, or a bug: free a half-open trial slot
            self.breaker.abandon()
            raise
        self.breaker.record_success()
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UpstreamRejected(
                f"resource {resource.number}: upstream answer is not JSON", detail=str(exc)
            ) from None
        if not isinstance(data, dict):
            raise UpstreamRejected(
                f"resource {resource.number}: upstream answer is not a JSON object",
                detail=f"got {type(data).__name__}",
            )
        return data

    def _post(self, body: bytes) -> bytes:
        """One blocking HTTP exchange (runs in a worker thread)."""
        req = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw: bytes = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
            raise UpstreamRejected(f"upstream refused the query: HTTP {exc.code}",
                                   detail=str(exc.reason)) from None
        except urllib.error.URLError as exc:
            raise _Transient(f"connection failed: {exc.reason}") from exc
        except (http.client.HTTPException, OSError) as exc:  # dropped connection, timeout
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise UpstreamRejected(f"upstream answer exceeds {MAX_RESPONSE_BYTES} bytes")
        return raw
