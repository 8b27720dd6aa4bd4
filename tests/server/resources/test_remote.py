"""RemoteConnector against real HTTP servers on 127.0.0.1 (issue 14, finding 2).

Each failure of the finding against a real local upstream: a slow drip, a redirect to
another host, a POST answered 500 after it was received, non-JSON, oversized and too-deep
answers, 4xx, a refused connection opening the breaker, the client's deadline shorter
than the configured one. Plus retries where they are safe, and the breaker's states.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.resources import (
    BreakerState,
    CircuitBreaker,
    RemoteConnector,
    UpstreamRejected,
    UpstreamUnavailable,
    get_resource,
)
from server.resources.connectors import FetchOptions
from server.resources.remote import json_depth, parse_answer
from siogw_api.errors import ConfigError, SiogwError
from tests.server.resources.upstream import down_url, serve

RES = get_resource(1)
PARAMS = {"iin": "850312312343"}


class Clock:
    """A manual monotonic clock for the breaker's cool-down."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def _fetch(conn: RemoteConnector, options: FetchOptions | None = None) -> dict[str, Any]:
    return asyncio.run(conn.fetch(RES, PARAMS, options or FetchOptions()))


def _connector(url: str, **kw: Any) -> RemoteConnector:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("timeout", 5.0)
    return RemoteConnector(url, **kw)


# --- retries: only where they are safe -------------------------------------------------------
@pytest.mark.parametrize("failure", ["500", "503", "close"])
def test_failures_after_the_request_was_sent_are_retried_only_when_idempotent(
    failure: str,
) -> None:
    with serve([failure, failure, "ok"], payload={"name": "x"}) as up:
        conn = _connector(up.url, attempts=3, idempotent=True)
        data = _fetch(conn, FetchOptions(request_id="req-1"))
        assert up.calls == 3 and conn.attempts_made == 3
        # every attempt carries the same idempotency key
        assert [h.get("idempotency-key") for h in up.headers] == ["req-1"] * 3
    assert data["name"] == "x"
    assert data["echo"] == {"resource": 1, "parameters": PARAMS}
    assert state(conn.breaker) == BreakerState.CLOSED
    assert conn.breaker.consecutive_failures == 0


@pytest.mark.parametrize("failure", ["500", "close"])
def test_a_post_that_reached_the_upstream_is_not_sent_twice(failure: str) -> None:
    """The finding: one query, three POSTs. Now the upstream counts exactly one."""
    with serve([failure, "ok"]) as up:
        conn = _connector(up.url, attempts=3)  # idempotent = false (the default)
        with pytest.raises(UpstreamUnavailable) as ei:
            _fetch(conn, FetchOptions(request_id="req-2"))
        assert up.calls == 1
        assert up.headers[0]["idempotency-key"] == "req-2"
    assert "1 attempt" in str(ei.value)


def test_a_refused_connection_is_retried_whatever_the_idempotency() -> None:
    """Nothing was sent: asking again is always safe (and the breaker counts each)."""
    breaker = CircuitBreaker(failure_threshold=10, reset_timeout=60, clock=Clock())
    conn = _connector(down_url(), attempts=3, breaker=breaker)
    with pytest.raises(UpstreamUnavailable) as ei:
        _fetch(conn)
    assert conn.attempts_made == 3 and breaker.consecutive_failures == 3
    assert "refused" in ei.value.diagnostics().lower() or "connect" in ei.value.diagnostics()


def test_gives_up_after_attempts() -> None:
    with serve(["500"]) as up:
        conn = _connector(up.url, attempts=3, idempotent=True)
        with pytest.raises(UpstreamUnavailable) as ei:
            _fetch(conn)
        assert up.calls == 3
    assert "3 attempt" in str(ei.value) and "500" in ei.value.diagnostics()


# --- answers that are refused ---------------------------------------------------------------
@pytest.mark.parametrize(("behaviour", "text"), [
    ("404", "HTTP 404"), ("400", "HTTP 400"), ("403", "HTTP 403"),
    ("garbage", "not JSON"), ("text", "not JSON"), ("list", "not a JSON object"),
    ("deep", "nested too deep"), ("big", "exceeds 65536 bytes"),
    ("bighdr", "exceeds 65536 bytes"),
])
def test_unusable_answers_are_rejected_and_not_retried(behaviour: str, text: str) -> None:
    with serve([behaviour, "ok"]) as up:
        conn = _connector(up.url, attempts=3, idempotent=True, max_response_bytes=65536)
        with pytest.raises(UpstreamRejected) as ei:
            _fetch(conn)
        assert up.calls == 1
    assert text in str(ei.value)
    assert state(conn.breaker) == BreakerState.CLOSED  # the upstream is alive


def test_a_redirect_is_refused_and_the_other_host_sees_nothing() -> None:
    """No redirect is followed: the Authorization header never reaches another host."""
    with serve(["ok"]) as other, serve(["redirect"]) as up:
        up.redirect_to = other.url
        conn = _connector(up.url, attempts=3, idempotent=True,
                          headers={"Authorization": "Bearer s3cret"})
        with pytest.raises(UpstreamRejected) as ei:
            _fetch(conn)
        assert up.calls == 1 and up.headers[0]["authorization"] == "Bearer s3cret"
        assert other.calls == 0 and other.headers == []
    assert "redirect" in str(ei.value)


def test_an_answer_at_the_limit_passes() -> None:
    with serve(["big"]) as up:
        up.big_bytes = 1000
        conn = _connector(up.url, max_response_bytes=1000 + len('{"blob":""}'))
        assert len(_fetch(conn)["blob"]) == 1000


# --- the deadline ---------------------------------------------------------------------------
def test_a_dripping_upstream_is_cut_at_the_deadline_and_stalls_nothing() -> None:
    """The finding: a byte every 0.8 s held a thread of the shared pool and stalled every
    query. Now the call is async: with the default executor cut to ONE thread, two other
    queries to a healthy upstream are answered while the drip goes on, and the dripping
    call ends at its total deadline (the upstream sees the client go away) long before
    the drip would (100,000 bytes at 0.8 s each)."""
    with serve(["drip"]) as slow, serve(["ok"], payload={"fine": True}) as fast:
        dripping = _connector(slow.url, attempts=3, idempotent=True, timeout=2.5)
        healthy = _connector(fast.url)

        async def scenario() -> tuple[BaseException | None, list[dict[str, Any]], bool]:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
            drip = asyncio.create_task(dripping.fetch(RES, PARAMS))
            while slow.dripped < 2:  # the drip has started
                await asyncio.sleep(0.05)
            others = [await healthy.fetch(RES, PARAMS) for _ in range(2)]
            drip_still_running = not drip.done()
            try:
                await drip
            except UpstreamUnavailable as exc:
                return exc, others, drip_still_running
            return None, others, drip_still_running

        exc, others, running = asyncio.run(scenario())
        assert all(o["fine"] for o in others) and running
        assert isinstance(exc, UpstreamUnavailable)
        assert "upstream timeout" in str(exc)
        assert slow.calls == 1  # cut mid-answer: not retried inside the same deadline
        assert slow.gone.wait(10)  # the connection was really closed
        assert slow.dripped < 100_000
    assert dripping.breaker.consecutive_failures == 1  # slow counts against the upstream


def test_the_clients_deadline_cuts_a_longer_configured_one() -> None:
    with serve(["drip"]) as slow:
        conn = _connector(slow.url, timeout=60.0)
        with pytest.raises(UpstreamUnavailable) as ei:
            _fetch(conn, FetchOptions(request_id="r", time_remaining=1.5))
        assert "client's deadline" in str(ei.value)
        assert slow.gone.wait(10)
    # a client in a hurry is no verdict on the upstream
    assert conn.breaker.consecutive_failures == 0
    assert state(conn.breaker) == BreakerState.CLOSED


def test_no_time_left_means_the_upstream_is_not_asked() -> None:
    with serve(["ok"]) as up:
        conn = _connector(up.url)
        with pytest.raises(UpstreamUnavailable, match="no time"):
            _fetch(conn, FetchOptions(time_remaining=0.05))
        assert up.calls == 0


def test_a_hanging_upstream_ends_the_call_at_the_total_deadline() -> None:
    """The deadline is per call, not per attempt: no second attempt after it."""
    with serve(["hang", "ok"]) as up:
        conn = _connector(up.url, attempts=3, idempotent=True, timeout=1.0)
        with pytest.raises(UpstreamUnavailable, match="upstream timeout"):
            _fetch(conn)
        assert up.calls == 1


# --- the breaker ----------------------------------------------------------------------------
def test_down_upstream_opens_breaker_then_fails_fast() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=60, clock=Clock())
    conn = _connector(down_url(), attempts=2, breaker=breaker)
    with pytest.raises(UpstreamUnavailable) as first:
        _fetch(conn)  # 2 refused attempts
    assert "connection failed" in first.value.diagnostics().lower()
    assert state(breaker) == BreakerState.CLOSED and breaker.consecutive_failures == 2
    with pytest.raises(UpstreamUnavailable):
        _fetch(conn)  # 3rd refusal opens it; the retry then fails fast
    assert state(breaker) == BreakerState.OPEN
    assert conn.attempts_made == 3
    with pytest.raises(UpstreamUnavailable) as fast:
        _fetch(conn)
    assert conn.attempts_made == 3  # no network contact at all
    assert "circuit breaker open" in str(fast.value)
    assert isinstance(fast.value, SiogwError)


def test_breaker_half_opens_after_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=clock)
    with serve(["500", "500", "500", "ok"]) as up:
        conn = _connector(up.url, attempts=1, breaker=breaker)
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                _fetch(conn)
        assert state(breaker) == BreakerState.OPEN and up.calls == 2
        with pytest.raises(UpstreamUnavailable):
            _fetch(conn)
        assert up.calls == 2  # failed fast
        clock.now += 29
        assert state(breaker) == BreakerState.OPEN
        clock.now += 1
        assert state(breaker) == BreakerState.HALF_OPEN
        with pytest.raises(UpstreamUnavailable):
            _fetch(conn)  # the trial call reaches the upstream and fails: open again
        assert up.calls == 3 and state(breaker) == BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable):
            _fetch(conn)
        assert up.calls == 3
        clock.now += 30
        assert "echo" in _fetch(conn)  # trial succeeds: closed
        assert up.calls == 4 and state(breaker) == BreakerState.CLOSED


def test_half_open_admits_one_trial_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    breaker.before_call()  # the trial
    with pytest.raises(UpstreamUnavailable, match="half-open"):
        breaker.before_call()
    breaker.abandon()  # e.g. the trial was cancelled
    breaker.before_call()
    breaker.record_success()
    assert state(breaker) == BreakerState.CLOSED


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        RemoteConnector("file:///etc/passwd")
    with pytest.raises(ConfigError):
        RemoteConnector("http://127.0.0.1:1/", attempts=0)
    with pytest.raises(ConfigError):
        RemoteConnector("http://127.0.0.1:1/", max_depth=0)
    with pytest.raises(ConfigError):
        CircuitBreaker(failure_threshold=0)


# --- the answer parser (outside input: property tests) --------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_json)
def test_json_depth_agrees_with_the_structure(value: Any) -> None:
    assert json_depth(json.dumps(value)) == _depth(value)
    assert json_depth(json.dumps(value, ensure_ascii=False)) == _depth(value)


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(1, 6))
def test_parse_answer_returns_objects_within_depth_or_rejects(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    if isinstance(value, dict) and _depth(value) <= limit:
        assert parse_answer(raw, max_depth=limit, resource=1) == value
    else:
        with pytest.raises(UpstreamRejected):
            parse_answer(raw, max_depth=limit, resource=1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_answer_never_fails_otherwise_on_bytes(raw: bytes) -> None:
    try:
        assert isinstance(parse_answer(raw, max_depth=8, resource=1), dict)
    except UpstreamRejected:
        pass


@pytest.mark.parametrize("raw", [
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'{"a": 9007199254740993}',
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' + b"[" * 100_000, b'"\\"' * 50_000,
    "{\"a\": \"\u00e9\"}".encode("utf-16"),
])
def test_parse_answer_refuses_what_json_loads_would_take_or_crash_on(raw: bytes) -> None:
    with pytest.raises(UpstreamRejected):
        parse_answer(raw, max_depth=32, resource=1)
