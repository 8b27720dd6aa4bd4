"""ReportingService end to end over TLS gRPC with SoftHSM tokens, on SQLite and PostgreSQL
(the ``gateway`` harness): compliance officers enrolled with their provider's BIN submit
FM-1 messages of every kind; each validation is refused with its field named and leaves
nothing but the refusal record; deadlines flag late messages; a duplicate answers the
original receipt; corrections and withdrawals never overwrite; receipts verify offline;
analysts read, and every read is audited."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_status import rpc_status

from audit.receipts import verify_receipt
from clients import _common as cc
from clients.fm1 import (
    acknowledgement_json,
    audit_key_pem,
    proof_bundle,
    sign_fm1,
    verify_fm1_receipt,
)
from server.errors import error_info
from server.reporting.samples import KINDS, OTHER_BIN, PROVIDER_BIN, sample
from server.reporting.store import ReportingStore
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import (
    admin_pb2,
    common_pb2,
    reporting_pb2,
    reporting_pb2_grpc,
)
from tests.server.conftest import Harness, User, bearer, make_token_signer, rpc_error

ROOT = Path(__file__).resolve().parents[3]


class Fm1:
    """The harness plus the reporting stub and two officers of two providers."""

    def __init__(self, gw: Harness) -> None:
        self.gw = gw
        self.stub = reporting_pb2_grpc.ReportingServiceStub(gw.channel)
        self.store = ReportingStore(gw.gateway.store.engine)
        cert = gw.gateway.signer.certificate
        self.verifier = cc.PinnedGatewayVerifier([cert])

    def token(self, name: str) -> list[tuple[str, str]]:
        return bearer(self.gw.session(name, consent=False))

    def submit(self, name: str, msg: dict[str, Any], *, signer: Any = None
               ) -> tuple[reporting_pb2.Fm1Receipt, reporting_pb2.SubmitFm1Request]:
        req = sign_fm1(msg, signer or self.gw.users[name].signer)
        return self.stub.Submit(req, metadata=self.token(name)), req

    def refusal(self, name: str, msg: dict[str, Any]) -> tuple[Any, str, dict[str, str]]:
        req = sign_fm1(msg, self.gw.users[name].signer)
        with pytest.raises(grpc.RpcError) as ei:
            self.stub.Submit(req, metadata=self.token(name))
        status = rpc_status.from_call(ei.value)
        assert status is not None
        info = error_info(status)
        assert info is not None
        return ei.value.code(), info.reason, dict(info.metadata)


def enrol(gw: Harness, softhsm_store: Any, name: str, role: str, phone: str,
          provider_bin: str = "") -> User:
    """Enrol a user through the signed AdminService as the operator."""
    if name in gw.users:
        return gw.users[name]
    signer = make_token_signer(softhsm_store, gw.home / "secrets", name, gw.ca)
    user = User(name, role, signer, phone)
    req = gw.admin_request(gw.users["olga"], enroll_user=admin_pb2.EnrollUser(
        user_id=name, full_name=name.title(), role=role, phone=phone,
        certificate_der=user.cert_der, provider_bin=provider_bin))
    gw.admin.Execute(req, metadata=bearer(gw.session("olga", consent=False)))
    gw.users[name] = user
    return user


@pytest.fixture(scope="module")
def fm1(gateway: Harness, softhsm_store: Any) -> Fm1:
    enrol(gateway, softhsm_store, "kora", "compliance_officer", "+77010000031", PROVIDER_BIN)
    enrol(gateway, softhsm_store, "zhan", "compliance_officer", "+77010000032", OTHER_BIN)
    return Fm1(gateway)


def records(gw: Harness, event: str, outcome: str | None = None, **details: Any
            ) -> list[Any]:
    return [r for r in gw.audit_records() if r.event == event
            and (outcome is None or r.outcome == outcome)
            and all(r.details.get(k) == v for k, v in details.items())]


# --- enrolment -----------------------------------------------------------------------------
def test_an_officer_is_enrolled_with_a_valid_provider_bin(fm1: Fm1) -> None:
    gw = fm1.gw
    olga = gw.users["olga"]

    def enroll(**fields: Any) -> Any:
        req = gw.admin_request(olga, enroll_user=admin_pb2.EnrollUser(
            full_name="X", phone="+77010000099", **fields))
        return lambda: gw.admin.Execute(req, metadata=bearer(gw.session("olga", consent=False)))

    code, reason, _ = rpc_error(enroll(user_id="co-x", role="compliance_officer"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
    code, reason, _ = rpc_error(enroll(user_id="co-y", role="compliance_officer",
                                       provider_bin="123456789012"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_IDENTIFIER")
    code, reason, _ = rpc_error(enroll(user_id="an-z", role="agency_user",
                                       provider_bin=PROVIDER_BIN))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INPUT_ERROR")
    assert gw.gateway.store.get_user("co-x") is None
    assert fm1.store.provider_of("kora") == PROVIDER_BIN


# --- every kind accepted, receipts verified offline ---------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_accepted_with_a_receipt_verified_offline(fm1: Fm1, kind: str) -> None:
    msg = sample(kind, crypto=kind == "freeze")
    resp, req = fm1.submit("kora", msg)
    st = resp.status
    assert (st.message_id, st.provider_bin, st.kind, st.action) == (
        msg["message_id"], PROVIDER_BIN, kind, "report")
    assert st.submitted_by == "kora" and not st.late and st.deadline_at
    info = verify_fm1_receipt(resp, fm1.verifier, sent=req)
    assert info.acknowledgement["envelope_sha256"] == st.envelope_sha256
    # the same receipt through the auditor's tool (audit.receipts, `siogw audit prove`)
    bundle = proof_bundle(resp, info.origin)
    proved = verify_receipt(bundle["checkpoint"].encode(), bundle["receipt"], bundle["proof"],
                            fm1.gw.gateway.audit_log.trusted_keys())
    assert proved.seq == st.receipt.seq
    # stored once, with the signed envelope exactly as sent
    row = fm1.store.find(PROVIDER_BIN, msg["message_id"])
    assert row is not None and row.envelope == req.envelope.SerializeToString(
        deterministic=True)
    assert row.receipt is not None and row.receipt[0] == st.receipt.seq
    # the request record holds the envelope; the outcome record names it
    outcome = records(fm1.gw, "fm1", outcome="success", message_id=msg["message_id"])
    assert len(outcome) == 1
    assert outcome[0].details["request_seq"] == st.request_seq


def test_a_tampered_acknowledgement_or_proof_does_not_verify(fm1: Fm1) -> None:
    resp, req = fm1.submit("kora", sample("threshold"))
    bad = reporting_pb2.Fm1Receipt()
    bad.CopyFrom(resp)
    bad.acknowledgement.payload = bytes(resp.acknowledgement.payload).replace(
        b'"late":false', b'"late":true ')
    with pytest.raises(cc.ResultVerificationError):
        verify_fm1_receipt(bad, fm1.verifier, sent=req)
    bad.CopyFrom(resp)
    bad.inclusion_proof.leaf_hash = b"\x00" * 32
    with pytest.raises(cc.ResultVerificationError, match="another leaf"):
        verify_fm1_receipt(bad, fm1.verifier, sent=req)
    other = sign_fm1(sample("threshold"), fm1.gw.users["kora"].signer)
    with pytest.raises(cc.ResultVerificationError, match="another"):
        verify_fm1_receipt(resp, fm1.verifier, sent=other)


def test_the_cli_tools_verify_the_receipt_offline(fm1: Fm1, tmp_path: Path) -> None:
    resp, req = fm1.submit("kora", sample("suspicious_before"))
    info = verify_fm1_receipt(resp, fm1.verifier, sent=req)
    (tmp_path / "bundle.json").write_text(json.dumps(proof_bundle(resp, info.origin)))
    (tmp_path / "audit-key.pem").write_bytes(audit_key_pem(info))
    (tmp_path / "ack.json").write_bytes(acknowledgement_json(resp))
    (tmp_path / "gateway.pem").write_bytes(
        fm1.gw.gateway.signer.certificate.public_bytes(serialization.Encoding.PEM))
    run = [sys.executable, "-m", "siogw"]
    proved = subprocess.run([*run, "audit", "prove", "--bundle", str(tmp_path / "bundle.json"),
                             "--keys", str(tmp_path / "audit-key.pem")],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proved.returncode == 0, proved.stderr
    assert f"seq {resp.status.receipt.seq} is in" in proved.stdout
    verified = subprocess.run([*run, "verify", str(tmp_path / "ack.json"), "--trust",
                               str(fm1.gw.home / "root.pem"), "--signer-cert",
                               str(tmp_path / "gateway.pem"), "--payload-type",
                               "application/vnd.siogw.fm1-receipt+json"],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert verified.returncode == 0, verified.stderr + verified.stdout


# --- refusals ------------------------------------------------------------------------------
REFUSALS = [
    ("threshold", "operation.currency", "ABC", "operation.currency", "code"),
    ("suspicious_after", "recognised_at", None, "recognised_at", "missing"),
    ("termination", "relationship_ended_on", None, "relationship_ended_on", "missing"),
    ("freeze", "list", None, "list", "missing"),
    ("refusal_operation", "grounds", [], "grounds", "missing"),
    ("refusal_relations", "parties", [{"role": "client", "name": "A", "residence": "KZ",
                                       "idn": "850517300000"}], "parties[0].idn",
     "identifier"),
    ("suspicious_before", "kind", "suspicious", "kind", "code"),
]


@pytest.mark.parametrize(("kind", "key", "value", "field", "check"), REFUSALS,
                         ids=[f"{r[0]}:{r[3]}" for r in REFUSALS])
def test_each_validation_is_refused_with_its_field_named(
    fm1: Fm1, kind: str, key: str, value: Any, field: str, check: str
) -> None:
    msg = sample(kind)
    target, _, leaf = key.rpartition(".")
    holder = msg[target] if target else msg
    if value is None:
        del holder[leaf]
    else:
        holder[leaf] = value
    before = len(records(fm1.gw, "fm1"))
    code, reason, meta = fm1.refusal("kora", msg)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FM1_FIELD")
    assert (meta["field"], meta["check"]) == (field, check)
    # nothing stored, nothing written ahead: the refusal record is all that remains
    assert fm1.store.find(PROVIDER_BIN, msg["message_id"]) is None
    assert len(records(fm1.gw, "fm1")) == before
    refused = records(fm1.gw, "refusal", reason="INVALID_FM1_FIELD")
    assert refused and refused[-1].actor == "kora"
    assert refused[-1].details.get("message_id", msg.get("message_id")) == msg["message_id"]


def test_who_may_submit_and_for_which_provider(fm1: Fm1) -> None:
    msg = sample("threshold")
    code, reason, _ = rpc_error(lambda: fm1.stub.Submit(
        sign_fm1(msg, fm1.gw.users["alice"].signer), metadata=fm1.token("alice")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # an officer reports for their own provider only
    code, reason, _ = fm1.refusal("zhan", msg)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # signed with another user's key
    code, reason, _ = rpc_error(lambda: fm1.submit("kora", msg,
                                                   signer=fm1.gw.users["zhan"].signer))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_NOT_REGISTERED")
    assert fm1.store.find(PROVIDER_BIN, msg["message_id"]) is None


# --- duplicates, corrections, withdrawals ----------------------------------------------
def test_the_same_message_id_again_answers_the_original_receipt(fm1: Fm1) -> None:
    msg = sample("suspicious_before")
    first, _ = fm1.submit("kora", msg)
    req = sign_fm1(msg, fm1.gw.users["kora"].signer)
    with pytest.raises(grpc.RpcError) as ei:
        fm1.stub.Submit(req, metadata=fm1.token("kora"))
    assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS
    status = rpc_status.from_call(ei.value)
    assert status is not None
    info = error_info(status)
    assert info is not None and info.reason == "FM1_DUPLICATE"
    assert info.metadata["seq"] == str(first.status.receipt.seq)
    assert info.metadata["leaf_hash"] == bytes(first.status.receipt.leaf_hash).hex()
    assert info.metadata["message_id"] == msg["message_id"]
    receipts = [d for d in status.details if d.Is(common_pb2.AuditReceipt.DESCRIPTOR)]
    assert len(receipts) == 1
    detail = common_pb2.AuditReceipt()
    receipts[0].Unpack(detail)
    assert detail.seq == first.status.receipt.seq
    # changed content under the same id: refused all the same, never a second record
    msg["text"] = "something else"
    code, reason, meta = fm1.refusal("kora", msg)
    assert (code, reason, meta["same_content"]) == (grpc.StatusCode.ALREADY_EXISTS,
                                                    "FM1_DUPLICATE", "false")
    assert len(records(fm1.gw, "fm1", outcome="success", message_id=msg["message_id"])) == 1
    assert len(records(fm1.gw, "fm1", outcome="requested", message_id=msg["message_id"])) == 1


def test_a_correction_and_a_withdrawal_name_the_original_and_overwrite_nothing(
    fm1: Fm1,
) -> None:
    original = sample("refusal_operation")
    fm1.submit("kora", original)
    stored = fm1.store.find(PROVIDER_BIN, original["message_id"])
    assert stored is not None
    fix = sample("refusal_operation")
    fix.update(action="correction", amends=original["message_id"],
               grounds=["source of funds not shown", "forged documents"])
    resp, _ = fm1.submit("kora", fix)
    assert (resp.status.action, resp.status.amends) == ("correction", original["message_id"])
    assert not resp.status.deadline_at and not resp.status.late
    withdraw = {"message_id": f"{original['message_id']}-w", "provider_bin": PROVIDER_BIN,
                "kind": "refusal_operation", "action": "withdrawal",
                "amends": original["message_id"], "text": "sent for the wrong client"}
    fm1.submit("kora", withdraw)
    again = fm1.store.find(PROVIDER_BIN, original["message_id"])
    assert again is not None and again.message_json == stored.message_json
    assert again.envelope == stored.envelope
    status = fm1.stub.GetStatus(reporting_pb2.Fm1Ref(message_id=original["message_id"]),
                                metadata=fm1.token("kora"))
    assert list(status.amended_by) == [fix["message_id"], withdraw["message_id"]]
    # a correction must name a message of the same provider
    bad = sample("threshold")
    bad.update(action="correction", amends="FM1-never-sent")
    code, reason, meta = fm1.refusal("kora", bad)
    assert (code, reason, meta["field"]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                             "INVALID_FM1_FIELD", "amends")


# --- deadlines -----------------------------------------------------------------------------
def test_a_late_message_is_accepted_flagged_and_its_lateness_receipted(fm1: Fm1) -> None:
    now = now_utc()
    msg = sample("suspicious_after")
    msg["operation"]["date"] = astana_iso(now - _dt.timedelta(hours=40))
    msg["decided_at"] = msg["recognised_at"] = astana_iso(now - _dt.timedelta(hours=30))
    resp, req = fm1.submit("kora", msg)
    assert resp.status.late
    assert 6 * 3600 - 5 <= resp.status.lateness_seconds <= 6 * 3600 + 120
    info = verify_fm1_receipt(resp, fm1.verifier, sent=req)
    assert info.late and info.lateness_seconds == resp.status.lateness_seconds
    on_time = sample("suspicious_after")
    assert not fm1.submit("kora", on_time)[0].status.late
    # the next-working-day rule: a decision ten days ago is late whatever the calendar
    old = sample("suspicious_before")
    old["decided_at"] = astana_iso(now - _dt.timedelta(days=10))
    old["operation"]["date"] = astana_iso(now - _dt.timedelta(days=9))
    late = fm1.submit("kora", old)[0].status
    assert late.late and late.lateness_seconds > 3 * 86400
    outcome = records(fm1.gw, "fm1", outcome="success", message_id=old["message_id"])
    assert outcome[0].details["late"] is True
    assert outcome[0].details["lateness_seconds"] == late.lateness_seconds


@pytest.mark.parametrize(("decided", "due"), [
    # across a weekend: decided on Friday 14 November 2025 -> due by the end of Monday
    ("2025-11-14T18:30:00+05:00", "2025-11-18T00:00:00+05:00"),
    # a public holiday: Independence Day, Tuesday 16 December 2025 -> end of Wednesday
    ("2025-12-15T09:00:00+05:00", "2025-12-18T00:00:00+05:00"),
    # a transferred day off: 8 May 2024 (from Saturday 4 May) -> end of Friday 10 May
    ("2024-05-06T10:00:00+05:00", "2024-05-11T00:00:00+05:00"),
    # a transferred working day: Saturday 4 May 2024 -> due by the end of that Saturday
    ("2024-05-03T17:00:00+05:00", "2024-05-05T00:00:00+05:00"),
])
def test_the_receipted_deadline_follows_kazakhstans_working_days(
    fm1: Fm1, decided: str, due: str
) -> None:
    """S§35 end to end: the deadline the gateway signs into the receipt is the end of the
    next working day in Astana time, across a weekend, a holiday and a transferred day;
    a message sent long after it is accepted, flagged late, with its lateness."""
    decided_at = _dt.datetime.fromisoformat(decided)
    msg = sample("suspicious_before", now=decided_at + _dt.timedelta(hours=1))
    resp, req = fm1.submit("kora", msg)
    status = resp.status
    assert _dt.datetime.fromisoformat(status.deadline_at) == _dt.datetime.fromisoformat(due)
    assert status.late
    expected = (now_utc() - _dt.datetime.fromisoformat(due)).total_seconds()
    assert 0 < status.lateness_seconds <= expected + 5
    info = verify_fm1_receipt(resp, fm1.verifier, sent=req)
    assert info.late and info.lateness_seconds == status.lateness_seconds


# --- the agency side ---------------------------------------------------------------------
def test_analysts_list_read_and_export_every_read_audited(fm1: Fm1) -> None:
    late = sample("suspicious_after")
    late["operation"]["date"] = astana_iso(now_utc() - _dt.timedelta(hours=50))
    late["decided_at"] = late["recognised_at"] = astana_iso(now_utc() - _dt.timedelta(hours=48))
    fm1.submit("kora", late)
    fm1.submit("kora", sample("termination"))
    mine = sample("threshold")
    mine["message_id"] = "-FM1-formula"  # a spreadsheet would run "-..." as a formula
    fm1.submit("kora", mine)
    theirs = sample("threshold", provider_bin=OTHER_BIN)
    fm1.submit("zhan", theirs)
    alice = fm1.token("alice")
    page = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(provider_bin=OTHER_BIN),
                                 metadata=alice)
    assert {m.message_id for m in page.messages} == {theirs["message_id"]}
    lates = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(late_only=True, limit=1000),
                                  metadata=alice)
    assert late["message_id"] in {m.message_id for m in lates.messages}
    assert all(m.late for m in lates.messages)
    kinds = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(kind="termination"),
                                  metadata=alice)
    assert kinds.messages and {m.kind for m in kinds.messages} == {"termination"}
    # paging
    one = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(limit=1), metadata=alice)
    assert one.has_more and len(one.messages) == 1
    two = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(limit=1,
                                                             after_id=one.next_after_id),
                                metadata=alice)
    assert two.messages[0].message_id != one.messages[0].message_id
    whole = fm1.stub.GetMessage(reporting_pb2.Fm1Ref(
        message_id=mine["message_id"], provider_bin=PROVIDER_BIN), metadata=alice)
    assert json.loads(whole.message_json)["message_id"] == mine["message_id"]
    assert whole.envelope.payload_type == "application/vnd.siogw.fm1+json"
    export = fm1.stub.ExportMessagesCsv(reporting_pb2.ListFm1Request(
        provider_bin=PROVIDER_BIN), metadata=alice)
    rows = list(csv.reader(io.StringIO(bytes(export.csv).decode())))
    assert rows[0][:3] == ["id", "message_id", "provider_bin"]
    assert ["'-FM1-formula"] == [r[1] for r in rows[1:] if r[1].endswith("FM1-formula")]
    assert export.rows == len(rows) - 1
    reads = records(fm1.gw, "fm1.read")
    assert {r.details["read"] for r in reads if r.actor == "alice"} >= {
        "list", "message", "export_csv"}
    msg_reads = [r for r in reads if r.details.get("message_id") == mine["message_id"]]
    assert msg_reads and msg_reads[-1].actor == "alice"


def test_an_officer_reads_their_own_provider_only(fm1: Fm1) -> None:
    msg = sample("threshold")
    fm1.submit("kora", msg)
    ref = reporting_pb2.Fm1Ref(message_id=msg["message_id"])
    assert fm1.stub.GetStatus(ref, metadata=fm1.token("kora")).message_id == msg["message_id"]
    code, _, _ = rpc_error(lambda: fm1.stub.GetStatus(ref, metadata=fm1.token("zhan")))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _, _ = rpc_error(lambda: fm1.stub.GetStatus(reporting_pb2.Fm1Ref(
        message_id=msg["message_id"], provider_bin=PROVIDER_BIN), metadata=fm1.token("zhan")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    page = fm1.stub.ListMessages(reporting_pb2.ListFm1Request(limit=1000),
                                 metadata=fm1.token("zhan"))
    assert {m.provider_bin for m in page.messages} == {OTHER_BIN}
    # the operator is neither a provider nor an analyst
    code, _, _ = rpc_error(lambda: fm1.stub.ListMessages(reporting_pb2.ListFm1Request(),
                                                         metadata=fm1.token("olga")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
