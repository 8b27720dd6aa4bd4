"""A connector to a real upstream information system over HTTP/JSON (httpx, async).

Protocol (one endpoint per resource, configured as a URL in ``[upstreams.N]``,
:mod:`server.resources.upstreams`): ``POST <url>`` with ``Content-Type: application/json``,
``Accept: application/json``, ``Accept-Encoding: identity``, ``Idempotency-Key: <the
query's request id>``, the configured ``Authorization`` value if any, and the body
``{"resource": <n>, "parameters": {...}}``. The upstream answers ``200`` with
``Content-Type: application/json`` and a JSON object (the resource's data). See
``docs/adr/0004-connectors.md`` (decision 7) and ``docs/usage.md`` ("Upstreams").

What is refused, and how (issue 14, finding 2):

* **One total deadline per call** -- the smaller of the configured ``timeout`` and what is
  left of the client's gRPC deadline (less :data:`DEADLINE_MARGIN`, so that the refusal is
  still recorded and the request id released before the client gives up) -- covers every
  attempt, every backoff sleep and every byte read. It is :func:`asyncio.timeout` around
  the async exchange: when it passes, the exchange is cancelled and its connection closed;
  no thread is held (an upstream dripping a byte a second cannot stall anything else).
  Past it: :class:`UpstreamUnavailable` (``UNAVAILABLE``).
* **No redirects**: a 3xx is :class:`UpstreamRejected`; the ``Authorization`` header
  never goes anywhere but the configured URL.
* **Retries** (:mod:`tenacity`, exponential backoff inside the deadline) only for
  transient failures -- a refused or timed-out *connect* (nothing was sent: always safe),
  and, when the resource is configured ``idempotent = true`` (the upstream declares its
  endpoint idempotent or honours ``Idempotency-Key``), also a 5xx, a dropped connection or
  a read error after the request was sent. Otherwise a request that may have reached the
  upstream is never sent twice. A 4xx is :class:`UpstreamRejected` at once.
* **The answer**: read as a stream, at most ``max_response_bytes`` (stops reading there);
  not ``application/json``, compressed, not UTF-8, not JSON, JSON nested deeper than
  ``max_depth`` (measured without recursion before parsing), a non-finite number or an
  integer beyond 2**53, or a JSON value that is not an object: :class:`UpstreamRejected`.
* **Circuit breaker** -- every attempt asks the :class:`CircuitBreaker` first. After
  ``failure_threshold`` consecutive transient failures it opens: calls fail fast with
  :class:`UpstreamUnavailable` without touching the network. After ``reset_timeout``
  seconds it lets one trial call through (half-open): success closes it, failure re-opens
  it. One breaker per upstream URL *per process*; its state is the gRPC health status
  ``siogw.upstream.<n>`` of each resource it serves (:func:`health_service_name`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from server.resources.catalogue import Resource
from server.resources.connectors import NO_OPTIONS, FetchOptions
from server.resources.errors import UpstreamRejected, UpstreamUnavailable
from server.resources.upstreams import DEFAULT_MAX_DEPTH, DEFAULT_MAX_RESPONSE_BYTES
from siogw_api.errors import ConfigError

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "RemoteConnector",
    "health_service_name",
    "json_depth",
    "parse_answer",
]


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
    """An attempt failed in a way that may pass (internal to this module).

    ``sent``: the request may have reached the upstream (only an ``idempotent`` upstream
    is asked again then).
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent




def health_service_name(resource: int) -> str:
    """The gRPC health service name of resource ``resource``'s upstream."""
    return f"siogw.upstream.{resource}"


#: A JSON string (an unterminated one runs to the end: one pass, never quadratic) or a run
#: of anything but brackets and quotes: what :func:`json_depth` cuts out.
_NOT_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"?|[^\[\]{}"]+', re.DOTALL)


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in JSON ``text`` (no recursion: strings are
    cut out first, then the brackets counted)."""
    depth = deepest = 0
    for char in _NOT_BRACKETS.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > _MAX_SAFE_INT:
        raise ValueError("integer beyond 2**53 (not exact in a result)")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_MAX_SAFE_INT = 2**53


def parse_answer(raw: bytes, *, max_depth: int, resource: int) -> dict[str, Any]:
    """An upstream body as a JSON object, or :class:`UpstreamRejected` (module docstring)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UpstreamRejected(f"resource {resource}: upstream answer is not UTF-8 JSON",
                               detail="not UTF-8") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise UpstreamRejected(f"resource {resource}: upstream answer is nested too deep",
                               detail=f"depth {depth} > max_depth {max_depth}")
    try:
        data = json.loads(text, parse_float=_finite, parse_int=_safe_int,
                          parse_constant=_constant)
    except (ValueError, RecursionError) as exc:
        raise UpstreamRejected(f"resource {resource}: upstream answer is not JSON",
                               detail=str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise UpstreamRejected(
            f"resource {resource}: upstream answer is not a JSON object",
            detail=f"got {type(data).__name__}",
        )
    return data


#: Seconds of the client's deadline kept for what follows the upstream call (the refusal
#: record, the release of the request id).
DEADLINE_MARGIN = 0.1


@dataclass
class _CallState:
    attempts: int = 0
    in_attempt: bool = False
    last_error: str = ""


class RemoteConnector:
    """Fetches a resource from an upstream HTTP/JSON endpoint (module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        idempotent: bool = False,
        backoff_base: float = 0.2,
        backoff_max: float = 2.0,
        breaker: CircuitBreaker | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream URL must be http:// or https://, got {url!r}")
        if timeout <= 0 or attempts < 1 or backoff_base < 0 or backoff_max < 0:
            raise ConfigError("remote connector needs timeout > 0, attempts >= 1, backoff >= 0")
        if max_response_bytes < 2 or max_depth < 1:
            raise ConfigError("remote connector needs max_response_bytes >= 2, max_depth >= 1")
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.idempotent = idempotent
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_response_bytes = max_response_bytes
        self.max_depth = max_depth
        self.breaker = breaker or CircuitBreaker(name=url)
        self._verify = verify
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "Accept-Encoding": "identity", **(headers or {})}
        #: One client (connection pool) per event loop: an httpx client belongs to the
        #: loop it first ran in.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()
        #: Attempts made over the connector's life (for metrics and tests).
        self.attempts_made = 0

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                follow_redirects=False,  # a 3xx is refused, never followed
                trust_env=False,  # no proxy or .netrc credentials from the environment
                verify=self._verify,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=8),
            )
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's connection pool (the gateway's close)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    async def fetch(
        self, resource: Resource, params: Mapping[str, str],
        options: FetchOptions = NO_OPTIONS,
    ) -> dict[str, Any]:
        """POST the query upstream within one total deadline (module docstring)."""
        budget, by_client = self.timeout, False
        if options.time_remaining is not None:
            left = options.time_remaining - DEADLINE_MARGIN
            if left < budget:
                budget, by_client = left, True
        if budget <= 0:
            raise UpstreamUnavailable(
                f"resource {resource.number}: the client's deadline leaves no time to ask "
                "the upstream")
        body = json.dumps(
            {"resource": resource.number, "parameters": dict(params)}, sort_keys=True
        ).encode()
        headers = dict(self._headers)
        if options.request_id:
            headers["Idempotency-Key"] = options.request_id
        state = _CallState()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_base, max=self.backoff_max),
            retry=retry_if_exception(self._may_retry),
            reraise=True,
        )
        try:
            async with asyncio.timeout(budget):
                async for attempt in retrying:
                    with attempt:
                        return await self._attempt(resource, body, headers, budget, state)
        except TimeoutError:
            if state.in_attempt:
                # Cut in the middle of an exchange: a slow upstream counts against its
                # breaker; a client that gave us less time than configured is no verdict.
                if by_client:
                    self.breaker.abandon()
                else:
                    self.breaker.record_failure()
            whose = "the client's deadline" if by_client else "the upstream timeout"
            raise UpstreamUnavailable(
                f"resource {resource.number}: upstream did not answer within {whose} "
                f"({budget:.1f}s)",
                detail=f"{state.attempts} attempt(s); {state.last_error}".rstrip("; "),
            ) from None
        except _Transient as exc:
            raise UpstreamUnavailable(
                f"resource {resource.number}: upstream unavailable after "
                f"{state.attempts} attempt(s)",
                detail=str(exc),
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _may_retry(self, exc: BaseException) -> bool:
        return isinstance(exc, _Transient) and (self.idempotent or not exc.sent)

    async def _attempt(
        self, resource: Resource, body: bytes, headers: Mapping[str, str], budget: float,
        state: _CallState,
    ) -> dict[str, Any]:
        self.breaker.before_call()  # UpstreamUnavailable is not retried
        self.attempts_made += 1
        state.attempts += 1
        state.in_attempt = True
        try:
            raw = await self._exchange(body, headers, budget)
        except _Transient as exc:
            state.in_attempt = False
            state.last_error = str(exc)
            self.breaker.record_failure()
            raise
        except UpstreamRejected:
            state.in_attempt = False
            self.breaker.record_success()  # the upstream is alive, it just said no
            raise
        except BaseException:  # cancelled (the deadline: see fetch), or a bug
            self.breaker.abandon()  # free a half-open trial slot
            raise
        state.in_attempt = False
        self.breaker.record_success()
        return parse_answer(raw, max_depth=self.max_depth, resource=resource.number)

    async def _exchange(self, body: bytes, headers: Mapping[str, str], budget: float) -> bytes:
        """One HTTP exchange: the body of a 200 answer, read up to the byte limit."""
        client = self._client()
        limit = self.max_response_bytes
        try:
            async with client.stream("POST", self.url, content=body, headers=headers,
                                     timeout=httpx.Timeout(budget)) as resp:
                client.cookies.clear()  # no state carried from one query to the next
                status = resp.status_code
                if 300 <= status < 400:
                    raise UpstreamRejected(
                        f"upstream answered a redirect (HTTP {status}); redirects are not "
                        "followed", detail=f"HTTP {status}")
                if status >= 500:
                    raise _Transient(f"HTTP {status} {resp.reason_phrase}", sent=True)
                if status >= 400:
                    raise UpstreamRejected(f"upstream refused the query: HTTP {status}",
                                           detail=resp.reason_phrase)
                if status != 200:
                    raise UpstreamRejected(f"upstream answered HTTP {status}, not 200")
                _check_headers(resp, limit)
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise UpstreamRejected(f"upstream answer exceeds {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient(f"connection failed: {exc or type(exc).__name__}",
                             sent=False) from exc
        except httpx.TransportError as exc:  # read/write errors, dropped, protocol errors
            raise _Transient(f"{type(exc).__name__}: {exc}", sent=True) from exc


def _check_headers(resp: httpx.Response, limit: int) -> None:
    """Refuse a 200 whose headers already say it is unusable (not JSON, too large)."""
    media = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UpstreamRejected("upstream answer is not JSON",
                               detail=f"Content-Type {media[:60] or 'missing'}")
    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UpstreamRejected("upstream answer is compressed (identity was asked for)",
                               detail=f"Content-Encoding {encoding[:40]}")
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UpstreamRejected(f"upstream answer exceeds {limit} bytes",
                               detail=f"Content-Length {declared[:20]}")
