"""The per-peer burst and summaries of unauthenticated refusals (issue 12 point 5)."""

from __future__ import annotations

from server.interceptors import RefusalLimiter, peer_address


def test_a_flood_from_one_peer_is_bounded_and_summarised() -> None:
    now = [0.0]
    limiter = RefusalLimiter(burst=5, window=60.0, clock=lambda: now[0])
    recorded = [limiter.admit(f"ipv4:10.0.0.1:{40000 + i}", "MALFORMED_REQUEST")
                for i in range(760)]
    assert sum(1 for ok, _ in recorded if ok) == 5
    assert all(not summaries for _, summaries in recorded)
    ok, _ = limiter.admit("ipv4:10.0.0.2:1", "UNAUTHENTICATED")  # another peer: own burst
    assert ok
    now[0] = 61.0
    ok, summaries = limiter.admit("ipv4:10.0.0.1:9", "MALFORMED_REQUEST")
    assert ok  # a new window: the first refusals are recorded again
    [summary] = summaries
    assert summary.event == "refusal.summary" and summary.actor == "anonymous"
    assert summary.details["peer"] == "10.0.0.1"
    assert summary.details["suppressed"] == 755
    assert summary.details["by_reason"] == {"MALFORMED_REQUEST": 755}
    assert limiter.flush() == []  # nothing suppressed in the open windows


def test_peer_address_drops_the_port() -> None:
    assert peer_address("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_address("ipv6:[::1]:5000") == "::1"
    assert peer_address("unix:/tmp/x") == "unix:/tmp/x"
