"""Random signed admin commands: a precise status or a result, never an internal error.

Its own module (and so its own gateway per backend): the commands that succeed change
users, windows and certificates of that gateway. The operator signs every command on
her token; each AdminCommand field gets random values mixed with plausible ones
(tests/server/protofuzz.py), so examples reach deep into the operations domain.
"""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signing import dsse
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import admin_pb2, query_pb2
from tests.server.conftest import Harness, bearer, sign
from tests.server.protofuzz import messages
from tests.server.test_bad_input_fuzz import INPUT_STATUSES, refusals, status_of


@pytest.fixture(scope="module")
def gw(gateway: Harness) -> Harness:
    return gateway


def test_random_admin_commands_property(gw: Harness) -> None:
    olga = gw.users["olga"]
    token = gw.session("olga")
    others = [u.user_id for name, u in gw.users.items() if name not in ("olga", "sam")]
    hints: dict[str, list[Any]] = {
        "user_id": others,
        "role": ["agency_user", "operator", "controller", "security_officer", "prosecutor"],
        "certificate_der": [gw.users["carl"].cert_der],
        "reason": ["test"],
        "phone": ["+77010000099"],
        "onset_at": [astana_iso()],
        "starts_at": [astana_iso()],
        "ends_at": ["2030-01-01T00:00:00+05:00"],
        "serial_hex": ["1", "ff"],
    }
    commands = messages(admin_pb2.AdminCommand.DESCRIPTOR, admin_pb2.AdminCommand, hints=hints)
    seen: set[str] = set()
    outcomes = {"ok": 0, "refused": 0}

    @settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(commands, st.sampled_from([True, True, True, False]))
    def check(cmd: Any, fresh: bool) -> None:
        if fresh or not cmd.request_id:
            cmd.request_id = secrets.token_hex(8)
        if fresh:
            cmd.created_at = astana_iso()
        env = sign(dsse.PAYLOAD_ADMIN, cmd.SerializeToString(deterministic=True), olga.signer)
        before = refusals(gw)
        try:
            gw.admin.Execute(admin_pb2.AdminRequest(envelope=env), metadata=bearer(token),
                             timeout=20)
            outcomes["ok"] += 1
        except grpc.RpcError as err:
            code, reason, message = status_of(err)
            maintenance = code == grpc.StatusCode.UNAVAILABLE and reason == "MAINTENANCE"
            assert code in INPUT_STATUSES or maintenance, (
                cmd.WhichOneof("command"), code, reason, message)
            assert reason and message
            assert refusals(gw) == before + 1
            seen.add(reason)
            outcomes["refused"] += 1

    check()
    assert outcomes["ok"] > 0 and len(seen) >= 5, (outcomes, seen)
    # The gateway still answers.
    assert gw.query.ListResources(query_pb2.ListResourcesRequest()).resources
