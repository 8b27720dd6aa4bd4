"""Issue 12 points 2 and 5 over a real gateway (TLS, SoftHSM): the oversized-keyid
exploit is refused before anything happens and the refusal is recorded; the largest
request yields a record under the log's limit; claimed ids are not actors."""

from __future__ import annotations

import secrets
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from server.config import MAX_RECORDABLE_MESSAGE_BYTES
from siogw_api.v1 import admin_pb2, common_pb2, query_pb2
from tests.server.conftest import Harness, bearer, rpc_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EVIL_KEYID = "\x01" * 200_000


def _with_evil_signature(env: common_pb2.Envelope) -> common_pb2.Envelope:
    evil = common_pb2.Envelope()
    evil.CopyFrom(env)
    evil.signatures.append(common_pb2.Signature(keyid=EVIL_KEYID, sig=b"\x01" * 64))
    return evil


def _refusals_since(gw: Harness, seq: int) -> list[Any]:
    return [r for r in gw.audit_records() if r.seq > seq and r.event == "refusal"]


def _last_seq(gw: Harness) -> int:
    return max((r.seq for r in gw.audit_records()), default=-1)


def test_oversized_keyid_on_enroll_user_changes_nothing_and_is_recorded(
    gateway: Harness,
) -> None:
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key

    key = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = gateway.ca.issue(build_csr(key, "CN=ghost"), "user", 30)
    user_id = f"ghost-op-{secrets.token_hex(2)}"
    enroll = admin_pb2.EnrollUser(
        user_id=user_id, full_name="Ghost", role="operator", phone="+77010000099",
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
    )
    req = gateway.admin_request(gateway.users["olga"], enroll_user=enroll)
    bad = admin_pb2.AdminRequest(envelope=_with_evil_signature(req.envelope))
    before = _last_seq(gateway)
    token = gateway.session("olga", consent=False)
    code, reason, message = rpc_error(
        lambda: gateway.admin.Execute(bad, metadata=bearer(token)))
    assert (code, reason) == (INVALID, "FIELD_TOO_LARGE")
    assert "\x01" not in message
    assert gateway.gateway.store.get_user(user_id) is None  # no state change
    [rec] = _refusals_since(gateway, before)
    assert rec.details["reason"] == "FIELD_TOO_LARGE"  # refused before anything else
    assert common_pb2.Envelope.FromString(rec.payload) == bad.envelope  # kept whole
    # the same command without the extra signature still works: its request id is free
    resp = gateway.admin.Execute(req, metadata=bearer(token))
    assert "enrolled" in resp.message


def test_oversized_keyid_on_a_valid_query_is_refused_before_dispatch(
    gateway: Harness,
) -> None:
    alice = gateway.users["alice"]
    token = gateway.session("alice")
    req, _q = gateway.query_request(alice)
    bad = query_pb2.QueryRequest(envelope=_with_evil_signature(req.envelope))
    before = _last_seq(gateway)
    code, reason, _ = rpc_error(lambda: gateway.query.Query(bad, metadata=bearer(token)))
    assert (code, reason) == (INVALID, "FIELD_TOO_LARGE")
    [rec] = _refusals_since(gateway, before)
    assert "request_claimed" not in rec.details
    assert not any(r.event == "query" for r in gateway.audit_records() if r.seq > before)
    # not claimed: the same request id is served once the extra signature is gone
    resp = gateway.query.Query(req, metadata=bearer(token))
    assert resp.receipt.seq > rec.seq


def test_an_extra_failing_signature_of_normal_size_is_refused(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    token = gateway.session("alice")
    req, _ = gateway.query_request(alice)
    req.envelope.signatures.append(common_pb2.Signature(keyid="ab" * 32, sig=b"\x02" * 64))
    code, _, _ = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_the_largest_accepted_query_yields_a_record_well_under_the_limit(
    gateway: Harness,
) -> None:
    """A valid query padded (an unknown field inside the signed payload) to just under
    ``limits.max_message_bytes``: answered, and its record is far under 1 MiB."""
    alice = gateway.users["alice"]
    token = gateway.session("alice")
    limit = gateway.gateway.config.limits.max_message_bytes
    req, _ = gateway.query_request(alice)
    room = limit - req.ByteSize() - 64
    from signing import dsse
    from tests.server.conftest import sign

    q = query_pb2.Query.FromString(req.envelope.payload)
    padded = q.SerializeToString(deterministic=True) + _unknown_field(room)
    big = query_pb2.QueryRequest(envelope=sign(dsse.PAYLOAD_QUERY, padded, alice.signer))
    assert limit - 1024 < big.ByteSize() <= limit
    resp = gateway.query.Query(big, metadata=bearer(token))
    rec = next(r for r in gateway.audit_records() if r.seq == resp.receipt.seq)
    assert rec.payload == big.envelope.SerializeToString(deterministic=True)
    from audit.record import AuditRecord, encode_record

    size = len(encode_record(AuditRecord(
        actor=rec.actor, event=rec.event, outcome=rec.outcome,
        cert_fingerprint=rec.cert_fingerprint, details=rec.details, payload=rec.payload,
    ), rec.seq, rec.time))
    assert size < (1 << 20) * 3 // 4  # the log's max_record_bytes, with a margin
    assert limit <= MAX_RECORDABLE_MESSAGE_BYTES


def _unknown_field(n: int) -> bytes:
    """A length-delimited field 999 of about ``n`` bytes (kept, ignored by the parser)."""
    body = b"p" * max(0, n - 8)
    tag = (999 << 3) | 2
    return _varint(tag) + _varint(len(body)) + body


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def test_claimed_user_is_not_the_actor(gateway: Harness) -> None:
    from siogw_api.v1 import auth_pb2

    before = _last_seq(gateway)
    req = auth_pb2.ProveLoginRequest(login_id="no-such-login")
    rpc_error(lambda: gateway.auth.ProveLogin(req))
    begin = auth_pb2.BeginLoginRequest(user_id="alice", certificate_der=b"junk")
    rpc_error(lambda: gateway.auth.BeginLogin(begin))
    recs = _refusals_since(gateway, before)
    assert recs and all(r.actor == "anonymous" for r in recs)
