"""Every unary siogw.v1 method, random requests from every role: never an internal error.

Its own module and gateway per backend. For each method of the four services the
request message is generated from the method's descriptor (tests/server/protofuzz.py)
and sent with the session of a random role (or none). An answer is fine; a refusal must
carry a precise status (never INTERNAL, UNKNOWN, or UNAVAILABLE for what is bad input)
and add exactly one refusal record.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siogw_api.v1 import admin_pb2, audit_pb2, auth_pb2, query_pb2, reporting_pb2, screening_pb2
from tests.server.conftest import Harness, bearer
from tests.server.ops_grpc_helpers import ROLE_USERS, ensure_roles
from tests.server.protofuzz import messages
from tests.server.test_bad_input_fuzz import refusals, status_of

ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
}

METHODS = [
    (service.full_name, method)
    for module in (auth_pb2, query_pb2, audit_pb2, admin_pb2, reporting_pb2, screening_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
    if not method.client_streaming and not method.server_streaming
]


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s.split('.')[-1]}.{m.name}"
                                                             for s, m in METHODS])
def test_random_requests(gw: Harness, service: str, method: Any) -> None:
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = gw.channel.unary_unary(
        f"/{service}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    hints = {"user_id": [u for u in ROLE_USERS.values()], "version": ["2026-2"]}
    roles = [None, *ROLE_USERS.values()]

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(messages(method.input_type, request_cls, hints=hints), st.sampled_from(roles))
    def check(request: Any, who: str | None) -> None:
        metadata = bearer(gw.session(who, consent=who == "alice")) if who else None
        before = refusals(gw)
        try:
            call(request, metadata=metadata, timeout=20)
            past_the_session.append(who)
        except grpc.RpcError as err:
            code, reason, message = status_of(err)
            assert code in ALLOWED, (method.name, who, code, reason, message)
            assert reason and message
            assert refusals(gw) == before + 1
            if who and code != grpc.StatusCode.UNAUTHENTICATED:
                past_the_session.append(who)
        finally:
            if method.name == "Logout" and who:
                gw.sessions.pop(who, None)  # that session has ended: the next one logs in

    past_the_session: list[str | None] = []
    check()
    # Live sessions got past authentication (the examples are not all stopped at the door).
    assert past_the_session, method.name
