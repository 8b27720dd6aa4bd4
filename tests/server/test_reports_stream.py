"""Issue 15: ``AuditService.StreamQueriesCsv`` and the Reports options over real gRPC.

The server-streaming method goes through the gateway interceptor like every unary one:
its request is bounded first, a refusal carries a precise status and ErrorInfo and
adds one refusal record (random requests, a property test); a controller gets the
whole export as chunks ending with ``last``; ``prove`` and the trail's ``filter`` are
checked as input. On SQLite and PostgreSQL (the ``gateway`` harness).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siogw_api.v1 import audit_pb2
from tests.server.conftest import Harness, bearer
from tests.server.ops_grpc_helpers import ROLE_USERS, ensure_roles
from tests.server.protofuzz import messages
from tests.server.test_bad_input_every_method import ALLOWED
from tests.server.test_bad_input_fuzz import refusals, status_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


def _stream(gw: Harness, who: str, request: audit_pb2.ListQueriesRequest) -> list[Any]:
    return list(gw.audit.StreamQueriesCsv(request, metadata=bearer(gw.session(who,
                                                                             consent=False))))


def test_a_controller_streams_the_whole_export(gw: Harness) -> None:
    chunks = _stream(gw, "cora", audit_pb2.ListQueriesRequest(limit=1))
    assert chunks and chunks[-1].last and not any(c.last for c in chunks[:-1])
    text = b"".join(c.data for c in chunks).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:3] == ["seq", "time", "user"] and "justification" in rows[0]
    assert chunks[-1].total_rows == len(rows) - 1 == sum(c.rows for c in chunks)
    assert all(c.rows <= 1 for c in chunks)


def test_bad_stream_input_is_refused_precisely(gw: Harness) -> None:
    for request in (audit_pb2.ListQueriesRequest(filter=audit_pb2.QueryFilter(since="soon")),
                    audit_pb2.ListQueriesRequest(limit=100_000),
                    audit_pb2.ListQueriesRequest(filter=audit_pb2.QueryFilter(task="x" * 300))):
        before = refusals(gw)
        with pytest.raises(grpc.RpcError) as err:
            _stream(gw, "cora", request)
        code, reason, message = status_of(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and reason and message
        assert refusals(gw) == before + 1
    before = refusals(gw)
    with pytest.raises(grpc.RpcError) as err:
        _stream(gw, "alice", audit_pb2.ListQueriesRequest())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refusals(gw) == before + 1


def test_proofs_and_trail_filter_are_checked(gw: Harness) -> None:
    token = bearer(gw.session("cora", consent=False))
    page = gw.audit.ListQueries(audit_pb2.ListQueriesRequest(prove=True), metadata=token)
    assert all(r.proof.tree_size == page.tree_size for r in page.records if r.HasField("proof"))
    with pytest.raises(grpc.RpcError) as err:
        gw.audit.ListQueries(audit_pb2.ListQueriesRequest(prove=True, tree_size=2**40),
                             metadata=token)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        gw.audit.ReadAuditTrail(audit_pb2.ReadAuditTrailRequest(
            resolution_id="x", filter=audit_pb2.QueryFilter(user_ids=["alice"])),
            metadata=bearer(gw.session("petr", consent=False)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_random_stream_requests(gw: Harness) -> None:
    """Random ListQueriesRequests from every role (and none): an answer, or a precise
    refusal with one refusal record; never an internal error."""
    descriptor = audit_pb2.ListQueriesRequest.DESCRIPTOR
    hints = {"user_ids": list(ROLE_USERS.values())}
    roles = [None, *ROLE_USERS.values()]

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(messages(descriptor, audit_pb2.ListQueriesRequest, hints=hints),
           st.sampled_from(roles))
    def check(request: Any, who: str | None) -> None:
        metadata = bearer(gw.session(who, consent=False)) if who else None
        before = refusals(gw)
        try:
            chunks = list(gw.audit.StreamQueriesCsv(request, metadata=metadata, timeout=30))
            assert chunks[-1].last
        except grpc.RpcError as err:
            code, reason, message = status_of(err)
            assert code in ALLOWED, (who, code, reason, message)
            assert reason and message
            assert refusals(gw) == before + 1

    check()
