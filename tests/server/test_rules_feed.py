"""The rules feed: records reach the rule engine in order, in batches, never lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server.ops_wiring import RulesFeed


class RecordingEngine:
    """Stands in for ``RuleEngine``: keeps what it observed and the batch boundaries."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.seen: list[int] = []
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self._current: list[int] | None = None
        self.thread_names: set[str] = set()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._current = []
        try:
            yield
        finally:
            self.batches.append(self._current)
            self._current = None

    def observe(self, event: dict[str, Any]) -> list[Any]:
        self.thread_names.add(threading.current_thread().name)
        n = int(event["seq"])
        assert self._current is not None, "observed outside a batch"
        self._current.append(n)
        if n in self.fail_on:
            raise RuntimeError(f"rule failed on {n}")
        self.seen.append(n)
        return []


def event(n: int) -> dict[str, Any]:
    return {"event_type": "query", "actor": "bob", "outcome": "success", "seq": n,
            "details": {}}


def test_a_burst_is_observed_in_order_in_few_batches() -> None:
    engine = RecordingEngine()
    feed = RulesFeed(engine, linger=0.05)
    try:
        for n in range(200):
            feed.put(event(n))
        feed.settle(10)
        assert engine.seen == list(range(200))
        # 200 records arrived within one linger: far fewer wake-ups than records.
        assert len([b for b in engine.batches if b]) <= 3
        assert engine.thread_names == {"siogw-ops-rules"}
    finally:
        feed.close()


def test_a_failing_rule_does_not_stop_the_records_after_it(caplog: Any) -> None:
    engine = RecordingEngine(fail_on={3})
    feed = RulesFeed(engine, linger=0.0)
    try:
        for n in range(6):
            feed.put(event(n))
        feed.settle(10)
        assert engine.seen == [0, 1, 2, 4, 5]
        assert "violation rules failed" in caplog.text
    finally:
        feed.close()


def test_close_drains_what_was_queued_then_refuses_more() -> None:
    engine = RecordingEngine()
    feed = RulesFeed(engine, linger=0.2)
    for n in range(10):
        feed.put(event(n))
    feed.close()
    assert engine.seen == list(range(10))
    feed.put(event(99))  # after close: dropped quietly (the record is in the audit log)
    feed.settle(1)
    assert engine.seen == list(range(10))


def test_a_long_backlog_is_logged_once(caplog: Any) -> None:
    engine = RecordingEngine()
    feed = RulesFeed(engine, linger=0.3)
    feed.backlog_warning = 5
    try:
        for n in range(12):
            feed.put(event(n))
        warnings = [r for r in caplog.records if "lag the audit log" in r.getMessage()]
        assert len(warnings) == 1 and "5 records queued" in warnings[0].getMessage()
        feed.settle(10)
        assert engine.seen == list(range(12))
    finally:
        feed.close()


def test_settle_and_call_cut_the_linger_short() -> None:
    """A long linger gathers records, but one waiting for them (settle, a job) is not
    kept waiting for it."""
    engine = RecordingEngine()
    feed = RulesFeed(engine, linger=30.0)
    try:
        feed.put(event(1))
        t0 = time.monotonic()
        feed.settle(10)
        assert engine.seen == [1]
        ran = threading.Event()
        feed.put(event(2))
        feed.call(ran.set)
        assert ran.wait(10) and engine.seen == [1, 2]
        assert time.monotonic() - t0 < 10  # neither waited out the 30 s linger
    finally:
        feed.close()
