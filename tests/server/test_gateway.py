"""The gateway over a real TLS gRPC channel with SoftHSM tokens and the test CA.

One server per backend (SQLite, PostgreSQL) for the whole module; tests that change
state (block, revoke, maintenance) act on users/resources no other test relies on, and
the maintenance test cleans up after itself.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from signing import dsse
from signing.trust import CertificateVerifier, TrustStore
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import (
    admin_pb2,
    audit_pb2,
    auth_pb2,
    common_pb2,
    query_pb2,
)
from tests.server.conftest import Harness, bearer, rpc_error, sign

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _refusals(gw: Harness) -> list[Any]:
    return [r for r in gw.audit_records() if r.event == "refusal"]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        out = set(value)
        for v in value.values():
            out |= _keys(v)
        return out
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


# --- login, consent, the happy path ---------------------------------------------------------
def test_sms_login_consent_and_a_signed_query(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    done = gateway.login(alice)
    assert done.session_token and done.consent_required
    assert done.expires_at.endswith("+05:00")
    token = done.session_token
    req, q = gateway.query_request(alice)
    code, reason, _ = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CONSENT_REQUIRED")
    signed = gateway.consent(alice, token)
    assert signed.signed_at.endswith("+05:00")
    assert signed.receipt.tree_size >= 1

    req, q = gateway.query_request(alice)
    resp = gateway.query.Query(req, metadata=bearer(token))
    # the result is signed by the gateway's token key, verifiable with the trust anchor
    trust = TrustStore([gateway.ca.root_certificate])
    env = dsse.Envelope.from_proto_fields(
        resp.result.payload_type, resp.result.payload, list(resp.result.signatures)
    )
    verified = dsse.verify_envelope(env, CertificateVerifier(trust), payload_types=[
        dsse.PAYLOAD_RESULT])
    assert verified.signers[0].keyid == gateway.gateway.signer.key_id
    result = query_pb2.QueryResult.FromString(verified.payload)
    assert result.request_id == q.request_id
    import hashlib

    assert result.request_digest == hashlib.sha256(req.envelope.payload).digest()
    assert result.access_right == "full" and not result.truncated
    assert result.produced_at.endswith("+05:00")
    # the success is in the audit log with the signed request envelope
    rec = next(r for r in gateway.audit_records() if r.seq == resp.receipt.seq)
    assert rec.event == "query" and rec.actor == "alice"
    assert rec.details["request_id"] == q.request_id
    assert common_pb2.Envelope.FromString(rec.payload).payload == req.envelope.payload
    assert "result_sha256" in rec.details and "result_summary" in rec.details
    gateway.sessions["alice"] = token


def test_biometric_login(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="alice", certificate_der=alice.cert_der)
    )
    assert set(begun.factors) == {auth_pb2.SECOND_FACTOR_SMS, auth_pb2.SECOND_FACTOR_BIOMETRIC}
    done = gateway.login(alice, factor="biometric")
    assert done.session_token
    cp = gateway.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(),
                                     metadata=bearer(done.session_token))
    assert cp.tree_size >= 1


def test_biometric_assertion_over_another_challenge_is_refused(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    login_id, _ = gateway.begin_and_prove(alice, auth_pb2.SECOND_FACTOR_BIOMETRIC)
    a = alice.device.assert_user(b"not the device challenge", alice.sample)
    req = auth_pb2.CompleteLoginRequest(
        login_id=login_id,
        biometric=auth_pb2.BiometricAssertion(
            device_key_id=a.device_key_id, signature=a.signature, method=a.method),
    )
    code, reason, _ = rpc_error(lambda: gateway.auth.CompleteLogin(req))
    assert (code, reason) == (UNAUTH, "LOGIN_FAILED")


def test_five_wrong_sms_codes_lock_the_login(gateway: Harness) -> None:
    bob = gateway.users["bob"]
    login_id, proved = gateway.begin_and_prove(bob)
    assert proved.sms_destination.endswith("0002") and "*" in proved.sms_destination
    code = gateway.sms_codes(bob.phone)[-1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    req = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=wrong)
    for _ in range(4):
        assert rpc_error(lambda: gateway.auth.CompleteLogin(req))[:2] == (UNAUTH, "LOGIN_FAILED")
    assert rpc_error(lambda: gateway.auth.CompleteLogin(req))[:2] == (DENIED, "LOGIN_LOCKED")
    right = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=code)
    assert rpc_error(lambda: gateway.auth.CompleteLogin(right))[:2] == (DENIED, "LOGIN_LOCKED")
    locked = [r for r in _refusals(gateway) if r.details.get("reason") == "LOGIN_LOCKED"]
    assert locked and locked[-1].actor == "anonymous"  # claimed, not authenticated
    assert locked[-1].details["claimed_user"] == "bob"


def test_login_with_another_users_certificate_is_refused(gateway: Harness) -> None:
    alice, bob = gateway.users["alice"], gateway.users["bob"]
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="alice", certificate_der=bob.cert_der)
    )
    env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, bob.signer)
    req = auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env)
    assert rpc_error(lambda: gateway.auth.ProveLogin(req))[:2] == (
        DENIED, "CERTIFICATE_NOT_REGISTERED")
    # the challenge signed by another key than the presented certificate's
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="alice", certificate_der=alice.cert_der)
    )
    env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, bob.signer)
    req = auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env)
    assert rpc_error(lambda: gateway.auth.ProveLogin(req))[0] == DENIED


def test_tampered_challenge_signature_is_unauthenticated(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="alice", certificate_der=alice.cert_der)
    )
    env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, alice.signer)
    env.payload = bytes(reversed(env.payload))
    req = auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env)
    assert rpc_error(lambda: gateway.auth.ProveLogin(req))[0] == UNAUTH


def test_consent_must_name_the_session_user(gateway: Harness) -> None:
    bob = gateway.users["bob"]
    token = gateway.login(bob).session_token
    text = gateway.auth.GetConsent(auth_pb2.GetConsentRequest())
    import json

    payload = json.dumps({"version": text.version, "sha256": bytes(text.sha256).hex(),
                          "user_id": "alice", "signed_at": astana_iso()}).encode()
    req = auth_pb2.SignConsentRequest(consent=sign(dsse.PAYLOAD_CONSENT, payload, bob.signer))
    code, reason, _ = rpc_error(lambda: gateway.auth.SignConsent(req, metadata=bearer(token)))
    assert (code, reason) == (INVALID, "CONSENT_MISMATCH")
    # bob never consented: his queries are refused
    qreq, _ = gateway.query_request(bob)
    code, reason, _ = rpc_error(lambda: gateway.query.Query(qreq, metadata=bearer(token)))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CONSENT_REQUIRED")


# --- every check of a signed query, with a negative case each --------------------------------
def _alice_query_error(gateway: Harness, **fields: Any) -> tuple[grpc.StatusCode, str, str]:
    alice = gateway.users["alice"]
    req, _ = gateway.query_request(alice, **fields)
    return rpc_error(lambda: gateway.query.Query(req, metadata=bearer(gateway.session("alice"))))


def test_query_without_session(gateway: Harness) -> None:
    req, _ = gateway.query_request(gateway.users["alice"])
    assert rpc_error(lambda: gateway.query.Query(req))[:2] == (UNAUTH, "UNAUTHENTICATED")
    assert rpc_error(lambda: gateway.query.Query(req, metadata=bearer("nope")))[0] == UNAUTH


def test_query_with_a_bad_signature(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    req, _ = gateway.query_request(alice)
    sig = bytearray(req.envelope.signatures[0].sig)
    sig[-3] ^= 0x01
    req.envelope.signatures[0].sig = bytes(sig)
    token = gateway.session("alice")
    code, _, msg = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert code == UNAUTH
    assert "does not verify" in msg or "malformed" in msg


def test_query_signed_with_another_users_certificate(gateway: Harness) -> None:
    alice, bob = gateway.users["alice"], gateway.users["bob"]
    req, _ = gateway.query_request(alice, signer=bob.signer)
    token = gateway.session("alice")
    code, reason, msg = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert (code, reason) == (DENIED, "CERTIFICATE_NOT_REGISTERED")
    assert "registered" in msg


def test_query_with_stale_created_at(gateway: Harness) -> None:
    old = astana_iso(now_utc() - dt.timedelta(minutes=10))
    assert _alice_query_error(gateway, created_at=old)[:2] == (INVALID, "STALE_REQUEST")
    future = astana_iso(now_utc() + dt.timedelta(minutes=10))
    assert _alice_query_error(gateway, created_at=future)[:2] == (INVALID, "STALE_REQUEST")


def test_replayed_query(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    req, q = gateway.query_request(alice)
    token = gateway.session("alice")
    gateway.query.Query(req, metadata=bearer(token))
    code, reason, _ = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REPLAY")
    # the refusal is recorded with the signed envelope and the request id
    rec = _refusals(gateway)[-1]
    assert rec.details["reason"] == "REPLAY" and rec.details["request_id"] == q.request_id
    assert rec.actor == "alice" and rec.payload


def test_query_with_a_basis_the_role_does_not_allow(gateway: Harness) -> None:
    assert _alice_query_error(gateway, basis="curiosity")[0] == DENIED


def test_query_without_task_reference_or_justification(gateway: Harness) -> None:
    assert _alice_query_error(gateway, task_ref="")[:2] == (INVALID, "MISSING_FIELD")
    assert _alice_query_error(gateway, justification=" ")[:2] == (INVALID, "MISSING_FIELD")


def test_query_to_an_unknown_resource(gateway: Harness) -> None:
    assert _alice_query_error(gateway, resource=99)[0] == grpc.StatusCode.NOT_FOUND


def test_query_with_a_bad_iin(gateway: Harness) -> None:
    from server.resources.dataset import DEMO_PERSON_IIN

    bad = DEMO_PERSON_IIN[:-1] + str((int(DEMO_PERSON_IIN[-1]) + 1) % 10)
    code, _, msg = _alice_query_error(gateway, parameters={"iin": bad})
    assert code == INVALID and "IIN" in msg
    assert _alice_query_error(gateway, parameters={"iin": "12345"})[0] == INVALID


def test_resource_11_is_truncated_by_the_gateway(gateway: Harness) -> None:
    from server.resources.dataset import DEMO_PERSON_IIN

    resp = gateway.send_query("alice", resource=11, parameters={"iin": DEMO_PERSON_IIN})
    result = query_pb2.QueryResult.FromString(resp.result.payload)
    assert result.truncated and result.access_right == "truncated"
    from google.protobuf import json_format

    data = json_format.MessageToDict(result.data)
    assert data, "the demo person has pension records"
    assert not any("amount" in k.lower() for k in _keys(data))


def test_oversized_message_is_refused_and_recorded(gateway: Harness) -> None:
    alice = gateway.users["alice"]
    # over the application's limit (256 KiB), under the transport's (that + 16 KiB of
    # framing): refused by the gateway, with its reason, and recorded
    req, _ = gateway.query_request(alice, justification="x" * (260 * 1024))
    token = gateway.session("alice")
    code, reason, _ = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "MESSAGE_TOO_LARGE")
    assert _refusals(gateway)[-1].details["reason"] == "MESSAGE_TOO_LARGE"
    # above the transport hard cap gRPC itself refuses, before any application code
    huge, _ = gateway.query_request(alice, justification="x" * (5 * 1024 * 1024))
    code, _, _ = rpc_error(lambda: gateway.query.Query(huge, metadata=bearer(token)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unexpected_error_is_internal_with_a_request_id(gateway: Harness) -> None:
    class Broken:
        async def dispatch(self, query: Any, **options: Any) -> Any:
            raise RuntimeError("secret internals")

    gw = gateway.gateway
    saved, gw.dispatcher = gw.dispatcher, Broken()
    try:
        code, reason, msg = _alice_query_error(gateway)
    finally:
        gw.dispatcher = saved
    assert (code, reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert "request id" in msg and "secret" not in msg
    gateway.send_query("alice")  # the server keeps running


def test_queries_fail_closed_when_the_audit_log_is_down(gateway: Harness, tmp_path: Any) -> None:
    from server.auditsink import JsonlAuditSink

    down = JsonlAuditSink(tmp_path / "audit.jsonl")
    down.fail("disk full")
    gw = gateway.gateway
    saved, gw.audit = gw.audit, down
    try:
        code, _, msg = _alice_query_error(gateway)
    finally:
        gw.audit = saved
    assert code == grpc.StatusCode.UNAVAILABLE and "audit" in msg


# --- sessions end at once on block and revocation ---------------------------------------------
def test_blocking_a_user_ends_the_session_on_the_next_call(gateway: Harness) -> None:
    carl, olga, bob = gateway.users["carl"], gateway.users["olga"], gateway.users["bob"]
    token = gateway.session("carl")
    gateway.send_query("carl")
    # an agency user may not block anyone
    req = gateway.admin_request(bob, block_user=admin_pb2.BlockUser(user_id="carl"))
    bob_token = gateway.login(bob).session_token
    assert rpc_error(lambda: gateway.admin.Execute(req, metadata=bearer(bob_token)))[0] == DENIED
    req = gateway.admin_request(olga, block_user=admin_pb2.BlockUser(user_id="carl",
                                                                      reason="dismissed"))
    resp = gateway.admin.Execute(req, metadata=bearer(gateway.session("olga", consent=False)))
    assert "blocked" in resp.message and resp.receipt.tree_size > 0
    qreq, _ = gateway.query_request(carl)
    assert rpc_error(lambda: gateway.query.Query(qreq, metadata=bearer(token)))[0] == UNAUTH
    # and a new login is refused
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="carl", certificate_der=carl.cert_der))
    env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, carl.signer)
    prove = auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env)
    assert rpc_error(lambda: gateway.auth.ProveLogin(prove))[:2] == (DENIED, "USER_BLOCKED")
    # the admin command cannot be replayed
    assert rpc_error(
        lambda: gateway.admin.Execute(req, metadata=bearer(gateway.session("olga")))
    )[0] == grpc.StatusCode.ALREADY_EXISTS


def test_revoking_a_certificate_ends_the_session_on_the_next_call(gateway: Harness) -> None:
    dina, sam = gateway.users["dina"], gateway.users["sam"]
    token = gateway.session("dina")
    gateway.send_query("dina")
    serial = format(dina.cert.serial_number, "x")
    req = gateway.admin_request(
        sam, revoke_certificate=admin_pb2.RevokeCertificate(serial_hex=serial, reason="lost")
    )
    gateway.admin.Execute(req, metadata=bearer(gateway.session("sam", consent=False)))
    qreq, _ = gateway.query_request(dina)
    assert rpc_error(lambda: gateway.query.Query(qreq, metadata=bearer(token)))[0] == UNAUTH
    begun = gateway.auth.BeginLogin(
        auth_pb2.BeginLoginRequest(user_id="dina", certificate_der=dina.cert_der))
    env = sign(dsse.PAYLOAD_LOGIN_CHALLENGE, begun.challenge, dina.signer)
    prove = auth_pb2.ProveLoginRequest(login_id=begun.login_id, signed_challenge=env)
    assert rpc_error(lambda: gateway.auth.ProveLogin(prove))[:2] == (UNAUTH, "REVOKED")


def test_logout_ends_the_session(gateway: Harness) -> None:
    bob = gateway.users["bob"]
    token = gateway.login(bob).session_token
    gateway.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    assert rpc_error(
        lambda: gateway.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token))
    )[0] == UNAUTH


# --- audit proofs, health, reflection ------------------------------------------------------
def test_audit_inclusion_and_consistency_proofs(gateway: Harness) -> None:
    from signing.merkle import verify_consistency, verify_inclusion

    token = gateway.session("alice")
    resp = gateway.send_query("alice")
    cp = gateway.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(), metadata=bearer(token))
    assert cp.tree_size >= resp.receipt.tree_size and cp.signed_checkpoint
    proof = gateway.audit.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(seq=resp.receipt.seq, tree_size=cp.tree_size),
        metadata=bearer(token),
    )
    assert proof.leaf_hash == resp.receipt.leaf_hash
    verify_inclusion(proof.leaf_hash, proof.leaf_index, proof.tree_size, list(proof.hashes),
                     cp.root_hash)
    gateway.send_query("alice")
    cp2 = gateway.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(), metadata=bearer(token))
    cons = gateway.audit.GetConsistencyProof(
        audit_pb2.GetConsistencyProofRequest(first=cp.tree_size, second=cp2.tree_size),
        metadata=bearer(token),
    )
    verify_consistency(cp.tree_size, cp2.tree_size, list(cons.hashes), cp.root_hash,
                       cp2.root_hash)
    assert rpc_error(lambda: gateway.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest()))[
        0] == UNAUTH


def test_health_and_reflection(gateway: Harness) -> None:
    health = health_pb2_grpc.HealthStub(gateway.channel)
    got = health.Check(health_pb2.HealthCheckRequest(service="siogw.v1.QueryService"))
    assert got.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(gateway.channel)
    answers = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")]))
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"siogw.v1.QueryService", "siogw.v1.AuthService", "grpc.health.v1.Health"} <= names
    listed = gateway.query.ListResources(query_pb2.ListResourcesRequest())
    assert len(listed.resources) == 52
    assert listed.resources[10].access_right == "truncated"


def _wait_health(gateway: Harness, want: int) -> int:
    health = health_pb2_grpc.HealthStub(gateway.channel)
    status = -1
    for _ in range(100):  # polls until the background task catches up; no timing assertion
        status = health.Check(
            health_pb2.HealthCheckRequest(service="siogw.v1.QueryService")).status
        if status == want:
            break
        time.sleep(0.05)
    return status


def test_maintenance_window(gateway: Harness) -> None:
    olga = gateway.users["olga"]
    start = now_utc() - dt.timedelta(seconds=5)
    end = now_utc() + dt.timedelta(hours=1)
    window = common_pb2.MaintenanceWindow(
        id=f"mw-{secrets.token_hex(3)}", starts_at=astana_iso(start), ends_at=astana_iso(end),
        description="database upgrade", urgent=True,
    )
    req = gateway.admin_request(
        olga, publish_maintenance=admin_pb2.PublishMaintenance(window=window))
    gateway.admin.Execute(req, metadata=bearer(gateway.session("olga", consent=False)))
    try:
        status = gateway.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
        assert not status.serving and status.current.id == window.id
        assert status.current.ends_at.endswith("+05:00")
        assert parse_iso(status.current.ends_at) == parse_iso(astana_iso(end))
        code, reason, msg = _alice_query_error(gateway)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "MAINTENANCE")
        assert f"until {astana_iso(end)}" in msg
        assert _wait_health(gateway, health_pb2.HealthCheckResponse.NOT_SERVING) == (
            health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        from server.store.schema import maintenance

        with gateway.gateway.store.engine.begin() as conn:
            conn.execute(sa.delete(maintenance).where(maintenance.c.id == window.id))
    assert _wait_health(gateway, health_pb2.HealthCheckResponse.SERVING) == (
        health_pb2.HealthCheckResponse.SERVING)
    gateway.send_query("alice")


@pytest.mark.parametrize("name", ["olga"])
def test_operator_enrolls_a_user_through_the_admin_service(gateway: Harness, name: str) -> None:
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key

    key = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = gateway.ca.issue(build_csr(key, "CN=erin"), "user", 30)
    from cryptography.hazmat.primitives import serialization

    enroll = admin_pb2.EnrollUser(
        user_id=f"erin-{secrets.token_hex(2)}", full_name="Erin", role="agency_user",
        phone="+77010000009", certificate_der=cert.public_bytes(serialization.Encoding.DER),
    )
    req = gateway.admin_request(gateway.users[name], enroll_user=enroll)
    resp = gateway.admin.Execute(req, metadata=bearer(gateway.session(name, consent=False)))
    assert "enrolled" in resp.message
    assert gateway.gateway.store.require_user(enroll.user_id).role == "agency_user"
    # a second certificate for the same user; a certificate from another CA is refused
    key2 = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert2 = gateway.ca.issue(build_csr(key2, "CN=erin-2"), "user", 30)
    token = gateway.session(name, consent=False)
    reg = admin_pb2.RegisterCertificate(
        user_id=enroll.user_id, certificate_der=cert2.public_bytes(serialization.Encoding.DER))
    resp = gateway.admin.Execute(gateway.admin_request(gateway.users[name],
                                                       register_certificate=reg),
                                 metadata=bearer(token))
    assert "registered" in resp.message
    from signing.ca import CertificateAuthority

    other = CertificateAuthority.init(gateway.home / f"other-ca-{secrets.token_hex(2)}",
                                      "CN=Rogue Root")
    rogue = other.issue(build_csr(key2, "CN=erin-rogue"), "user", 30)
    reg = admin_pb2.RegisterCertificate(
        user_id=enroll.user_id, certificate_der=rogue.public_bytes(serialization.Encoding.DER))
    req = gateway.admin_request(gateway.users[name], register_certificate=reg)
    assert rpc_error(lambda: gateway.admin.Execute(req, metadata=bearer(token)))[:2] == (
        UNAUTH, "UNTRUSTED_CHAIN")
    # block and unblock round trip
    for cmd in (dict(block_user=admin_pb2.BlockUser(user_id=enroll.user_id)),
                dict(unblock_user=admin_pb2.UnblockUser(user_id=enroll.user_id))):
        gateway.admin.Execute(gateway.admin_request(gateway.users[name], **cmd),
                              metadata=bearer(token))
    assert gateway.gateway.store.require_user(enroll.user_id).active


def test_expired_session_and_expired_sms_code(gateway: Harness) -> None:
    from server.context import token_hash
    from server.store.schema import logins, sessions

    bob = gateway.users["bob"]
    token = gateway.login(bob).session_token
    past = now_utc() - dt.timedelta(seconds=1)
    with gateway.gateway.store.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.token_hash == token_hash(token))
                     .values(expires_at=past))
    code, _, msg = rpc_error(
        lambda: gateway.auth.Logout(auth_pb2.LogoutRequest(), metadata=bearer(token)))
    assert code == UNAUTH and "expired" in msg

    login_id, _ = gateway.begin_and_prove(bob)
    sms = gateway.sms_codes(bob.phone)[-1]
    with gateway.gateway.store.engine.begin() as conn:
        conn.execute(sa.update(logins).where(logins.c.login_id == login_id)
                     .values(expires_at=past, code_expires_at=past))
    req = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=sms)
    code, reason, msg = rpc_error(lambda: gateway.auth.CompleteLogin(req))
    assert (code, reason) == (UNAUTH, "LOGIN_FAILED") and "expired" in msg


def test_concurrent_copies_of_one_query_are_answered_once(gateway: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    req, _ = gateway.query_request(gateway.users["alice"])
    token = gateway.session("alice")

    def send() -> grpc.StatusCode:
        try:
            gateway.query.Query(req, metadata=bearer(token))
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: send(), range(4)))
    assert sorted(c.name for c in codes) == ["ALREADY_EXISTS"] * 3 + ["OK"]
