"""Issue 15, point 5 (part "rules") over the real gateway (TLS-less in-process gRPC,
SoftHSM tokens): the §14 maintenance notice period on the operator's PublishMaintenance,
and the §23 prosecutor's outbox through ReadOutbox."""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

import grpc
import pytest

from server.ops import Actor, Role
from server.resources.identifiers import make_iin
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, common_pb2, query_pb2
from tests.server.conftest import Harness, rpc_error
from tests.server.ops_grpc_helpers import admin, data, ensure_roles


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


def _window(start: _dt.datetime, *, urgent: bool = False) -> admin_pb2.PublishMaintenance:
    return admin_pb2.PublishMaintenance(window=common_pb2.MaintenanceWindow(
        id=f"mw-{secrets.token_hex(3)}", starts_at=astana_iso(start),
        ends_at=astana_iso(start + _dt.timedelta(hours=1)), description="index rebuild",
        urgent=urgent))


def test_maintenance_inside_the_notice_period_is_refused_unless_urgent(gw: Harness) -> None:
    soon = now_utc() + _dt.timedelta(hours=3)
    code, reason, message = rpc_error(lambda: admin(gw, "olga",
                                                     publish_maintenance=_window(soon)))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MAINTENANCE_NOTICE")
    assert "at least 24 hours before it starts" in message and "urgent" in message
    later = now_utc() + _dt.timedelta(days=2)
    assert data(admin(gw, "olga", publish_maintenance=_window(later)))["urgent"] is False
    urgent = _window(now_utc() + _dt.timedelta(days=20), urgent=True)
    assert data(admin(gw, "olga", publish_maintenance=urgent))["urgent"] is True
    status = gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
    [shown] = [w for w in status.windows if w.id == urgent.window.id]
    assert shown.urgent  # clients see it was announced late


def test_prosecutor_reads_the_violations_the_operator_found(gw: Harness) -> None:
    ops = gw.gateway.ops
    assert ops is not None
    olga = Actor("olga", Role.OPERATOR)
    user_id = f"viol-{secrets.token_hex(3)}"
    iin = make_iin(_dt.date(1985, 5, 17), "M", 4242)
    ops.lifecycle.import_user(olga, user_id=user_id, iin=iin, full_name="V",
                              role="agency_user", basis="financial_monitoring")
    ops.lifecycle.block(olga, user_id, "violation", "queries outside the basis")
    notices = data(admin(gw, "petr", read_outbox=admin_pb2.ReadOutbox()))["notices"]
    [mine] = [n for n in notices if n["user_id"] == user_id]
    assert mine["kind"] == "violation_block"
    agency = data(admin(gw, "cora", read_outbox=admin_pb2.ReadOutbox()))["notices"]
    assert user_id in [n["user_id"] for n in agency]
    admin(gw, "petr", mark_notice_read=admin_pb2.MarkNoticeRead(notification_id=mine["id"]))
    still = data(admin(gw, "cora", read_outbox=admin_pb2.ReadOutbox()))["notices"]
    assert user_id in [n["user_id"] for n in still]  # the agency's copy is its own
