"""RemoteConnector against real HTTP servers on 127.0.0.1: retries, deadline, breaker."""

from __future__ import annotations

import asyncio

import pytest

from server.resources import (
    BreakerState,
    CircuitBreaker,
    RemoteConnector,
    UpstreamRejected,
    UpstreamUnavailable,
    get_resource,
)
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


def _fetch(conn: RemoteConnector) -> dict[str, object]:
    return asyncio.run(conn.fetch(RES, PARAMS))


def _connector(url: str, **kw: object) -> RemoteConnector:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("timeout", 5.0)
    return RemoteConnector(url, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("failure", ["500", "503", "close"])
def test_transient_failures_are_retried(failure: str) -> None:
    with serve([failure, failure, "ok"], payload={"name": "x"}) as up:
        conn = _connector(up.url, attempts=3)
        data = _fetch(conn)
        assert up.calls == 3 and conn.attempts_made == 3
    assert data["name"] == "x"
    assert data["echo"] == {"resource": 1, "parameters": PARAMS}
    assert state(conn.breaker) == BreakerState.CLOSED
    assert conn.breaker.consecutive_failures == 0


def test_gives_up_after_attempts() -> None:
    with serve(["500"]) as up:
        conn = _connector(up.url, attempts=3)
        with pytest.raises(UpstreamUnavailable) as ei:
            _fetch(conn)
        assert up.calls == 3
    assert "3 attempt" in str(ei.value) and "500" in ei.value.diagnostics()


@pytest.mark.parametrize(("behaviour", "text"), [("404", "HTTP 404"), ("garbage", "not JSON"),
                                                 ("list", "not a JSON object")])
def test_rejections_are_not_retried(behaviour: str, text: str) -> None:
    with serve([behaviour, "ok"]) as up:
        conn = _connector(up.url, attempts=3)
        with pytest.raises(UpstreamRejected) as ei:
            _fetch(conn)
        assert up.calls == 1
    assert text in str(ei.value)
    assert state(conn.breaker) == BreakerState.CLOSED


def test_deadline_counts_as_transient() -> None:
    with serve(["hang", "ok"]) as up:
        conn = _connector(up.url, attempts=2, timeout=1.0)
        data = _fetch(conn)
        assert up.calls == 2
    assert "echo" in data


def test_down_upstream_opens_breaker_then_fails_fast() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=60, clock=Clock())
    conn = _connector(down_url(), attempts=2, breaker=breaker)
    with pytest.raises(UpstreamUnavailable) as first:
        _fetch(conn)  # 2 refused attempts
    assert "refused" in first.value.diagnostics().lower()
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
        CircuitBreaker(failure_threshold=0)
