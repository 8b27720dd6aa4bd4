"""Bad input of any shape gets a precise status, is recorded, and never hurts the server.

Over the real TLS gateway (SQLite and PostgreSQL): undecodable request bytes on every
unary method, and property-based (hypothesis) malformed query envelopes: random payload
types, payloads, signatures, key ids and certificates, mixed with valid parts.
"""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import error_info
from signing import dsse
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import common_pb2, query_pb2
from tests.server.conftest import Harness, bearer, sign

#: Statuses bad input may get; never INTERNAL or UNKNOWN (those mean we failed).
INPUT_STATUSES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}


@pytest.fixture(scope="module")
def gw(gateway: Harness) -> Harness:
    return gateway


def refusals(gw: Harness) -> int:
    """Refusal records in the log (a refusal is durable before its status is sent)."""
    return sum(1 for r in gw.audit_records() if r.event == "refusal")


def status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    info = error_info(status) if status is not None else None
    return err.code(), info.reason if info is not None else "", err.details() or ""


UNARY_METHODS = [
    "/siogw.v1.QueryService/Query",
    "/siogw.v1.QueryService/ListResources",
    "/siogw.v1.AuthService/BeginLogin",
    "/siogw.v1.AuthService/ProveLogin",
    "/siogw.v1.AuthService/CompleteLogin",
    "/siogw.v1.AuthService/SignConsent",
    "/siogw.v1.AdminService/Execute",
    "/siogw.v1.AuditService/GetCheckpoint",
]


@pytest.mark.parametrize("method", UNARY_METHODS)
def test_undecodable_request_bytes(gw: Harness, method: str) -> None:
    """Bytes that are no protobuf message: INVALID_ARGUMENT naming it, and a record."""
    raw = gw.channel.unary_unary(method)  # no serializers: bytes in, bytes out
    before = refusals(gw)
    with pytest.raises(grpc.RpcError) as ei:
        raw(b"\xff\xff\xff\xff\x0f", metadata=bearer(gw.session("alice")), timeout=10)
    code, reason, message = status_of(ei.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, message)
    assert reason == "MALFORMED_REQUEST" and "not a valid" in message
    assert refusals(gw) == before + 1
    # The server goes on answering.
    assert gw.query.ListResources(query_pb2.ListResourcesRequest()).resources


# --- property-based: malformed query envelopes -------------------------------------------
def _query_bytes(draw: Any) -> bytes:
    """A ``siogw.v1.Query`` whose fields are mostly valid, each sometimes wrong."""
    from server.resources.dataset import DEMO_PERSON_IIN

    def mostly(good: Any, bad: st.SearchStrategy[Any]) -> Any:
        return draw(st.one_of(st.just(good), st.just(good), st.just(good), bad))

    fields: dict[str, Any] = {
        "request_id": mostly(secrets.token_hex(8), st.sampled_from(["", " "])),
        "resource": mostly(1, st.integers(min_value=0, max_value=70)),
        "parameters": mostly({"iin": DEMO_PERSON_IIN}, st.dictionaries(
            st.sampled_from(["iin", "bin", "plate", "phone", "x"]),
            st.text(max_size=14), max_size=2)),
        "basis": mostly("financial_monitoring", st.sampled_from(["", "curiosity"])),
        "task_ref": mostly("TASK-1", st.sampled_from(["", " "])),
        "justification": mostly("check", st.just("")),
        "created_at": mostly(astana_iso(), st.one_of(
            st.just("2020-01-01T00:00:00+05:00"), st.text(max_size=30))),
    }
    return query_pb2.Query(**fields).SerializeToString()


@st.composite
def envelopes(draw: Any, signer: Any, cert_der: bytes) -> common_pb2.Envelope:
    """A query envelope, correctly signed or not, with random parts mixed in."""
    if draw(st.booleans()):  # signed by the user's token over a (mostly valid) query
        payload_type = draw(st.sampled_from([dsse.PAYLOAD_QUERY] * 3 + [dsse.PAYLOAD_CONSENT]))
        payload = draw(st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=120)))
        if payload is None:
            payload = _query_bytes(draw)
        env = sign(payload_type, payload, signer)
        sigs = list(env.signatures)
        if draw(st.integers(min_value=0, max_value=3)) == 0:  # break the signature
            sigs = [common_pb2.Signature(keyid=sigs[0].keyid, sig=draw(st.binary(max_size=80)),
                                         cert_der=sigs[0].cert_der)]
        return common_pb2.Envelope(payload_type=payload_type, payload=payload, signatures=sigs)
    # Unsigned or signed by nobody we know: random everything.
    raw = draw(st.one_of(st.none(), st.binary(max_size=200)))
    return common_pb2.Envelope(
        payload_type=draw(st.sampled_from([dsse.PAYLOAD_QUERY, "", "x/y"])),
        payload=_query_bytes(draw) if raw is None else raw,
        signatures=[
            common_pb2.Signature(
                keyid=draw(st.one_of(st.just(""), st.text(max_size=64))),
                sig=draw(st.binary(max_size=80)),
                cert_der=draw(st.one_of(st.just(b""), st.just(cert_der),
                                        st.binary(max_size=64))),
            )
            for _ in range(draw(st.integers(min_value=0, max_value=2)))
        ],
    )


def test_malformed_query_envelopes_property(gw: Harness) -> None:
    alice = gw.users["alice"]
    token = gw.session("alice")
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(envelopes(alice.signer, alice.cert_der))
    def check(env: common_pb2.Envelope) -> None:
        before = refusals(gw)
        try:
            gw.query.Query(query_pb2.QueryRequest(envelope=env), metadata=bearer(token),
                           timeout=10)
        except grpc.RpcError as err:
            code, reason, message = status_of(err)
            assert code in INPUT_STATUSES, (code, reason, message)
            assert reason and message
            assert refusals(gw) == before + 1
            seen.add(reason)
        # else: the random parts happened to form a valid, signed, fresh query: fine.

    check()
    # The examples reach well past the first check (not one early refusal every time).
    assert len(seen) >= 6, seen
    # Alive and well afterwards: a proper query still gets a signed answer.
    assert gw.send_query("alice").result.payload


# --- property-based: malformed login steps ------------------------------------------------
@st.composite
def login_steps(draw: Any, user: Any) -> tuple[str, Any]:
    """One of the three login calls with random or half-valid fields."""
    from siogw_api.v1 import auth_pb2

    step = draw(st.sampled_from(["begin", "prove", "complete"]))
    if step == "begin":
        return step, auth_pb2.BeginLoginRequest(
            user_id=draw(st.one_of(st.just(user.user_id), st.text(max_size=40))),
            certificate_der=draw(st.one_of(st.just(user.cert_der), st.binary(max_size=300))),
        )
    login_id = draw(st.one_of(st.just(""), st.text(max_size=40),
                              st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)))
    if step == "prove":
        env = common_pb2.Envelope(
            payload_type=draw(st.sampled_from([dsse.PAYLOAD_LOGIN_CHALLENGE, "", "x"])),
            payload=draw(st.binary(max_size=64)),
            signatures=[common_pb2.Signature(keyid=draw(st.text(max_size=64)),
                                             sig=draw(st.binary(max_size=72)))],
        )
        return step, auth_pb2.ProveLoginRequest(
            login_id=login_id, signed_challenge=env,
            factor=draw(st.integers(min_value=0, max_value=3)))
    if draw(st.booleans()):
        return step, auth_pb2.CompleteLoginRequest(
            login_id=login_id, sms_code=draw(st.text(max_size=10)))
    return step, auth_pb2.CompleteLoginRequest(
        login_id=login_id, biometric=auth_pb2.BiometricAssertion(
            device_key_id=draw(st.text(max_size=64)), signature=draw(st.binary(max_size=72)),
            method=draw(st.sampled_from(["fingerprint", "face", "", "x"]))))


def test_malformed_login_steps_property(gw: Harness) -> None:
    bob = gw.users["bob"]
    calls = {"begin": gw.auth.BeginLogin, "prove": gw.auth.ProveLogin,
             "complete": gw.auth.CompleteLogin}
    seen: set[str] = set()

    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(login_steps(bob))
    def check(case: tuple[str, Any]) -> None:
        step, request = case
        before = refusals(gw)
        try:
            calls[step](request, timeout=10)
        except grpc.RpcError as err:
            code, reason, message = status_of(err)
            assert code in INPUT_STATUSES, (step, code, reason, message)
            assert reason and message
            assert refusals(gw) == before + 1
            seen.add(reason)
        else:
            assert step == "begin"  # only a well-formed BeginLogin can succeed

    check()
    assert len(seen) >= 3, seen
    # Bob can still log in properly afterwards (nothing was locked by the noise).
    assert gw.login(bob).session_token
