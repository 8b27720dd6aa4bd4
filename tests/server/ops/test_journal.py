"""R10: maintenance windows published by the operator, the Journal of emergencies."""

from __future__ import annotations

import datetime as _dt

import pytest

from server.ops import InvalidDocument, InvalidState, Operations, PermissionDenied
from server.store import Store
from tests.server.ops.conftest import CONTROLLER, OPERATOR, SECURITY, Clock, ListRecorder

H = _dt.timedelta(hours=1)


def test_publish_and_read_windows(ops: Operations, clock: Clock, recorder: ListRecorder) -> None:
    t = clock.now
    w1 = ops.journal.publish_window(OPERATOR, t + 2 * H, t + 4 * H, "database upgrade",
                                    urgent=True)
    w0 = ops.journal.publish_window(OPERATOR, t - 3 * H, t - 2 * H, "past work", urgent=True)
    assert [w.id for w in ops.journal.windows()] == [w0.id, w1.id]
    assert [w.id for w in ops.journal.windows(not_ended_before=t)] == [w1.id]
    assert ops.journal.current_window(t) is None
    assert ops.journal.current_window(t + 3 * H) == w1
    assert ops.journal.current_window(t + 4 * H) is None  # the end is exclusive
    assert "+05:00" in w1.describe()
    # One home: the windows are the control plane's rows, which every call reads.
    store = Store(ops.ctx.engine.url.render_as_string(hide_password=False))
    try:
        assert [w.id for w in store.windows()] == [w0.id, w1.id]
        open_ = store.current_window(t + 3 * H)
        assert open_ is not None and open_.description == "database upgrade"
    finally:
        store.close()
    [published, _] = recorder.of("ops.maintenance.published")
    assert published["details"]["what"] == "database upgrade"
    assert published["details"]["starts_at"].endswith("+05:00")
    with pytest.raises(InvalidDocument):
        ops.journal.publish_window(OPERATOR, t, t, "nothing")
    with pytest.raises(InvalidDocument):
        ops.journal.publish_window(OPERATOR, t, t + H, " ")
    with pytest.raises(PermissionDenied):
        ops.journal.publish_window(CONTROLLER, t, t + H, "x")


def test_emergency_journal(ops: Operations, clock: Clock, recorder: ListRecorder) -> None:
    t = clock.now
    e = ops.journal.record_emergency(OPERATOR, onset_at=t - 2 * H, causes="power failure in DC-1",
                                     measures="switched to DC-2")
    assert e.open
    assert [x.id for x in ops.journal.emergencies(SECURITY, open_only=True)] == [e.id]
    done = ops.journal.resolve_emergency(OPERATOR, e.id, resolved_at=t,
                                         measures="switched to DC-2; UPS replaced")
    assert done.resolved_at == t and not done.open
    assert ops.journal.emergencies(OPERATOR, open_only=True) == []
    events = recorder.of("emergency")
    assert [ev["details"]["action"] for ev in events] == ["recorded", "resolved"]
    assert events[0]["details"]["causes"] == "power failure in DC-1"
    assert events[1]["details"]["measures"] == "switched to DC-2; UPS replaced"
    with pytest.raises(InvalidState):
        ops.journal.resolve_emergency(OPERATOR, e.id, resolved_at=t)
    with pytest.raises(InvalidDocument):
        ops.journal.record_emergency(OPERATOR, onset_at=t, causes="x", measures="y",
                                     resolved_at=t - H)
    with pytest.raises(PermissionDenied):
        ops.journal.emergencies(CONTROLLER)
