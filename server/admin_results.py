"""The typed results of AdminService commands (``AdminResponse.result``, issue 15).

One builder per result message, from the operations domain's records (:mod:`server.ops`)
or the store's rows. Times are ISO 8601 in Astana (+05:00); an absent value is "" (0 for
an absent number), as proto3 has no null.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable

from server.ops import (
    Alert,
    Application,
    CertificateInfo,
    CertificateStatus,
    Emergency,
    Enrolment,
    Notification,
    Refusal,
    Review,
    ReviewStatus,
    TransferEdit,
    UserRecord,
    Window,
)
from server.store.maintenance import Cancellation
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import admin_pb2


def _t(value: _dt.datetime | None) -> str:
    return astana_iso(value) if value is not None else ""


def user(u: UserRecord) -> admin_pb2.UserEntry:
    return admin_pb2.UserEntry(
        user_id=u.user_id, full_name=u.full_name, role=u.role, unit=u.unit, post=u.post,
        phone=u.phone, status=u.status, block_kind=u.block_kind or "",
        status_reason=u.status_reason or "", iin=u.iin or "", basis=u.basis or "",
        application_id=u.application_id or "")


def users(items: Iterable[UserRecord]) -> admin_pb2.UserList:
    return admin_pb2.UserList(users=[user(u) for u in items])


def certificate(info: CertificateInfo, warnings: Iterable[str] = ()) -> admin_pb2.CertificateEntry:
    return admin_pb2.CertificateEntry(
        fingerprint=info.fingerprint, user_id=info.user_id, serial_hex=info.serial_hex,
        issuer=info.issuer, subject=info.subject, not_before=_t(info.not_before),
        not_after=_t(info.not_after), token_label=info.token_label or "",
        registered_at=_t(info.registered_at), revoked_at=_t(info.revoked_at),
        revocation_reason=info.revocation_reason or "", warnings=list(warnings),
        pin_changed_at=_t(info.pin_changed_at), pin_reported_at=_t(info.pin_reported_at))


def certificates(items: Iterable[CertificateStatus]) -> admin_pb2.CertificateList:
    return admin_pb2.CertificateList(
        certificates=[certificate(c.certificate, c.warnings) for c in items])


def application(app: Application, now: _dt.datetime) -> admin_pb2.ApplicationEntry:
    return admin_pb2.ApplicationEntry(
        id=app.id, iin=app.iin, full_name=app.full_name, unit=app.unit, post=app.post,
        phone=app.phone, requested_role=app.requested_role, basis=app.basis,
        cert_fingerprint=app.cert_fingerprint, corrects=app.corrects or "",
        received_at=_t(app.received_at), deadline_at=_t(app.deadline_at), status=app.status,
        decided_at=_t(app.decided_at), decided_by=app.decided_by or "",
        refusal_reason=app.refusal_reason or "", user_id=app.user_id or "",
        overdue=app.overdue(now))


def applications(items: Iterable[Application], now: _dt.datetime) -> admin_pb2.ApplicationList:
    return admin_pb2.ApplicationList(applications=[application(a, now) for a in items])


def enrolment(e: Enrolment) -> admin_pb2.EnrolmentInfo:
    return admin_pb2.EnrolmentInfo(
        user_id=e.user_id, full_name=e.full_name, role=e.role, unit=e.unit, post=e.post,
        phone=e.phone, basis=e.basis, application_id=e.application_id)


def refusal(r: Refusal) -> admin_pb2.RefusalInfo:
    return admin_pb2.RefusalInfo(
        application_id=r.application_id, iin=r.iin, reason=r.reason, refused_by=r.refused_by,
        refused_at=_t(r.refused_at), signer_subject=r.signer_subject)


def transfer(t: TransferEdit) -> admin_pb2.TransferEntry:
    return admin_pb2.TransferEntry(
        id=t.id, user_id=t.user_id, unit=t.unit, post=t.post, order_number=t.order_number,
        order_signed_at=_t(t.order_signed_at), received_at=_t(t.received_at), late=t.late,
        status=t.status, applied_at=_t(t.applied_at), applied_by=t.applied_by or "",
        overdue=t.overdue)


def transfers(items: Iterable[TransferEdit]) -> admin_pb2.TransferList:
    return admin_pb2.TransferList(transfers=[transfer(t) for t in items])


def notice(n: Notification) -> admin_pb2.NoticeEntry:
    return admin_pb2.NoticeEntry(
        id=n.id, created_at=_t(n.created_at), user_id=n.user_id, kind=n.kind, reason=n.reason,
        alert_id=n.alert_id or 0, read_at=_t(n.read_at))


def outbox(items: Iterable[Notification]) -> admin_pb2.OutboxList:
    return admin_pb2.OutboxList(notices=[notice(n) for n in items])


def alert(a: Alert) -> admin_pb2.AlertEntry:
    return admin_pb2.AlertEntry(
        id=a.id, raised_at=_t(a.raised_at), rule=a.rule, user_id=a.user_id,
        blocking=a.blocking, summary=a.summary,
        details_json=json.dumps(dict(a.details), ensure_ascii=False, sort_keys=True,
                                default=str),
        record_seq=a.record_seq or 0, acknowledged_at=_t(a.acknowledged_at),
        acknowledged_by=a.acknowledged_by or "")


def alerts(items: Iterable[Alert]) -> admin_pb2.AlertList:
    return admin_pb2.AlertList(alerts=[alert(a) for a in items])


def emergency(e: Emergency) -> admin_pb2.Emergency:
    return admin_pb2.Emergency(
        id=e.id, onset_at=_t(e.onset_at), causes=e.causes, measures=e.measures,
        resolved_at=_t(e.resolved_at), recorded_by=e.recorded_by)


def emergencies(items: Iterable[Emergency]) -> admin_pb2.EmergencyList:
    return admin_pb2.EmergencyList(emergencies=[emergency(e) for e in items])


def window(w: Window) -> admin_pb2.MaintenanceEntry:
    return admin_pb2.MaintenanceEntry(
        id=w.id, starts_at=_t(w.starts_at), ends_at=_t(w.ends_at), description=w.what,
        published_by=w.published_by, urgent=w.urgent)


def cancellation(c: Cancellation) -> admin_pb2.MaintenanceEntry:
    return admin_pb2.MaintenanceEntry(
        id=c.id, starts_at=_t(c.starts_at), ends_at=_t(c.ends_at), description=c.description,
        published_by=c.published_by, cancelled_at=_t(c.cancelled_at),
        cancelled_by=c.cancelled_by, cancel_reason=c.reason)


def review(r: Review) -> admin_pb2.ReviewEntry:
    return admin_pb2.ReviewEntry(
        id=r.id, controller_id=r.controller_id, period_start=_t(r.period_start),
        period_end=_t(r.period_end), reviewed_at=_t(r.reviewed_at), note=r.note)


def review_statuses(items: Iterable[ReviewStatus]) -> admin_pb2.ReviewStatusList:
    return admin_pb2.ReviewStatusList(controllers=[
        admin_pb2.ReviewStatusEntry(
            controller_id=r.controller_id, last_review_at=_t(r.last_review_at),
            overdue=r.overdue, due_since=_t(r.due_since))
        for r in items])


#: Which ``AdminResponse.result`` field each result message goes in.
FIELD_BY_TYPE: dict[str, str] = {
    fd.message_type.full_name: fd.name
    for fd in admin_pb2.AdminResponse.DESCRIPTOR.oneofs_by_name["result"].fields
}


def respond(message: str, result: object | None, **kwargs: object) -> admin_pb2.AdminResponse:
    """An ``AdminResponse`` with ``result`` (a result message or None) in its oneof."""
    response = admin_pb2.AdminResponse(message=message, **kwargs)  # type: ignore[arg-type]
    if result is not None:
        name = FIELD_BY_TYPE[result.DESCRIPTOR.full_name]  # type: ignore[attr-defined]
        getattr(response, name).CopyFrom(result)
    return response
