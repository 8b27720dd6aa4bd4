"""R4/R13: transfer edits (late flag), blocking with reasons, unblocking, agency outbox."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import grpc
import pytest

from server.errors import status_code_for
from server.ops import (
    BlockKind,
    InvalidDocument,
    InvalidState,
    NotFound,
    Operations,
    PermissionDenied,
    SignerMismatch,
)
from server.ops.errors import DocumentReplayed
from server.store import Store
from server.store.users import USER_BLOCKED
from tests.server.ops.conftest import (
    AGENCY,
    CONTROLLER,
    OPERATOR,
    SECURITY,
    Clock,
    ListRecorder,
)
from tests.server.ops.helpers import open_session, session_ended, transfer


def _user(ops: Operations, person: Any, user_id: str, role: str = "agency_user") -> None:
    ops.lifecycle.import_user(OPERATOR, user_id=user_id, iin=person.iin, full_name=person.name,
                              role=role, unit="Analytics", post="analyst",
                              basis="financial_monitoring", certificate_der=person.cert_der)


def test_transfer_within_24_hours_is_on_time_and_applied(
    ops: Operations, people: Any, clock: Clock, recorder: ListRecorder
) -> None:
    alice = people("Alice")
    _user(ops, alice, "alice")
    order = clock.now - _dt.timedelta(hours=23)
    edit = ops.lifecycle.file_transfer(transfer(alice, "alice", order))
    assert not edit.late and edit.status == "pending"
    user = ops.lifecycle.apply_transfer(OPERATOR, edit.id)
    assert (user.unit, user.post) == ("Investigations", "senior analyst")
    with pytest.raises(InvalidState):
        ops.lifecycle.apply_transfer(OPERATOR, edit.id)
    assert recorder.of("ops.transfer.filed")[0]["details"]["late"] is False
    assert recorder.of("ops.transfer.applied")[0]["details"]["user_id"] == "alice"


def test_transfer_filed_after_24_hours_is_flagged_late(
    ops: Operations, people: Any, clock: Clock, recorder: ListRecorder
) -> None:
    alice = people("Alice")
    _user(ops, alice, "alice")
    order = clock.now - _dt.timedelta(hours=24, minutes=1)
    edit = ops.lifecycle.file_transfer(transfer(alice, "alice", order))
    assert edit.late
    assert edit.order_signed_at == order
    assert [e.id for e in ops.lifecycle.transfers(OPERATOR, late_only=True)] == [edit.id]
    assert recorder.of("ops.transfer.filed")[0]["details"]["late"] is True
    with pytest.raises(InvalidDocument):  # an order signed in the future
        ops.lifecycle.file_transfer(transfer(alice, "alice", clock.now + _dt.timedelta(hours=1)))


def test_transfer_must_be_signed_by_the_user(ops: Operations, people: Any, clock: Clock) -> None:
    alice, eve = people("Alice"), people("Eve")
    _user(ops, alice, "alice")
    _user(ops, eve, "eve")
    from signing.errors import UnknownSigner

    # Eve signs Alice's edit: her certificate is embedded, trusted, but not Alice's.
    with pytest.raises(SignerMismatch):
        ops.lifecycle.file_transfer(transfer(alice, "alice", clock.now, signer=eve.signer))
    with pytest.raises(NotFound):
        ops.lifecycle.file_transfer(transfer(alice, "nobody", clock.now))
    # Without the embedded certificate an unknown key is refused too.
    from signing.dsse import Envelope, EnvSig

    env = Envelope.from_json(transfer(alice, "alice", clock.now, signer=eve.signer))
    bare = Envelope(env.payload_type, env.payload,
                    tuple(EnvSig(s.keyid, s.sig) for s in env.signatures))
    with pytest.raises(UnknownSigner):
        ops.lifecycle.file_transfer(bare.to_json())


def test_revoked_certificate_cannot_sign_a_transfer(
    ops: Operations, people: Any, clock: Clock
) -> None:
    from server.ops.documents import fingerprint
    from signing.errors import UnknownSigner

    alice = people("Alice")
    _user(ops, alice, "alice")
    ops.certificates.revoke(SECURITY, fingerprint(alice.cert_der), "token lost")
    with pytest.raises((SignerMismatch, UnknownSigner)):
        ops.lifecycle.file_transfer(transfer(alice, "alice", clock.now))


@pytest.mark.parametrize("kind", list(BlockKind))
def test_block_is_immediate_with_reason_and_ends_sessions(
    kind: BlockKind, ops: Operations, people: Any, recorder: ListRecorder
) -> None:
    bob = people("Bob")
    _user(ops, bob, "bob")
    session = open_session(ops, "bob", bob.cert_der, "bob-session")
    assert not ops.lifecycle.is_blocked("bob")
    user = ops.lifecycle.block(OPERATOR, "bob", kind, f"{kind.value} order 5")
    assert user.blocked and user.block_kind == kind.value
    assert ops.lifecycle.is_blocked("bob")
    assert session_ended(ops, session)  # the same transaction: its next call fails
    notices = ops.lifecycle.outbox(CONTROLLER)
    if kind is BlockKind.VIOLATION:
        assert [(n.user_id, n.kind) for n in notices] == [("bob", "violation_block")]
    else:
        assert notices == []
    assert recorder.of("ops.user.blocked")[0]["details"]["kind"] == kind.value


def test_unblock_only_by_the_operator(ops: Operations, people: Any) -> None:
    _user(ops, people("Bob"), "bob")
    ops.lifecycle.block(CONTROLLER, "bob", "violation", "queries without task")
    with pytest.raises(PermissionDenied):
        ops.lifecycle.unblock(CONTROLLER, "bob", "sorry")
    with pytest.raises(PermissionDenied):
        ops.lifecycle.block(AGENCY, "bob", "violation", "I do not like him")
    user = ops.lifecycle.unblock(OPERATOR, "bob", "reinstated by order 9")
    assert not user.blocked and not ops.lifecycle.is_blocked("bob")
    assert user.block_kind is None and user.status_reason == "reinstated by order 9"
    with pytest.raises(InvalidState):
        ops.lifecycle.unblock(OPERATOR, "bob", "again")


def test_block_needs_a_known_user_a_kind_and_a_reason(ops: Operations, people: Any) -> None:
    _user(ops, people("Bob"), "bob")
    with pytest.raises(InvalidDocument):
        ops.lifecycle.block(OPERATOR, "bob", "violation", "  ")
    with pytest.raises(InvalidDocument):
        ops.lifecycle.block(OPERATOR, "bob", "holiday", "reason")
    with pytest.raises(NotFound):
        ops.lifecycle.block(OPERATOR, "nobody", "dismissal", "reason")
    assert not ops.lifecycle.is_blocked("nobody")


def test_the_block_is_the_row_the_gateway_reads(ops: Operations, people: Any) -> None:
    """One home: no mirror to miss. The store (every gateway process) sees the block,
    and an enrolment by the store is a user this domain blocks and lists."""
    bob = people("Bob")
    _user(ops, bob, "bob")
    store = Store(ops.ctx.engine.url.render_as_string(hide_password=False))
    try:
        ops.lifecycle.block(OPERATOR, "bob", "violation", "x")
        row = store.require_user("bob")
        assert (row.status, row.status_reason) == (USER_BLOCKED, "x")
        store.add_user(user_id="erin", full_name="Erin", role="analyst", phone="+77010000009")
        assert "erin" in {u.user_id for u in ops.lifecycle.users(OPERATOR)}
        assert not ops.lifecycle.manages("erin") and ops.lifecycle.manages("bob")
        ops.lifecycle.block(OPERATOR, "erin", "suspension", "order 3")
        assert not store.require_user("erin").active
    finally:
        store.close()
    assert len(ops.lifecycle.outbox(CONTROLLER)) == 1


def test_audit_failure_leaves_the_user_unblocked(
    ops: Operations, people: Any, recorder: ListRecorder
) -> None:
    from siogw_api.errors import AuditError

    bob = people("Bob")
    _user(ops, bob, "bob")
    session = open_session(ops, "bob", bob.cert_der, "bob-session")
    recorder.fail = True
    with pytest.raises(AuditError):
        ops.lifecycle.block(OPERATOR, "bob", "violation", "x")
    recorder.fail = False
    assert not ops.lifecycle.is_blocked("bob") and not session_ended(ops, session)
    assert ops.lifecycle.outbox(CONTROLLER) == []


def test_outbox_read_marks(ops: Operations, people: Any, recorder: ListRecorder) -> None:
    _user(ops, people("Bob"), "bob")
    ops.lifecycle.block(OPERATOR, "bob", "violation", "burst of queries")
    [notice] = ops.lifecycle.outbox(CONTROLLER)
    read = ops.lifecycle.mark_read(CONTROLLER, notice.id)
    assert read.read_at is not None
    assert ops.lifecycle.outbox(CONTROLLER) == []
    assert len(ops.lifecycle.outbox(CONTROLLER, unread_only=False)) == 1
    assert recorder.of("ops.outbox.read")[0]["details"]["notification_id"] == notice.id
    with pytest.raises(PermissionDenied):
        ops.lifecycle.outbox(OPERATOR)


# --- who may block whom (issue 13, defect 12; the table in docs/adr/0006) ----------------
def test_a_controller_blocks_agency_users_only(ops: Operations, people: Any) -> None:
    _user(ops, people("Bob"), "bob")
    _user(ops, people("Oleg"), "oleg", role="operator")
    _user(ops, people("Sara"), "sara", role="security_officer")
    _user(ops, people("Cora"), "cora", role="controller")
    for target in ("oleg", "sara", "cora"):
        with pytest.raises(PermissionDenied, match="controller may not block"):
            ops.lifecycle.block(CONTROLLER, target, "violation", "x")
        assert not ops.lifecycle.is_blocked(target)
    assert ops.lifecycle.block(CONTROLLER, "bob", "violation", "x").blocked


def test_the_security_officer_may_not_block_an_operator(ops: Operations, people: Any) -> None:
    _user(ops, people("Oleg"), "oleg", role="operator")
    _user(ops, people("Oleg2"), "oleg2", role="operator")
    with pytest.raises(PermissionDenied, match="security_officer may not block"):
        ops.lifecycle.block(SECURITY, "oleg", "suspension", "lost key")
    assert not ops.lifecycle.is_blocked("oleg")


def test_the_security_officer_lifts_its_blocks_but_not_a_violation(
    ops: Operations, people: Any
) -> None:
    _user(ops, people("Bob"), "bob")
    _user(ops, people("Cora"), "cora", role="controller")
    ops.lifecycle.block(SECURITY, "cora", "suspension", "lost key")
    assert not ops.lifecycle.unblock(SECURITY, "cora", "new key issued").blocked
    ops.lifecycle.block(CONTROLLER, "bob", "violation", "queries without task")
    with pytest.raises(PermissionDenied, match="only an operator may lift a violation"):
        ops.lifecycle.unblock(SECURITY, "bob", "sorry")
    assert ops.lifecycle.is_blocked("bob")
    assert not ops.lifecycle.unblock(OPERATOR, "bob", "order 9").blocked


def test_the_last_active_operator_is_never_blocked(ops: Operations, people: Any) -> None:
    _user(ops, people("Oleg"), "oleg", role="operator")
    with pytest.raises(PermissionDenied, match="last active operator"):
        ops.lifecycle.block(OPERATOR, "oleg", "dismissal", "order 1")
    assert not ops.lifecycle.is_blocked("oleg")
    _user(ops, people("Oleg2"), "oleg2", role="operator")
    assert ops.lifecycle.block(OPERATOR, "oleg", "dismissal", "order 1").blocked
    with pytest.raises(PermissionDenied, match="last active operator"):
        ops.lifecycle.block(OPERATOR, "oleg2", "dismissal", "order 2")
    assert not ops.lifecycle.is_blocked("oleg2")


def test_no_one_blocks_themselves(ops: Operations, people: Any) -> None:
    _user(ops, people("Sam"), "sam", role="security_officer")
    with pytest.raises(PermissionDenied, match="themselves"):
        ops.lifecycle.block(SECURITY, "sam", "suspension", "x")
    assert not ops.lifecycle.is_blocked("sam")


# --- transfer documents are single-use (issue 13, defect 13) ------------------------------
def test_a_replayed_transfer_edit_is_refused_with_the_original_id(
    ops: Operations, people: Any, clock: Clock, recorder: ListRecorder
) -> None:
    alice = people("Alice")
    _user(ops, alice, "alice")
    order = clock.now - _dt.timedelta(hours=1)
    document = transfer(alice, "alice", order)
    first = ops.lifecycle.file_transfer(document)
    resigned = transfer(alice, "alice", order)  # the same payload, a fresh signature
    assert resigned != document
    for replay in (document, resigned):
        with pytest.raises(DocumentReplayed) as caught:
            ops.lifecycle.file_transfer(replay)
        assert caught.value.original_id == first.id
        assert first.id in caught.value.message
        assert status_code_for(caught.value) == grpc.StatusCode.ALREADY_EXISTS
    assert [t.id for t in ops.lifecycle.transfers(OPERATOR)] == [first.id]
    assert len(recorder.of("ops.transfer.filed")) == 1
    # Another edit (another order) is a new document.
    other = ops.lifecycle.file_transfer(transfer(alice, "alice", order, order_number="ORD-18"))
    assert other.id != first.id
