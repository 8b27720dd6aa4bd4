"""The write-ahead rule over a real gateway (issue 12 point 1, :mod:`server.writeahead`).

Every call that changes state writes its request record, durable, before the effect. Here
the log is made to refuse and each kind of call is shown to change nothing and answer
``UNAVAILABLE``: admin commands (the store's and the operations domain's, and every
``AdminCommand`` kind), applications, transfers, reviews, resolutions, consent and login
completion. "Nothing" is checked on the whole database (every table but the audit index,
row by row) and, where it matters, by sending the same signed request again once the log
takes records: it succeeds, so not even its request id was claimed.

The log refuses in two ways:

* :class:`FailsAtAppend`: the log fails between its health check and the append (the
  gateway's sink still reports healthy; appends go to a real ``JsonlAuditSink`` in the
  failed state, "disk full"). A call that checks the log's health first cannot pass
  the test by that check alone;
* the gateway's own ``audit.AuditLog`` closed (the last test of the module).

SoftHSM tokens, TLS, SQLite and PostgreSQL (the ``gateway`` fixture).
"""

from __future__ import annotations

import base64
import datetime as _dt
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from audit.record import AuditRecord
from server.auditsink import JsonlAuditSink, Receipt
from server.ops import PAYLOAD_APPLICATION, PAYLOAD_RESOLUTION, PAYLOAD_TRANSFER, sign_document
from server.resources.identifiers import make_iin
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import admin_pb2, audit_pb2, auth_pb2, common_pb2
from tests.server.conftest import Harness, User, bearer, make_token_signer, rpc_error
from tests.server.ops_grpc_helpers import (
    ROLE_USERS,
    admin,
    data,
    ensure_roles,
    register_applicant,
    unique,
)
from tests.server.test_ops_grpc import ADMIN_MATRIX

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

#: Tables that change on their own while the gateway runs (the audit index catches up
#: with the log in the background).
#: Tables the audit log's own threads write in the background: the Reports index and the
#: signed checkpoints kept in the database (state of the log, not an effect of the call).
VOLATILE = frozenset({"ops_audit_records", "audit_checkpoints"})


class FailsAtAppend:
    """See the module docstring: healthy to ``check()``, refusing every append."""

    def __init__(self, live: Any, failed: JsonlAuditSink) -> None:
        self.live, self.failed = live, failed
        self.refused: list[AuditRecord] = []

    def check(self) -> None:
        self.live.check()

    async def record(self, record: AuditRecord) -> Receipt:
        self.refused.append(record)
        return await self.failed.record(record)

    async def close(self) -> None:
        await self.failed.close()


@contextmanager
def log_refuses(gw: Harness, tmp_path: Path) -> Iterator[FailsAtAppend]:
    failed = JsonlAuditSink(tmp_path / f"down-{secrets.token_hex(3)}.jsonl")
    failed.fail("disk full (test)")
    gateway = gw.gateway
    saved = gateway.audit
    gateway.audit = FailsAtAppend(saved, failed)
    try:
        yield gateway.audit
    finally:
        gateway.audit = saved


def snapshot(gw: Harness) -> dict[str, list[str]]:
    """Every row of every table (but :data:`VOLATILE`), for "nothing changed"."""
    wiring = gw.gateway.ops_wiring
    if wiring is not None:
        wiring.settle()  # the rules have seen every record so far (alerts are rows)
    engine = gw.gateway.store.engine
    names = sorted(set(sa.inspect(engine).get_table_names()) - VOLATILE)
    meta = sa.MetaData()
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in names:
            table = sa.Table(name, meta, autoload_with=conn)
            out[name] = sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
    return out


def assert_unchanged(before: dict[str, list[str]], after: dict[str, list[str]]) -> None:
    changed = {name for name in before.keys() | after.keys()
               if before.get(name) != after.get(name)}
    assert not changed, f"rows changed in {sorted(changed)}"


def refused_unavailable(call: Callable[[], Any]) -> None:
    code, _reason, message = rpc_error(call)
    assert code == UNAVAILABLE, (code, message)
    assert "audit" in message.lower()


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    ensure_roles(gateway, softhsm_store)
    return gateway


def _application(person: User, iin: str) -> bytes:
    return sign_document(PAYLOAD_APPLICATION, {
        "iin": iin, "full_name": "Wanda Ahead", "unit": "Analytics", "post": "analyst",
        "phone": person.phone, "certificate": base64.b64encode(person.cert_der).decode(),
        "requested_role": "agency_user", "basis": "financial_monitoring"}, person.signer)


def _applicant(gw: Harness, softhsm_store: Any, prefix: str) -> User:
    return User(unique(prefix), "agency_user",
                make_token_signer(softhsm_store, gw.home / "secrets", prefix, gw.ca),
                f"+7701{secrets.randbelow(10**7):07d}")


# --- admin commands -------------------------------------------------------------------------
def test_enroll_user_changes_nothing_when_the_log_refuses(gw: Harness, tmp_path: Path) -> None:
    """The reported hole: enroll_user created an active user while answering UNAVAILABLE."""
    token = gw.session("olga", consent=False)
    req = gw.admin_request(gw.users["olga"], enroll_user=admin_pb2.EnrollUser(
        user_id=unique("ghost-op"), full_name="Ghost", role="operator"))
    before = snapshot(gw)
    with log_refuses(gw, tmp_path) as sink:
        refused_unavailable(lambda: gw.admin.Execute(req, metadata=bearer(token)))
    assert_unchanged(before, snapshot(gw))
    # the request it tried to write ahead: the signed command, before anything else
    [attempt] = sink.refused
    assert (attempt.event, attempt.outcome) == ("admin", "requested") and attempt.payload
    # not even the request id was claimed: the same signed command runs once the log is back
    done = gw.admin.Execute(req, metadata=bearer(token))
    assert "enrolled" in done.message


def test_block_user_changes_nothing_when_the_log_refuses(gw: Harness, tmp_path: Path) -> None:
    token = gw.session("olga", consent=False)
    req = gw.admin_request(gw.users["olga"], block_user=admin_pb2.BlockUser(
        user_id="dina", reason="write-ahead test"))
    before = snapshot(gw)
    with log_refuses(gw, tmp_path):
        refused_unavailable(lambda: gw.admin.Execute(req, metadata=bearer(token)))
    assert_unchanged(before, snapshot(gw))
    assert gw.gateway.store.require_user("dina").active


@pytest.mark.slow
def test_every_admin_command_is_refused_before_anything(gw: Harness, tmp_path: Path) -> None:
    """Each AdminCommand kind, as a role allowed to run it: UNAVAILABLE, no row changed."""
    tokens = {name: gw.session(name, consent=False) for name in ROLE_USERS.values()}
    before = snapshot(gw)
    with log_refuses(gw, tmp_path):
        for command, (roles, args) in ADMIN_MATRIX.items():
            name = ROLE_USERS[sorted(roles)[0]]
            token = tokens[name]
            req = gw.admin_request(gw.users[name], **{command: args})
            code, _, message = rpc_error(lambda: gw.admin.Execute(req, metadata=bearer(token)))
            assert code == UNAVAILABLE, (command, code, message)
    assert_unchanged(before, snapshot(gw))


def test_ops_commands_change_nothing_when_the_log_refuses(
    gw: Harness, softhsm_store: Any, tmp_path: Path
) -> None:
    """Maintenance, emergencies, reviews, transfers and registrations (server.ops)."""
    anna = register_applicant(gw, softhsm_store, "wa-anna", "+77010000041")
    for name in ("olga", "cora", anna.user_id):
        gw.session(name, consent=False)
    order_signed = astana_iso(now_utc() - _dt.timedelta(hours=1))
    filed_app = gw.admin.FileApplication(admin_pb2.FileApplicationRequest(
        document=_application(_applicant(gw, softhsm_store, "wa-reg"),
                              make_iin(_dt.date(1992, 5, 6), "F",
                                       secrets.randbelow(9000) + 1))))
    start = now_utc() + _dt.timedelta(days=30)
    commands: list[tuple[str, dict[str, Any]]] = [
        ("olga", {"publish_maintenance": admin_pb2.PublishMaintenance(
            window=common_pb2.MaintenanceWindow(
                starts_at=astana_iso(start), ends_at=astana_iso(start + _dt.timedelta(hours=1)),
                description="write-ahead test"))}),
        ("olga", {"record_emergency": admin_pb2.RecordEmergency(
            onset_at=astana_iso(now_utc()), causes="test", measures="none")}),
        ("olga", {"register_application": admin_pb2.RegisterApplication(
            application_id=filed_app.application_id, user_id=unique("wa-reg"))}),
        ("cora", {"record_review": admin_pb2.RecordReview(
            period_start=astana_iso(now_utc() - _dt.timedelta(days=30)),
            period_end=astana_iso(now_utc()), note="write-ahead test")}),
        (anna.user_id, {"file_transfer": admin_pb2.FileTransfer(document=sign_document(
            PAYLOAD_TRANSFER, {"user_id": anna.user_id, "unit": "Investigations",
                               "post": "senior analyst", "order_number": "ORD-WA",
                               "order_signed_at": order_signed}, anna.signer))}),
        ("olga", {"block_user": admin_pb2.BlockUser(
            user_id=anna.user_id, kind="suspension", reason="write-ahead test")}),
    ]
    requests = [(name, gw.admin_request(gw.users[name], **cmd)) for name, cmd in commands]
    before = snapshot(gw)
    with log_refuses(gw, tmp_path):
        for name, req in requests:
            token = gw.session(name, consent=False)
            refused_unavailable(lambda: gw.admin.Execute(req, metadata=bearer(token)))
    assert_unchanged(before, snapshot(gw))
    # the same signed commands take effect once the log takes records (none was claimed)
    for name, req in requests:
        gw.admin.Execute(req, metadata=bearer(gw.session(name, consent=False)))
    assert not gw.gateway.store.require_user(anna.user_id).active


# --- the applicant and the prosecutor -------------------------------------------------------
def test_file_application_changes_nothing_when_the_log_refuses(
    gw: Harness, softhsm_store: Any, tmp_path: Path
) -> None:
    person = _applicant(gw, softhsm_store, "wa-app")
    req = admin_pb2.FileApplicationRequest(document=_application(
        person, make_iin(_dt.date(1990, 2, 3), "M", secrets.randbelow(9000) + 1)))
    before = snapshot(gw)
    with log_refuses(gw, tmp_path) as sink:
        refused_unavailable(lambda: gw.admin.FileApplication(req))
    assert_unchanged(before, snapshot(gw))
    [attempt] = sink.refused
    assert (attempt.event, attempt.outcome) == ("application", "requested")
    assert attempt.payload == req.document
    assert gw.admin.FileApplication(req).status == "pending"


def test_register_resolution_changes_nothing_when_the_log_refuses(
    gw: Harness, tmp_path: Path
) -> None:
    petr = gw.users["petr"]
    token = gw.session("petr", consent=False)
    req = audit_pb2.RegisterResolutionRequest(document=sign_document(PAYLOAD_RESOLUTION, {
        "number": f"wa/{secrets.token_hex(3)}", "date": now_utc().date().isoformat(),
        "user_ids": ["alice"], "period_start": astana_iso(now_utc() - _dt.timedelta(days=1)),
        "period_end": astana_iso(now_utc() + _dt.timedelta(days=1))}, petr.signer))
    before = snapshot(gw)
    with log_refuses(gw, tmp_path):
        refused_unavailable(lambda: gw.audit.RegisterResolution(req, metadata=bearer(token)))
    assert_unchanged(before, snapshot(gw))
    assert gw.audit.RegisterResolution(req, metadata=bearer(token)).id


# --- consent and login ------------------------------------------------------------------------
def test_consent_is_not_stored_when_the_log_refuses(gw: Harness, tmp_path: Path) -> None:
    carl = gw.users["carl"]
    token = gw.login(carl).session_token
    before = snapshot(gw)
    with log_refuses(gw, tmp_path):
        refused_unavailable(lambda: gw.consent(carl, token))
    assert_unchanged(before, snapshot(gw))
    assert not gw.gateway.store.has_consent("carl", gw.gateway.config.policy.consent_version)
    assert gw.consent(carl, token).receipt.tree_size > 0


def test_no_session_when_the_log_refuses_the_login(gw: Harness, tmp_path: Path) -> None:
    bob = gw.users["bob"]
    login_id, _ = gw.begin_and_prove(bob)
    req = auth_pb2.CompleteLoginRequest(login_id=login_id, sms_code=gw.sms_codes(bob.phone)[-1])
    before = snapshot(gw)
    with log_refuses(gw, tmp_path) as sink:
        refused_unavailable(lambda: gw.auth.CompleteLogin(req))
    assert_unchanged(before, snapshot(gw))  # no session row, the login still "proved"
    [attempt] = sink.refused
    assert (attempt.event, attempt.outcome, attempt.actor) == ("login", "requested", "bob")
    assert gw.auth.CompleteLogin(req).session_token  # the same code completes it now


# --- what the log holds when it takes records ------------------------------------------------
def test_request_record_precedes_the_effect_and_the_outcome_names_it(gw: Harness) -> None:
    start = now_utc() + _dt.timedelta(days=60)
    resp = admin(gw, "olga", publish_maintenance=admin_pb2.PublishMaintenance(
        window=common_pb2.MaintenanceWindow(
            starts_at=astana_iso(start), ends_at=astana_iso(start + _dt.timedelta(hours=2)),
            description="write-ahead order")))
    window_id = data(resp)["id"]
    records = {r.seq: r for r in gw.audit_records()}
    outcome = records[resp.receipt.seq]
    assert (outcome.event, outcome.outcome) == ("admin", "success") and outcome.payload is None
    request = records[outcome.details["request_seq"]]
    assert (request.event, request.outcome) == ("admin", "requested")
    assert request.details["request_id"] == outcome.details["request_id"]
    assert request.payload  # the signed command, as received
    [effect] = [r for r in records.values() if r.event == "ops.maintenance.published"
                and window_id in str(r.details)]
    assert request.seq < effect.seq < outcome.seq


def test_a_refusal_after_the_request_record_names_it(gw: Harness) -> None:
    token = gw.session("olga", consent=False)
    req = gw.admin_request(gw.users["olga"], unblock_user=admin_pb2.UnblockUser(
        user_id=unique("nobody"), reason="write-ahead test"))
    code, _, _ = rpc_error(lambda: gw.admin.Execute(req, metadata=bearer(token)))
    assert code == grpc.StatusCode.NOT_FOUND
    records = gw.audit_records()
    refusal = [r for r in records if r.event == "refusal"][-1]
    request = {r.seq: r for r in records}[refusal.details["request_seq"]]
    assert (request.event, request.outcome) == ("admin", "requested") and request.payload
    assert refusal.payload is None  # the envelope is kept once, in the request record


# --- the reported exploit: an envelope whose record the log refuses --------------------------
def test_an_unrecordable_admin_command_changes_nothing(gw: Harness) -> None:
    """Issue 12: an extra signature with a 200,000-byte keyid of control characters made
    the record too large for the log; enroll_user had already created its user.

    However the gateway refuses it (the write-ahead record refused by the log, or the
    envelope refused by its input bounds before that), no row changes.
    """
    token = gw.session("olga", consent=False)
    user_id = unique("ghost-op")
    req = gw.admin_request(gw.users["olga"], enroll_user=admin_pb2.EnrollUser(
        user_id=user_id, full_name="Ghost", role="operator"))
    req.envelope.signatures.append(common_pb2.Signature(keyid="\x01" * 200_000, sig=b"x"))
    assert req.ByteSize() < gw.gateway.config.limits.max_message_bytes
    before = snapshot(gw)
    code, _, _ = rpc_error(lambda: gw.admin.Execute(req, metadata=bearer(token)))
    assert code in (UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.UNAUTHENTICATED)
    assert_unchanged(before, snapshot(gw))
    assert gw.gateway.store.get_user(user_id) is None


# --- the real audit log, closed (last: the module's gateway records no more) ---------------
def test_a_closed_audit_log_refuses_login_and_admin(gw: Harness) -> None:
    dina, olga = gw.users["dina"], gw.users["olga"]
    token = gw.session("olga", consent=False)
    login_id, _ = gw.begin_and_prove(dina)
    login = auth_pb2.CompleteLoginRequest(login_id=login_id,
                                          sms_code=gw.sms_codes(dina.phone)[-1])
    enroll = gw.admin_request(olga, enroll_user=admin_pb2.EnrollUser(
        user_id=unique("ghost-op"), full_name="Ghost", role="operator"))
    before = snapshot(gw)
    audit_log = gw.gateway.audit_log
    assert audit_log is not None
    audit_log.close()
    refused_unavailable(lambda: gw.auth.CompleteLogin(login))
    refused_unavailable(lambda: gw.admin.Execute(enroll, metadata=bearer(token)))
    assert_unchanged(before, snapshot(gw))
