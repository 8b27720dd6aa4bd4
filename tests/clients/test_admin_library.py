"""The client library's AdminService methods and their typed results (issue 15, point 3),
over both clients (``connect``: sync and asyncio) against the real gateway of
``client_world``."""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from clients import AdminOutcome, ClientError, message_dict
from siogw import demo
from siogw_api.timeutil import now_utc
from siogw_api.v1 import admin_pb2

from .conftest import ClientWorld


def _login(client_world: ClientWorld, client: Any, name: str) -> None:
    demo.login(client_world.world, client, client_world.person(name))


def test_lists_come_back_typed(client_world: ClientWorld, connect: Callable[..., Any]) -> None:
    with connect() as client:
        _login(client_world, client, "operator")
        users = client.list_users()
        assert isinstance(users, AdminOutcome)
        assert isinstance(users.result, admin_pb2.UserList)
        by_id = {u.user_id: u for u in users.result.users}
        analyst = client_world.person("analyst")
        assert by_id[analyst.user_id].role == "agency_user"
        assert by_id[analyst.user_id].status == "active"
        assert users.message == f"{len(by_id)} user(s)"
        assert users.receipt is not None and users.receipt.seq > 0

        shown = client.show_user(analyst.user_id)
        assert isinstance(shown.result, admin_pb2.UserEntry)
        assert shown.result.full_name == analyst.full_name
        with pytest.raises(Exception, match="no user"):
            client.show_user(f"nobody-{secrets.token_hex(3)}")

        certs = client.list_certificates(user_id=analyst.user_id)
        assert isinstance(certs.result, admin_pb2.CertificateList)
        [cert] = certs.result.certificates
        expires = analyst.certificate().not_valid_after_utc
        assert cert.not_after.endswith("+05:00")
        assert _dt.datetime.fromisoformat(cert.not_after) == expires.replace(microsecond=0)
        assert not cert.revoked_at
        # the plain-Python form keeps every field, with ints as ints
        doc = certs.as_dict()
        assert doc["result"]["certificates"][0]["fingerprint"] == cert.fingerprint
        assert isinstance(doc["receipt"]["seq"], int)

        emergencies = client.list_emergencies()
        assert isinstance(emergencies.result, admin_pb2.EmergencyList)


def test_maintenance_publish_cancel_and_journal(
    client_world: ClientWorld, connect: Callable[..., Any]
) -> None:
    start = now_utc() + _dt.timedelta(days=5)
    with connect() as client:
        _login(client_world, client, "operator")
        published = client.publish_maintenance(
            start, start + _dt.timedelta(hours=1), "index rebuild",
            window_id=f"lib-{secrets.token_hex(3)}")
        window = published.result
        assert isinstance(window, admin_pb2.MaintenanceEntry)
        assert window.published_by == client_world.person("operator").user_id
        assert window.id in [w.id for w in client.list_maintenance()]
        assert window.id in [w.id for w in client.get_journal().windows]

        cancelled = client.cancel_maintenance(window.id, "postponed")
        assert isinstance(cancelled.result, admin_pb2.MaintenanceEntry)
        assert cancelled.result.cancel_reason == "postponed" and cancelled.result.cancelled_at
        assert window.id not in [w.id for w in client.list_maintenance()]
        with pytest.raises(ClientError) as err:
            client.cancel_maintenance(window.id, "again")
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.reason == "WINDOW_NOT_CANCELLABLE"

        recorded = client.record_emergency(
            now_utc() - _dt.timedelta(minutes=30), "disk full on the log host",
            "space freed")
        item = recorded.result
        assert isinstance(item, admin_pb2.Emergency) and not item.resolved_at
        resolved = client.resolve_emergency(item.id)
        assert isinstance(resolved.result, admin_pb2.Emergency)
        assert resolved.result.resolved_at.endswith("+05:00")
        assert message_dict(resolved.result)["recorded_by"] == item.recorded_by


def test_a_command_for_another_role_is_refused(
    client_world: ClientWorld, connect: Callable[..., Any]
) -> None:
    with connect() as client:
        _login(client_world, client, "analyst")
        with pytest.raises(ClientError) as err:
            client.list_users()
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "may not run list_users" in err.value.server_message
        # reading the journal is every signed-in user's
        assert isinstance(client.get_journal(), admin_pb2.Journal)


def test_the_applicant_and_the_operator_sign_their_documents_client_side(
    client_world: ClientWorld, connect: Callable[..., Any], softhsm_store: Any,
    client_kind: str,
) -> None:
    """Application (the applicant's token), refusal (the operator's), the corrected
    application registered, and the new user's transfer edit (their own token)."""
    from server.resources.identifiers import make_iin
    from signing.ca import CertificateAuthority
    from tests.server.conftest import make_token_signer

    ca = CertificateAuthority.open(client_world.world.ca_dir)
    applicant = make_token_signer(softhsm_store, client_world.home / "secrets",
                                  f"lib-{client_kind[:4]}", ca)
    iin = make_iin(_dt.date(1993, 7, 8), "M", secrets.randbelow(9000) + 1)
    phone = f"+7701{secrets.randbelow(10**7):07d}"
    with connect() as client:
        first = client.file_application(applicant, iin=iin, full_name="Ruslan Applicant",
                                        phone=phone, basis="financial_monitoring")
        assert isinstance(first, admin_pb2.ApplicationStatus) and first.status == "pending"
        assert client.application_status(first.application_id, applicant).status == "pending"

        _login(client_world, client, "operator")
        pending = client.list_applications(status="pending")
        assert isinstance(pending.result, admin_pb2.ApplicationList)
        [entry] = [a for a in pending.result.applications if a.id == first.application_id]
        assert entry.iin == iin and not entry.overdue
        refused = client.refuse_application(first.application_id, "the unit is missing")
        assert isinstance(refused.result, admin_pb2.RefusalInfo)
        assert refused.result.refused_by == client_world.person("operator").user_id

        refusal = client.application_refusal(first.application_id, applicant)
        assert refusal.payload["reason"] == "the unit is missing"
        assert refusal.payload["iin"] == iin and refusal.document.startswith(b"{")

        second = client.file_application(
            applicant, iin=iin, full_name="Ruslan Applicant", phone=phone,
            basis="financial_monitoring", unit="Analytics", corrects=first.application_id)
        user_id = f"ruslan-{secrets.token_hex(2)}"
        registered = client.register_application(second.application_id, user_id=user_id)
        assert isinstance(registered.result, admin_pb2.EnrolmentInfo)
        assert registered.result.user_id == user_id

    with connect() as client:  # the new user files their transfer edit on their token
        client.login(user_id, applicant, factor="sms",
                     sms_code_provider=demo.sms_reader(client_world.world, user_id))
        filed = client.file_transfer("Investigations", "senior analyst", "ORD-9",
                                     now_utc() - _dt.timedelta(hours=1))
        assert isinstance(filed.result, admin_pb2.TransferEntry)
        assert filed.result.user_id == user_id and not filed.result.late
        with pytest.raises(ClientError) as err:  # not theirs to apply
            client.apply_transfer(filed.result.id)
        assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
