"""Retry semantics and the re-check before the answer (issue 14, findings 6 and 10).

Over a real gateway (TLS, SoftHSM, SQLite and PostgreSQL): the dispatcher the harness
uses is wrapped by a stand-in that fails the upstream or holds the query in flight.

* A query refused ``UNAVAILABLE`` because the upstream is down gives its request id back
  (the record says ``request_released``, the replay guard's rebuild does not claim it,
  the status says so) and the same envelope, sent again, is answered.
* Resending an answered request id is ``ALREADY_EXISTS`` with the original receipt.
* A logout, block or revocation committed while the query is in flight stops its answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.ops_wiring import _claim_of
from server.resources.errors import UpstreamUnavailable
from siogw_api.v1 import auth_pb2, common_pb2
from tests.server.conftest import Harness, bearer


class StandIn:
    """Wraps the harness's dispatcher: fails while ``down``, or waits for ``go``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.down_for = 0  # fail this many calls, then answer
        self.calls = 0
        self.fail: Exception | None = None
        self.hold = False
        self.entered = threading.Event()
        self.go = threading.Event()

    async def dispatch(self, query: Any, **options: Any) -> Any:
        self.calls += 1
        if self.down_for > 0:
            self.down_for -= 1
            raise UpstreamUnavailable("upstream 'demo' is unavailable")
        if self.fail is not None:
            raise self.fail
        if self.down:
            raise UpstreamUnavailable("upstream 'demo' is unavailable")
        if self.hold:
            self.entered.set()
            await asyncio.to_thread(self.go.wait, 30)
        return await self.inner.dispatch(query, **options)


@pytest.fixture
def stand_in(gateway: Harness) -> Iterator[StandIn]:
    original = gateway.gateway.dispatcher
    s = StandIn(original)
    gateway.gateway.dispatcher = s
    try:
        yield s
    finally:
        s.go.set()
        gateway.gateway.dispatcher = original


def _status_parts(err: Any) -> tuple[dict[str, str], list[common_pb2.AuditReceipt]]:
    status = rpc_status.from_call(err)
    assert status is not None
    meta: dict[str, str] = {}
    receipts = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            meta = dict(info.metadata)
        elif detail.Is(common_pb2.AuditReceipt.DESCRIPTOR):
            r = common_pb2.AuditReceipt()
            detail.Unpack(r)
            receipts.append(r)
    return meta, receipts


def _refusal_of(gateway: Harness, request_id: str) -> Any:
    found = [r for r in gateway.audit_records()
             if r.event == "refusal" and r.details.get("request_id") == request_id]
    assert len(found) == 1, found
    return found[0]


def test_upstream_down_releases_the_request_id(gateway: Harness, stand_in: StandIn) -> None:
    user = gateway.users["alice"]
    token = gateway.session("alice")
    req, q = gateway.query_request(user)
    stand_in.down = True
    with pytest.raises(grpc.RpcError) as ei:
        gateway.query.Query(req, metadata=bearer(token))
    err: Any = ei.value
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    meta, _ = _status_parts(err)
    assert meta.get("request_released") == "true"
    rec = _refusal_of(gateway, q.request_id)
    assert rec.details["request_claimed"] is True
    assert rec.details["request_released"] is True
    # The rebuild of the replay guard from the log does not claim a released id.
    assert _claim_of(rec) is None

    stand_in.down = False  # the upstream is back: the same envelope is answered
    resp = gateway.query.Query(req, metadata=bearer(token))
    assert resp.receipt.leaf_hash


def test_resending_an_answered_id_returns_the_original_receipt(
    gateway: Harness, stand_in: StandIn
) -> None:
    user = gateway.users["alice"]
    token = gateway.session("alice")
    req, _q = gateway.query_request(user)
    first = gateway.query.Query(req, metadata=bearer(token))
    with pytest.raises(grpc.RpcError) as ei:
        gateway.query.Query(req, metadata=bearer(token))
    err: Any = ei.value
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    meta, receipts = _status_parts(err)
    assert meta["seq"] == str(first.receipt.seq)
    assert meta["leaf_hash"] == first.receipt.leaf_hash.hex()
    assert len(receipts) == 1
    assert receipts[0].seq == first.receipt.seq
    assert receipts[0].leaf_hash == first.receipt.leaf_hash
    assert receipts[0].tree_size > receipts[0].seq


def test_a_replay_that_was_never_answered_has_no_receipt(
    gateway: Harness, stand_in: StandIn
) -> None:
    # A claim with no answer in the log (made directly in the store): the refusal has
    # no receipt to give.
    user = gateway.users["alice"]
    token = gateway.session("alice")
    req, q = gateway.query_request(user)
    gateway.gateway.store.claim_request_id(q.request_id, user_id="alice", kind="query")
    with pytest.raises(grpc.RpcError) as ei:
        gateway.query.Query(req, metadata=bearer(token))
    err: Any = ei.value
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    meta, receipts = _status_parts(err)
    assert "seq" not in meta and receipts == []


def _in_flight(gateway: Harness, stand_in: StandIn, name: str, act: Any) -> Any:
    """Send a query of ``name``, run ``act`` while it is held in the dispatcher, let it
    go; returns the query's request id and the RpcError it ended with."""
    user = gateway.users[name]
    token = gateway.session(name)
    req, q = gateway.query_request(user)
    stand_in.hold = True
    future = gateway.query.Query.future(req, metadata=bearer(token))
    assert stand_in.entered.wait(30)
    act(token)
    stand_in.go.set()
    with pytest.raises(grpc.RpcError) as ei:
        future.result(60)
    return q.request_id, ei.value


def test_a_block_in_flight_stops_the_answer(gateway: Harness, stand_in: StandIn) -> None:
    store = gateway.gateway.store
    rid, err = _in_flight(gateway, stand_in, "carl",
                          lambda _t: store.set_user_status("carl", "blocked", "test"))
    try:
        assert err.code() in (grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.UNAUTHENTICATED)
        rec = _refusal_of(gateway, rid)
        assert rec.details["answer_released"] is False
        assert not [r for r in gateway.audit_records()
                    if r.event == "query" and r.details.get("request_id") == rid]
    finally:
        store.set_user_status("carl", "active")
        gateway.sessions.pop("carl", None)


def test_a_logout_in_flight_stops_the_answer(gateway: Harness, stand_in: StandIn) -> None:
    def logout(token: str) -> None:
        gateway.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))

    rid, err = _in_flight(gateway, stand_in, "dina", logout)
    gateway.sessions.pop("dina", None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    rec = _refusal_of(gateway, rid)
    assert rec.details["answer_released"] is False


def test_a_revocation_in_flight_stops_the_answer(gateway: Harness, stand_in: StandIn) -> None:
    store = gateway.gateway.store
    serial = format(gateway.users["bob"].cert.serial_number, "x")

    rid, err = _in_flight(gateway, stand_in, "bob", lambda _t: store.revoke(serial, "test"))
    gateway.sessions.pop("bob", None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    rec = _refusal_of(gateway, rid)
    assert rec.details["answer_released"] is False


def test_a_deadline_passed_before_dispatch_releases_the_request_id(
    gateway: Harness, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14, finding 6: a query whose deadline passes while it is being admitted (here
    the real claim, then a pause longer than the client's deadline) is not dispatched;
    its request id is given back and the refusal record says so; the same envelope,
    sent again, is answered."""
    store = gateway.gateway.store
    claim = store.claim_request_id
    claimed = threading.Event()

    def slow_claim(*args: Any, **kwargs: Any) -> Any:
        done = claim(*args, **kwargs)
        claimed.set()
        time.sleep(1.5)  # the client's deadline (0.5 s) passes meanwhile
        return done

    user = gateway.users["alice"]
    token = gateway.session("alice")
    req, q = gateway.query_request(user)
    monkeypatch.setattr(store, "claim_request_id", slow_claim)
    with pytest.raises(grpc.RpcError) as ei:
        gateway.query.Query(req, metadata=bearer(token), timeout=0.5)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert claimed.wait(30)
    monkeypatch.setattr(store, "claim_request_id", claim)
    # the gateway finishes the call after the client stopped waiting: wait for its record
    found: list[Any] = []
    for _ in range(200):
        found = [r for r in gateway.audit_records()
                 if r.event == "refusal" and r.details.get("request_id") == q.request_id]
        if found:
            break
        time.sleep(0.05)
    (rec,) = found
    assert (rec.details["code"], rec.details["reason"]) == ("DEADLINE_EXCEEDED",
                                                            "DEADLINE_EXCEEDED")
    assert rec.details["request_claimed"] is True
    assert rec.details["request_released"] is True
    assert _claim_of(rec) is None
    assert stand_in.calls == 0  # never dispatched
    resp = gateway.query.Query(req, metadata=bearer(token))  # the same envelope, answered
    assert resp.receipt.leaf_hash and stand_in.calls == 1


# --- the client library retries only what is safe -------------------------------------------
def _client(gateway: Harness, name: str) -> Any:
    from clients import GatewayClient

    signer = gateway.gateway.signer
    assert signer is not None
    return GatewayClient(
        f"localhost:{gateway.port}", ca_file=gateway.home / "root.pem",
        gateway_certificate=signer.certificate, session_token=gateway.session(name),
        user_id=name,
    )


def test_the_client_resends_a_released_query(gateway: Harness, stand_in: StandIn) -> None:
    from server.resources.dataset import DEMO_PERSON_IIN

    stand_in.down_for = 1
    with _client(gateway, "alice") as client:
        prepared = client.prepare_query(1, {"iin": DEMO_PERSON_IIN}, "financial_monitoring",
                                        "TASK-2026-001", "retry check",
                                        signer=gateway.users["alice"].signer)
        out = client.send_query(prepared)
    assert out.request_id == prepared.query.request_id
    assert stand_in.calls == 2  # refused once (released), resent once, answered


def test_the_client_does_not_resend_an_answered_query(
    gateway: Harness, stand_in: StandIn
) -> None:
    from clients.errors import ClientError
    from server.resources.dataset import DEMO_PERSON_IIN

    with _client(gateway, "alice") as client:
        prepared = client.prepare_query(1, {"iin": DEMO_PERSON_IIN}, "financial_monitoring",
                                        "TASK-2026-001", "retry check",
                                        signer=gateway.users["alice"].signer)
        first = client.send_query(prepared)
        with pytest.raises(ClientError) as ei:
            client.send_query(prepared)
    assert stand_in.calls == 1
    err = ei.value
    assert err.code == grpc.StatusCode.ALREADY_EXISTS and err.reason == "REPLAY"
    assert first.receipt is not None and err.receipt == first.receipt.__class__(
        seq=first.receipt.seq, leaf_hash=first.receipt.leaf_hash, tree_size=first.receipt.seq + 1)


def test_the_client_gives_up_after_its_retries(gateway: Harness, stand_in: StandIn) -> None:
    from clients import _core as core
    from clients.errors import ClientError

    stand_in.down = True
    with _client(gateway, "alice") as client, pytest.raises(ClientError) as ei:
        client.send_query(_prepared(gateway, client))
    assert stand_in.calls == core.QUERY_RETRIES + 1
    assert ei.value.code == grpc.StatusCode.UNAVAILABLE
    assert ei.value.metadata.get("request_released") == "true"


def test_the_client_does_not_resend_other_unavailable(
    gateway: Harness, stand_in: StandIn
) -> None:
    from clients.errors import ClientError
    from server.store.errors import StoreUnavailable

    # UNAVAILABLE without a released id (here the database fails during dispatch): the
    # id stays claimed, a resend would be a replay, so the client raises at once.
    stand_in.fail = StoreUnavailable("control-plane database error")
    with _client(gateway, "alice") as client, pytest.raises(ClientError) as ei:
        client.send_query(_prepared(gateway, client))
    assert stand_in.calls == 1
    assert ei.value.code == grpc.StatusCode.UNAVAILABLE
    assert "request_released" not in ei.value.metadata


def _prepared(gateway: Harness, client: Any) -> Any:
    from server.resources.dataset import DEMO_PERSON_IIN

    return client.prepare_query(1, {"iin": DEMO_PERSON_IIN}, "financial_monitoring",
                                "TASK-2026-001", "retry check",
                                signer=gateway.users["alice"].signer)
