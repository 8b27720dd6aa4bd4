"""The operations domain over the real gRPC gateway (issue 5), on SQLite and PostgreSQL.

* the role matrix: each role x each AdminService command and each AuditService /
  AdminService RPC, over a TLS channel with SoftHSM-signed commands; PERMISSION_DENIED
  exactly where the rules give the role no right (the expected matrix is written out
  here, independently of ``server.ops.roles`` and ``server.admin.COMMAND_ROLES``);
* the acceptance story of the issue end to end over gRPC;
* maintenance windows and the Journal of emergencies, visible to clients and in the log.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import secrets
import types
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from server.ops import (
    PAYLOAD_APPLICATION,
    PAYLOAD_RESOLUTION,
    PAYLOAD_TRANSFER,
    Actor,
    Role,
    refusal_payload,
    sign_document,
    verify_refusal,
)
from server.resources.identifiers import make_iin
from server.store.certificates import fingerprint
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, audit_pb2, common_pb2, query_pb2
from tests.server.conftest import Harness, User, bearer, make_token_signer, rpc_error
from tests.server.ops_grpc_helpers import (
    ROLE_USERS,
    admin,
    applicant_proof,
    data,
    ensure_roles,
    list_queries,
    register_applicant,
    unique,
)

DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
AG, OP, CO, PR, SO = "agency_user", "operator", "controller", "prosecutor", "security_officer"
ALL = frozenset({AG, OP, CO, PR, SO})

#: command -> (roles that may run it, harmless arguments: they fail after the role check
#: or only read). Written out from the rules (§6-§8, §21, R8, R10, R12, R15, R16).
ADMIN_MATRIX: dict[str, tuple[frozenset[str], Any]] = {
    "enroll_user": (frozenset({OP}), admin_pb2.EnrollUser()),
    "block_user": (frozenset({OP, CO, SO}), admin_pb2.BlockUser(user_id="nobody-here")),
    "unblock_user": (frozenset({OP, SO}), admin_pb2.UnblockUser(user_id="nobody-here")),
    "revoke_certificate": (frozenset({OP, SO}),
                           admin_pb2.RevokeCertificate(fingerprint="00" * 32, reason="test")),
    "register_certificate": (frozenset({OP, SO}),
                             admin_pb2.RegisterCertificate(user_id="nobody-here")),
    "publish_maintenance": (frozenset({OP}), admin_pb2.PublishMaintenance(
        window=common_pb2.MaintenanceWindow(starts_at="2030-01-02T00:00:00+05:00",
                                            ends_at="2030-01-01T00:00:00+05:00",
                                            description="backwards"))),
    "list_applications": (frozenset({OP}), admin_pb2.ListApplications()),
    "register_application": (frozenset({OP}),
                             admin_pb2.RegisterApplication(application_id="nope")),
    "refuse_application": (frozenset({OP}), admin_pb2.RefuseApplication(document=b"{}")),
    "file_transfer": (ALL, admin_pb2.FileTransfer(document=b"{}")),
    "list_transfers": (frozenset({OP}), admin_pb2.ListTransfers()),
    "apply_transfer": (frozenset({OP}), admin_pb2.ApplyTransfer(transfer_id="nope")),
    "read_outbox": (frozenset({CO, PR}), admin_pb2.ReadOutbox()),
    "mark_notice_read": (frozenset({CO, PR}),
                         admin_pb2.MarkNoticeRead(notification_id=987654)),
    "list_alerts": (frozenset({CO}), admin_pb2.ListAlerts()),
    "acknowledge_alert": (frozenset({CO}), admin_pb2.AcknowledgeAlert(alert_id=987654)),
    "record_emergency": (frozenset({OP}), admin_pb2.RecordEmergency()),
    "resolve_emergency": (frozenset({OP}), admin_pb2.ResolveEmergency(emergency_id="nope")),
    "list_emergencies": (frozenset({OP, SO}), admin_pb2.ListEmergencies()),
    "import_crl": (frozenset({SO}), admin_pb2.ImportCrl(crl=b"not a crl")),
    "list_certificates": (frozenset({OP, SO}), admin_pb2.ListCertificates()),
    "record_review": (frozenset({CO}), admin_pb2.RecordReview()),
    "list_overdue_reviews": (frozenset({CO}), admin_pb2.ListOverdueReviews()),
    "list_users": (frozenset({OP}), admin_pb2.ListUsers()),
    "cancel_maintenance": (frozenset({OP}), admin_pb2.CancelMaintenance(window_id="nope")),
}

#: RPC -> (roles, call(harness, token)).
RPC_MATRIX: dict[str, tuple[frozenset[str], Callable[[Harness, str], Any]]] = {
    "AuditService.ListQueries": (frozenset({CO}), lambda gw, t: gw.audit.ListQueries(
        audit_pb2.ListQueriesRequest(limit=1), metadata=bearer(t))),
    "AuditService.ExportQueriesCsv": (frozenset({CO}), lambda gw, t: gw.audit.ExportQueriesCsv(
        audit_pb2.ListQueriesRequest(
            filter=audit_pb2.QueryFilter(user_ids=["nobody-here"])), metadata=bearer(t))),
    "AuditService.StreamQueriesCsv": (frozenset({CO}), lambda gw, t: list(
        gw.audit.StreamQueriesCsv(audit_pb2.ListQueriesRequest(
            filter=audit_pb2.QueryFilter(user_ids=["nobody-here"])), metadata=bearer(t)))),
    "AuditService.RegisterResolution": (frozenset({PR}), lambda gw, t: gw.audit.RegisterResolution(
        audit_pb2.RegisterResolutionRequest(document=b"{}"), metadata=bearer(t))),
    "AuditService.ReadAuditTrail": (frozenset({PR}), lambda gw, t: gw.audit.ReadAuditTrail(
        audit_pb2.ReadAuditTrailRequest(resolution_id="nope"), metadata=bearer(t))),
    "AuditService.GetCheckpoint": (ALL, lambda gw, t: gw.audit.GetCheckpoint(
        audit_pb2.GetCheckpointRequest(), metadata=bearer(t))),
    "AdminService.GetJournal": (ALL, lambda gw, t: gw.admin.GetJournal(
        admin_pb2.GetJournalRequest(), metadata=bearer(t))),
}


def _role_denied(call: Callable[[], Any]) -> bool:
    """True if the call was refused for the caller's role (not for its arguments)."""
    try:
        call()
    except grpc.RpcError as exc:
        return bool(exc.code() == DENIED and "may not" in (exc.details() or ""))
    return False


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


def test_every_command_is_in_the_matrix() -> None:
    commands = {f.name for f in admin_pb2.AdminCommand.DESCRIPTOR.oneofs_by_name[
        "command"].fields}
    assert commands == set(ADMIN_MATRIX)
    rpcs = {f"AuditService.{m.name}" for m in
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"].methods}
    assert {"AuditService.ListQueries", "AuditService.ExportQueriesCsv",
            "AuditService.RegisterResolution", "AuditService.ReadAuditTrail"} <= rpcs


def test_role_matrix(gw: Harness) -> None:
    wrong: list[str] = []
    for role, name in ROLE_USERS.items():
        user = gw.users[name]
        token = gw.session(name, consent=False)
        for command, (allowed, args) in ADMIN_MATRIX.items():
            req = gw.admin_request(user, **{command: args})
            denied = _role_denied(lambda: gw.admin.Execute(req, metadata=bearer(token)))
            if denied == (role in allowed):
                wrong.append(f"{role} {command}: {'denied' if denied else 'allowed'}")
        for rpc, (allowed, call) in RPC_MATRIX.items():
            denied = _role_denied(lambda: call(gw, token))
            if denied == (role in allowed):
                wrong.append(f"{role} {rpc}: {'denied' if denied else 'allowed'}")
    assert wrong == []
    # R12 refusals are audited: each denied Reports / trail read left a record.
    records = gw.audit_records()
    refused = {(r.actor, r.details.get("method", "")) for r in records if r.event == "refusal"}
    assert ("alice", "/siogw.v1.AuditService/ListQueries") in refused
    assert ("olga", "/siogw.v1.AuditService/ReadAuditTrail") in refused
    trail = [r for r in records if r.event == "prosecutor.read" and r.actor == "sam"]
    assert trail and trail[0].outcome == "refused"


# --- the acceptance story --------------------------------------------------------------------
def _application(person: User, iin: str, **overrides: Any) -> bytes:
    import base64

    doc: dict[str, Any] = {
        "iin": iin, "full_name": "Anna Applicant", "unit": "Analytics department",
        "post": "analyst", "phone": person.phone,
        "certificate": base64.b64encode(person.cert_der).decode(),
        "requested_role": "agency_user", "basis": "financial_monitoring",
    }
    doc.update(overrides)
    return sign_document(PAYLOAD_APPLICATION, {k: v for k, v in doc.items() if v is not None},
                         person.signer)


def test_acceptance_story_over_grpc(gw: Harness, softhsm_store: Any) -> None:
    started = now_utc() - _dt.timedelta(minutes=1)
    trust = TrustStore([gw.ca.root_certificate])
    anna_id = f"anna-{secrets.token_hex(2)}"
    anna = User(anna_id, "agency_user",
                make_token_signer(softhsm_store, gw.home / "secrets", "anna", gw.ca),
                "+77010000031")
    iin = make_iin(_dt.date(1990, 1, 1), "F", secrets.randbelow(9000) + 1)
    stranger = make_token_signer(softhsm_store, gw.home / "secrets", "stranger", gw.ca)

    # 1. An application with an empty post; the operator refuses it, signed on her token.
    first = gw.admin.FileApplication(admin_pb2.FileApplicationRequest(
        document=_application(anna, iin, post="")))
    assert first.status == "pending" and first.deadline_at.endswith("+05:00")
    listed = data(admin(gw, "olga", list_applications=admin_pb2.ListApplications(
        status="pending")))
    assert first.application_id in [a["id"] for a in listed["applications"]]
    payload = refusal_payload(
        types.SimpleNamespace(id=first.application_id, iin=iin),  # type: ignore[arg-type]
        "the post is missing", "olga", now_utc())
    refused = admin(gw, "olga", refuse_application=admin_pb2.RefuseApplication(
        document=sign_document("application/vnd.siogw.refusal+json", payload,
                               gw.users["olga"].signer)))
    assert "refused" in refused.message

    # The applicant fetches the refusal with a proof on her certificate; it verifies.
    got = gw.admin.GetRefusal(applicant_proof(anna.signer, first.application_id))
    refusal = verify_refusal(bytes(got.document), trust)
    assert refusal.reason == "the post is missing" and "CN=olga" in refusal.signer_subject
    status = gw.admin.GetApplicationStatus(applicant_proof(anna.signer, first.application_id))
    assert status.status == "refused" and status.refusal_reason == "the post is missing"
    code, _, _ = rpc_error(lambda: gw.admin.GetRefusal(
        applicant_proof(stranger, first.application_id)))
    assert code == DENIED

    # 2. The corrected application is registered: the user exists in the gateway at once.
    second = gw.admin.FileApplication(admin_pb2.FileApplicationRequest(
        document=_application(anna, iin, corrects=first.application_id)))
    reg = data(admin(gw, "olga", register_application=admin_pb2.RegisterApplication(
        application_id=second.application_id, user_id=anna_id)))
    assert reg["user_id"] == anna_id
    assert gw.gateway.store.require_user(anna_id).active
    gw.users[anna_id] = anna

    # 3. Login and signed queries.
    token = gw.session(anna_id)
    request_ids = [secrets.token_hex(8) for _ in range(2)]
    for rid in request_ids:
        gw.send_query(anna_id, request_id=rid)
    no_task = secrets.token_hex(8)  # refused, and a violation rule fires
    assert rpc_error(lambda: gw.send_query(anna_id, request_id=no_task, task_ref=""))[0] == (
        grpc.StatusCode.INVALID_ARGUMENT)

    # 4. A transfer edit filed 30 hours after the order's signing: flagged late; applied.
    order_signed = now_utc() - _dt.timedelta(hours=30)
    edit = data(admin(gw, anna_id, file_transfer=admin_pb2.FileTransfer(
        document=sign_document(PAYLOAD_TRANSFER, {
            "user_id": anna_id, "unit": "Investigations", "post": "senior analyst",
            "order_number": "ORD-17", "order_signed_at": astana_iso(order_signed)},
            anna.signer))))
    assert edit["late"] is True
    late = data(admin(gw, "olga", list_transfers=admin_pb2.ListTransfers(late_only=True)))
    assert edit["id"] in [t["id"] for t in late["transfers"]]
    admin(gw, "olga", apply_transfer=admin_pb2.ApplyTransfer(transfer_id=edit["id"]))

    # 5. The controller blocks on a violation: the open session fails on its next call.
    blocked = admin(gw, "cora", block_user=admin_pb2.BlockUser(
        user_id=anna_id, kind="violation", reason="queries outside the task"))
    assert data(blocked)["block_kind"] == "violation"
    qreq, _ = gw.query_request(anna)
    code, _, _ = rpc_error(lambda: gw.query.Query(qreq, metadata=bearer(token)))
    assert code in (grpc.StatusCode.UNAUTHENTICATED, DENIED)
    notices = data(admin(gw, "cora", read_outbox=admin_pb2.ReadOutbox()))["notices"]
    assert [n["user_id"] for n in notices if n["user_id"] == anna_id] == [anna_id]

    # 6. The controller's report shows the queries, and exports them.
    page = list_queries(gw, "cora", user_ids=[anna_id])
    rows = [(r.user_id, r.event, r.outcome) for r in page.records]
    assert rows.count((anna_id, "query", "success")) == 2
    assert all(r.time.endswith("+05:00") for r in page.records)
    assert {r.request_id for r in page.records} >= set(request_ids)
    assert (no_task, "refused") in [(r.request_id, r.outcome) for r in page.records]
    gw.gateway.ops_wiring.settle()
    alerts = data(admin(gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id=anna_id)))
    assert [a["rule"] for a in alerts["alerts"]] == ["query_without_task"]
    export = gw.audit.ExportQueriesCsv(audit_pb2.ListQueriesRequest(
        filter=audit_pb2.QueryFilter(user_ids=[anna_id])),
        metadata=bearer(gw.session("cora", consent=False)))
    table = list(csv.reader(io.StringIO(export.csv.decode())))
    assert export.rows == len(table) - 1 >= 2

    # 7. The prosecutor: a resolution on his token; inside its scope allowed, outside denied.
    petr = gw.users["petr"]
    number = f"17-03/{secrets.token_hex(2)}"
    res = gw.audit.RegisterResolution(audit_pb2.RegisterResolutionRequest(
        document=sign_document(PAYLOAD_RESOLUTION, {
            "number": number, "date": started.date().isoformat(), "user_ids": [anna_id],
            "period_start": astana_iso(started),
            "period_end": astana_iso(now_utc() + _dt.timedelta(days=1))}, petr.signer)),
        metadata=bearer(gw.session("petr", consent=False)))
    inside = gw.audit.ReadAuditTrail(audit_pb2.ReadAuditTrailRequest(
        resolution_id=res.id, user_ids=[anna_id]),
        metadata=bearer(gw.session("petr", consent=False)))
    assert [r.user_id for r in inside.records].count(anna_id) >= 2
    code, _, _ = rpc_error(lambda: gw.audit.ReadAuditTrail(audit_pb2.ReadAuditTrailRequest(
        resolution_id=res.id, user_ids=["alice"]),
        metadata=bearer(gw.session("petr", consent=False))))
    assert code == DENIED

    # All of it is in the WORM log.
    records = gw.audit_records()
    events = {(r.event, r.outcome) for r in records}
    for expected in [("ops.application.filed", "success"), ("ops.application.refused", "success"),
                     ("ops.application.registered", "success"), ("login", "success"),
                     ("query", "success"), ("ops.transfer.filed", "success"),
                     ("ops.transfer.applied", "success"), ("ops.user.blocked", "success"),
                     ("report.read", "success"), ("ops.resolution.registered", "success"),
                     ("prosecutor.read", "success"), ("prosecutor.read", "refused")]:
        assert expected in events, expected
    [filed] = [r for r in records if r.event == "ops.transfer.filed"
               and r.details.get("transfer_id") == edit["id"]]
    assert filed.details["late"] is True
    reads = [r for r in records if r.event == "prosecutor.read"
             and r.details.get("resolution_id") == res.id]
    assert sorted(r.outcome for r in reads) == ["refused", "success"]


def test_maintenance_and_emergencies_are_visible_and_logged(gw: Harness) -> None:
    start = now_utc() + _dt.timedelta(days=3)
    window_id = f"mw-{secrets.token_hex(3)}"
    admin(gw, "olga", publish_maintenance=admin_pb2.PublishMaintenance(
        window=common_pb2.MaintenanceWindow(
            id=window_id, starts_at=astana_iso(start),
            ends_at=astana_iso(start + _dt.timedelta(hours=2)), description="DB upgrade")))
    onset = now_utc() - _dt.timedelta(hours=1)
    item = data(admin(gw, "olga", record_emergency=admin_pb2.RecordEmergency(
        onset_at=astana_iso(onset), causes="power loss in the server room",
        measures="switched to the reserve line")))
    # clients see both
    status = gw.query.GetServiceStatus(query_pb2.GetServiceStatusRequest())
    assert window_id in [w.id for w in status.windows] and status.serving
    journal = gw.admin.GetJournal(admin_pb2.GetJournalRequest(),
                                  metadata=bearer(gw.session("alice")))
    assert window_id in [w.id for w in journal.windows]
    [shown] = [e for e in journal.emergencies if e.id == item["id"]]
    assert shown.causes.startswith("power loss") and not shown.resolved_at
    resolved = data(admin(gw, "olga", resolve_emergency=admin_pb2.ResolveEmergency(
        emergency_id=item["id"])))
    assert resolved["resolved_at"].endswith("+05:00")
    listed = data(admin(gw, "sam", list_emergencies=admin_pb2.ListEmergencies()))
    assert item["id"] in [e["id"] for e in listed["emergencies"]]
    # and the audit log keeps them
    records = gw.audit_records()
    assert any(r.event == "ops.maintenance.published" and r.details["window_id"] == window_id
               for r in records)
    actions = [r.details["action"] for r in records
               if r.event == "emergency" and r.details["emergency_id"] == item["id"]]
    assert actions == ["recorded", "resolved"]


def test_certificates_crl_and_reviews(gw: Harness) -> None:
    certs = data(admin(gw, "sam", list_certificates=admin_pb2.ListCertificates()))
    assert isinstance(certs["certificates"], list)
    crl = (gw.home / "ca" / "crl.pem").read_bytes()
    imported = admin(gw, "sam", import_crl=admin_pb2.ImportCrl(crl=crl))
    assert "CRL imported" in imported.message
    review = data(admin(gw, "cora", record_review=admin_pb2.RecordReview(
        period_start=astana_iso(now_utc() - _dt.timedelta(days=30)),
        period_end=astana_iso(now_utc()), note="monthly review")))
    assert review["controller_id"] == "cora"
    overdue = data(admin(gw, "cora", list_overdue_reviews=admin_pb2.ListOverdueReviews(
        all=True)))
    assert isinstance(overdue["controllers"], list)


def test_audit_stream_feeds_the_violation_rules(gw: Harness) -> None:
    """Refusals the interceptor records reach the rule engine; controllers see the alert."""
    dina, alice = gw.users["dina"], gw.users["alice"]
    token = gw.session("dina")
    for _ in range(3):  # signed with someone else's key: not dina's failure (issue 12)
        req, _ = gw.query_request(dina, signer=alice.signer)
        assert rpc_error(lambda: gw.query.Query(req, metadata=bearer(token)))[0] == DENIED
    gw.gateway.ops_wiring.settle()
    none = data(admin(gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id="dina")))
    assert none["alerts"] == []
    for _ in range(3):  # dina's own certificate, a signature that does not verify
        req, _ = gw.query_request(dina)
        sig = req.envelope.signatures[0]
        sig.sig = bytes([sig.sig[0] ^ 1]) + sig.sig[1:]
        assert rpc_error(lambda: gw.query.Query(req, metadata=bearer(token)))[0] == UNAUTH
    gw.gateway.ops_wiring.settle()
    alerts = data(admin(gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id="dina")))
    assert [a["rule"] for a in alerts["alerts"]] == ["repeated_signature_failures"]
    acked = data(admin(gw, "cora", acknowledge_alert=admin_pb2.AcknowledgeAlert(
        alert_id=alerts["alerts"][0]["id"])))
    assert acked["acknowledged_by"] == "cora"
    assert any(r.event == "ops.alert.raised" and r.details["user_id"] == "dina"
               for r in gw.audit_records())


def test_burst_of_queries_about_one_person_raises_an_alert(gw: Harness) -> None:
    """Query records carry the validated subject, so the burst rule (R13, R15) can fire."""
    from server.resources.dataset import DEMO_FOREIGNER_IIN

    def bursts() -> list[dict[str, Any]]:
        alerts = data(admin(gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id="dina")))
        return [a for a in alerts["alerts"] if a["rule"] == "subject_burst"]

    before = len(bursts())
    for _ in range(10):  # the rule's default threshold: 10 queries in an hour
        gw.send_query("dina", parameters={"iin": DEMO_FOREIGNER_IIN})
    gw.gateway.ops_wiring.settle()
    records = [r for r in gw.audit_records() if r.event == "query" and r.actor == "dina"]
    assert records[-1].details["subject"] == DEMO_FOREIGNER_IIN
    assert len(bursts()) == before + 1


def test_an_operations_block_and_unblock_are_seen_by_the_next_call(gw: Harness) -> None:
    """One home: a block by the operations domain (as a blocking rule makes it) is the
    ``users`` row the session read joins; nothing is mirrored, nothing can be missed."""
    token = gw.session("dina")
    gw.send_query("dina")
    ops = gw.gateway.ops
    ops.lifecycle.block(Actor("olga", Role.OPERATOR), "dina", "suspension", "order 12")
    try:
        req, _ = gw.query_request(gw.users["dina"])
        code, _reason, message = rpc_error(
            lambda: gw.query.Query(req, metadata=bearer(token)))
        assert code in (DENIED, grpc.StatusCode.UNAUTHENTICATED), message
        assert not gw.gateway.store.require_user("dina").active
    finally:
        ops.lifecycle.unblock(Actor("olga", Role.OPERATOR), "dina", "order 13")
        gw.sessions.pop("dina", None)
    gw.session("dina")  # a new login works at once
    gw.send_query("dina")


def test_list_users_and_certificates_list_what_is_enrolled_and_registered(
    gw: Harness, softhsm_store: Any
) -> None:
    """Users enrolled both ways (``siogw admin`` / EnrollUser, and from an application)
    and certificates registered both ways (the store's command, the operations domain's)
    are all listed: one table each."""
    def new_cert(name: str) -> bytes:
        key = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
        cert = gw.ca.issue(build_csr(key, f"CN={name}"), "user", 30)
        return cert.public_bytes(serialization.Encoding.DER)

    # enrolled by the operator over the signed AdminService (EnrollUser)
    ed_id = unique("ed")
    ed_der = new_cert(ed_id)
    admin(gw, "olga", enroll_user=admin_pb2.EnrollUser(
        user_id=ed_id, full_name="Ed", role="agency_user", phone="+77010000061",
        certificate_der=ed_der))
    # registered from an application (the operations domain)
    fay = register_applicant(gw, softhsm_store, "fay", "+77010000062")
    # a certificate registered by the store's command, and one by the operations domain
    ed_rotated, fay_rotated = new_cert(f"{ed_id}-2"), new_cert(f"{fay.user_id}-2")
    admin(gw, "sam", register_certificate=admin_pb2.RegisterCertificate(
        user_id=ed_id, certificate_der=ed_rotated))
    admin(gw, "sam", register_certificate=admin_pb2.RegisterCertificate(
        user_id=fay.user_id, certificate_der=fay_rotated))

    resp = admin(gw, "olga", list_users=admin_pb2.ListUsers())
    users = {u["user_id"]: u for u in data(resp)["users"]}
    # the harness's users (enrolled as `siogw admin bootstrap` does), the roles added by
    # the helpers, and the two new ones
    assert {"alice", "bob", "olga", "sam", "carl", "dina", "cora", "petr", ed_id,
            fay.user_id} <= set(users)
    assert resp.message == f"{len(users)} user(s)"
    assert users[ed_id]["role"] == "agency_user" and users[ed_id]["status"] == "active"
    assert users[fay.user_id]["iin"] and users[fay.user_id]["application_id"]
    only_agents = data(admin(gw, "olga", list_users=admin_pb2.ListUsers(role="operator")))
    assert {u["user_id"] for u in only_agents["users"]} >= {"olga"}
    assert all(u["role"] == "operator" for u in only_agents["users"])

    resp = admin(gw, "sam", list_certificates=admin_pb2.ListCertificates())
    certs = {c["fingerprint"]: c for c in data(resp)["certificates"]}
    expected = {fingerprint(u.cert_der) for u in gw.users.values()}
    expected |= {fingerprint(d) for d in (ed_der, ed_rotated, fay_rotated)}
    assert expected <= set(certs)
    assert resp.message.startswith(f"{len(certs)} certificate(s)")
    assert certs[fingerprint(ed_rotated)]["user_id"] == ed_id
    assert certs[fingerprint(ed_der)]["issuer"] == gw.ca.root_certificate.subject.rfc4514_string()
    mine = data(admin(gw, "sam", list_certificates=admin_pb2.ListCertificates(user_id=ed_id)))
    assert {c["fingerprint"] for c in mine["certificates"]} == {
        fingerprint(ed_der), fingerprint(ed_rotated)}


def test_key_rotation_and_revocation_by_the_security_officer(
    gw: Harness, softhsm_store: Any
) -> None:
    """R8: a new certificate after a key rotation, listed with warnings; revoking it ends
    the session that uses it at once."""

    erik = register_applicant(gw, softhsm_store, "erik", "+77010000051")
    rotated = make_token_signer(softhsm_store, gw.home / "secrets", "erik2", gw.ca)
    new = User(erik.user_id, "agency_user", rotated, erik.phone)
    reg = data(admin(gw, "sam", register_certificate=admin_pb2.RegisterCertificate(
        user_id=erik.user_id, certificate_der=new.cert_der, token_label="erik-token-2")))
    fp = reg["fingerprint"]
    assert fp == fingerprint(new.cert_der)
    listed = data(admin(gw, "sam", list_certificates=admin_pb2.ListCertificates(
        user_id=erik.user_id)))["certificates"]
    assert {c["fingerprint"] for c in listed} == {fp, fingerprint(erik.cert_der)}
    [rotated_row] = [c for c in listed if c["fingerprint"] == fp]
    assert any("PIN" in w for w in rotated_row["warnings"])  # its PIN age is unknown
    token = gw.login(new).session_token
    gw.consent(new, token)
    req, _ = gw.query_request(new)
    gw.query.Query(req, metadata=bearer(token))
    revoked = admin(gw, "sam", revoke_certificate=admin_pb2.RevokeCertificate(
        fingerprint=fp, reason="token lost"))
    assert data(revoked)["revocation_reason"] == "token lost"
    req, _ = gw.query_request(new)
    assert rpc_error(lambda: gw.query.Query(req, metadata=bearer(token)))[0] == (
        grpc.StatusCode.UNAUTHENTICATED)
    assert any(r.event == "ops.certificate.revoked" and r.details["fingerprint"] == fp
               for r in gw.audit_records())


def test_an_export_too_big_for_one_message_is_refused_with_the_way_out(gw: Harness) -> None:
    """Over the transport limit: EXPORT_TOO_LARGE naming the size, recorded; not a gRPC fault."""
    import dataclasses

    gw.sessions.pop("alice", None)  # a session of hers from an earlier test may lack consent
    for _ in range(3):
        gw.send_query("alice")
    config = gw.gateway.config
    token = gw.session("cora", consent=False)
    request = audit_pb2.ListQueriesRequest()
    full = gw.audit.ExportQueriesCsv(request, metadata=bearer(token))
    assert full.rows >= 3
    small = dataclasses.replace(config, limits=dataclasses.replace(
        config.limits, transport_max_message_bytes=len(full.csv) // 2 + 1024))
    gw.gateway.config = small
    try:
        before = sum(1 for r in gw.audit_records() if r.event == "refusal")
        code, reason, message = rpc_error(
            lambda: gw.audit.ExportQueriesCsv(request, metadata=bearer(token)))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "EXPORT_TOO_LARGE")
        assert "narrow the filter" in message and "export it in pages" in message
        assert "KiB" in message
        assert sum(1 for r in gw.audit_records() if r.event == "refusal") == before + 1
        gw.gateway.config = config
        # The way out: the same export in pages, each its own CSV with a header row.
        pages, after, has_after = [], 0, False
        while True:
            page = gw.audit.ExportQueriesCsv(audit_pb2.ListQueriesRequest(
                limit=2, after_seq=after, has_after_seq=has_after), metadata=bearer(token))
            pages.append(page)
            if not page.has_more:
                break
            after, has_after = page.next_after_seq, True
        header, *rows = list(csv.reader(io.StringIO(full.csv.decode())))
        paged = []
        for page in pages:
            page_header, *page_rows = list(csv.reader(io.StringIO(page.csv.decode())))
            assert page_header == header and page.rows == len(page_rows) <= 2
            paged.extend(page_rows)
        # The whole export is a snapshot taken before the pages: the pages hold it (and
        # the report.read records the paging itself added are not queries).
        assert paged[: len(rows)] == rows and len(pages) >= 2
    finally:
        gw.gateway.config = config
