"""Enrolling a compliance officer writes the user and their provider in one transaction
(issue 16): a failure writing the provider leaves no user behind, so the same enrolment
can simply be sent again; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from server.admin import execute
from server.reporting.samples import PROVIDER_BIN
from server.reporting.store import ReportingStore
from server.store import Store
from siogw_api.errors import StorageError
from siogw_api.v1 import admin_pb2


def enrol(store: Store, user_id: str) -> str:
    return execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
        user_id=user_id, full_name="Kora Officer", role="compliance_officer",
        phone="+77010000041", provider_bin=PROVIDER_BIN)))


def _rename(store: Store, old: str, new: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


def test_an_officer_is_never_enrolled_without_their_provider(store: Store) -> None:
    # the provider's row cannot be written (its table is away): the enrolment fails as a
    # whole, and the user row inserted before it in the same transaction is rolled back
    _rename(store, "provider_officers", "provider_officers_away")
    with pytest.raises(StorageError):
        enrol(store, "kora")
    assert store.get_user("kora") is None
    _rename(store, "provider_officers_away", "provider_officers")
    assert ReportingStore(store.engine).provider_of("kora") is None

    # nothing half-done to trip over: the same enrolment again succeeds
    assert enrol(store, "kora") == "user kora enrolled as compliance_officer"
    user = store.get_user("kora")
    assert user is not None and user.role == "compliance_officer"
    assert ReportingStore(store.engine).provider_of("kora") == PROVIDER_BIN


def test_other_roles_get_no_provider_row(store: Store) -> None:
    execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
        user_id="ana", full_name="Ana Analyst", role="agency_user", phone="+77010000042")))
    assert store.get_user("ana") is not None
    assert ReportingStore(store.engine).provider_of("ana") is None
