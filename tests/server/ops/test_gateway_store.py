"""One home: what the operations domain commits is the gateway's real Store at once.

Users, certificates (and revocations) and maintenance windows have one table each; the
domain writes those rows, so there is nothing to mirror (and nothing a mirror can miss).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from typing import Any

import pytest

from audit import AuditRecord
from server.ops import Operations
from server.ops.documents import fingerprint
from server.ops.gateway import observe_audit_record
from server.store import Store
from server.store.users import USER_ACTIVE, USER_BLOCKED
from siogw_api.timeutil import now_utc
from tests.server.ops.conftest import OPERATOR, SECURITY, Clock
from tests.server.ops.helpers import application


@pytest.fixture
def store(db_url: str, ops: Operations) -> Iterator[Store]:
    st = Store(db_url).open()
    yield st
    st.drop_all()
    st.close()


def _session(store: Store, user_id: str, cert_der: bytes, name: str) -> str:
    store.create_session(token_hash=name, user_id=user_id, cert_fingerprint=fingerprint(cert_der),
                         factor="sms", expires_at=now_utc() + _dt.timedelta(hours=1))
    return name


def test_registration_block_unblock_reach_the_store(ops: Operations, store: Store,
                                                    people: Any) -> None:
    anna = people("Anna")
    app = ops.applications.file(application(anna))
    ops.applications.register(OPERATOR, app.id, user_id="anna")
    user = store.require_user("anna")
    assert (user.role, user.phone, user.status) == ("agency_user", "+77010000001", USER_ACTIVE)
    assert store.get_certificate(fingerprint(anna.cert_der)) is not None
    s1 = _session(store, "anna", anna.cert_der, "s1")
    ops.lifecycle.block(OPERATOR, "anna", "suspension", "order 12")
    assert store.require_user("anna").status == USER_BLOCKED
    assert store.require_user("anna").status_reason == "order 12"
    ended = store.get_session(s1)
    assert ended is not None and ended.ended_at is not None
    ops.lifecycle.unblock(OPERATOR, "anna", "order 13")
    assert store.require_user("anna").active


def test_certificates_and_windows_reach_the_store(ops: Operations, store: Store, people: Any,
                                                  clock: Clock) -> None:
    old, new = people("Bob"), people("Bob rotated")
    app = ops.applications.file(application(old))
    ops.applications.register(OPERATOR, app.id, user_id="bob")
    s1 = _session(store, "bob", old.cert_der, "s-old")
    ops.certificates.register(SECURITY, "bob", new.cert_der)
    assert store.get_certificate(fingerprint(new.cert_der)) is not None
    ops.certificates.revoke(SECURITY, fingerprint(old.cert_der), "keyCompromise")
    rev = store.revocation(format(old.cert.serial_number, "x"),
                           issuer=old.cert.issuer.rfc4514_string())
    assert rev is not None and rev.reason == "keyCompromise"
    ended = store.get_session(s1)
    assert ended is not None and ended.ended_at is not None
    t = now_utc()
    w = ops.journal.publish_window(OPERATOR, t - _dt.timedelta(minutes=1),
                                   t + _dt.timedelta(hours=1), "index rebuild", urgent=True)
    current = store.current_window(t)
    assert current is not None and current.id == w.id and current.description == "index rebuild"


def test_audit_records_feed_the_rules(ops: Operations, store: Store) -> None:
    rec = AuditRecord(actor="bob", event="query", outcome="success",
                      details={"resource": 1, "basis": "financial_monitoring", "task": " "})
    [alert] = observe_audit_record(ops, rec)
    assert alert.rule == "query_without_task" and alert.user_id == "bob"
