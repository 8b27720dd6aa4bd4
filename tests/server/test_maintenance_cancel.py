"""Issue 15, point 5 (§14): a published maintenance window can be cancelled.

The cancellation is recorded; status, health and the journal stop announcing the
window, and it no longer closes the gateway. On SQLite and PostgreSQL (the ``gateway``
fixture's parameters).
"""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

import grpc
import pytest

from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, common_pb2, query_pb2
from tests.server.conftest import Harness, bearer, rpc_error
from tests.server.ops_grpc_helpers import admin, data, ensure_roles


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


def _publish(gw: Harness, starts: _dt.datetime, hours: int = 2) -> str:
    window_id = f"mw-{secrets.token_hex(3)}"
    admin(gw, "olga", publish_maintenance=admin_pb2.PublishMaintenance(
        window=common_pb2.MaintenanceWindow(
            id=window_id, starts_at=astana_iso(starts),
            ends_at=astana_iso(starts + _dt.timedelta(hours=hours)), description="upgrade",
            # inside the notice period (§14) only when marked urgent
            urgent=starts < now_utc() + _dt.timedelta(hours=24))))
    return window_id


def test_a_cancelled_window_is_no_longer_announced_and_the_cancellation_is_recorded(
    gw: Harness,
) -> None:
    window_id = _publish(gw, now_utc() + _dt.timedelta(days=2))
    status = gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
    assert window_id in [w.id for w in status.windows]

    resp = admin(gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(
        window_id=window_id, reason="the vendor moved the upgrade"))
    assert resp.WhichOneof("result") == "maintenance"
    got = data(resp)
    assert got["id"] == window_id and got["cancel_reason"] == "the vendor moved the upgrade"
    assert got["cancelled_by"] == "olga" and got["cancelled_at"].endswith("+05:00")

    status = gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
    assert window_id not in [w.id for w in status.windows]
    journal = gw.admin.GetJournal(admin_pb2.GetJournalRequest(),
                                  metadata=bearer(gw.session("alice")))
    assert window_id not in [w.id for w in journal.windows]
    assert any(r.event == "ops.maintenance.cancelled" and r.details["window_id"] == window_id
               and r.details["reason"] == "the vendor moved the upgrade"
               for r in gw.audit_records())

    # twice: refused with the reason; an unknown window: not found
    code, reason, message = rpc_error(lambda: admin(
        gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(
            window_id=window_id, reason="again")))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_NOT_CANCELLABLE")
    assert "cancelled already" in message
    code, reason, _ = rpc_error(lambda: admin(
        gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(
            window_id="no-such-window", reason="x")))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UNKNOWN_WINDOW")
    # an id longer than any window's (the column holds 64): not found, not a storage error
    code, reason, _ = rpc_error(lambda: admin(
        gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(
            window_id="w" * 300, reason="x")))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UNKNOWN_WINDOW")


def test_cancelling_an_open_window_reopens_the_gateway(gw: Harness) -> None:
    window_id = _publish(gw, now_utc() - _dt.timedelta(minutes=5))
    status = gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
    assert not status.serving and status.current.id == window_id
    code, _, _ = rpc_error(lambda: gw.send_query("alice"))
    assert code == grpc.StatusCode.UNAVAILABLE
    admin(gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(
        window_id=window_id, reason="finished early"))
    assert gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest()).serving
    gw.send_query("alice")


def test_a_cancellation_needs_a_reason_and_the_operator(gw: Harness) -> None:
    window_id = _publish(gw, now_utc() + _dt.timedelta(days=3))
    code, _, _ = rpc_error(lambda: admin(
        gw, "olga", cancel_maintenance=admin_pb2.CancelMaintenance(window_id=window_id)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _, message = rpc_error(lambda: admin(
        gw, "sam", cancel_maintenance=admin_pb2.CancelMaintenance(
            window_id=window_id, reason="not mine to cancel")))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "may not" in message
