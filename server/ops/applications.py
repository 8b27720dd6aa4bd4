"""Access applications (R3, §5-§6).

A person files an application as a DSSE envelope (``application/vnd.siogw.application+json``)
signed with the key of the certificate the application carries; the certificate must
chain to the gateway's trust store at the time of receipt. The payload is a JSON object::

    {"iin": "...", "full_name": "...", "unit": "...", "post": "...",
     "phone": "+7XXXXXXXXXX", "certificate": "<base64 DER>",
     "requested_role": "agency_user", "basis": "financial_monitoring",
     "corrects": "<id of the refused application this one corrects>"}   # optional

The operator decides within one day of receipt (``deadline_at``; :meth:`overdue` lists
the late ones): :meth:`ApplicationService.register` creates the user and certificate
(the control plane's ``users`` and ``certificates`` rows, active at once) and returns
the :class:`Enrolment` (the ``EnrollUser`` command's fields);
:meth:`ApplicationService.refuse` signs a refusal (``application/vnd.siogw.refusal+json``)
with the operator's :class:`~signing.api.Signer`, which the applicant fetches
(:meth:`refusal_for`) and checks (:func:`verify_refusal`).
After a refusal a corrected application may be filed (``corrects``).
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509

from server.ops import schema as s
from server.ops.base import (
    OpsContext,
    b64_field,
    parse_json_object,
    text_field,
    time_field,
    utc,
    utc_required,
)
from server.ops.certificates import insert_certificate
from server.ops.documents import (
    PAYLOAD_APPLICATION,
    PAYLOAD_REFUSAL,
    der_of,
    fingerprint,
    parse_certificate,
    peek_payload,
    sign_document,
    verify_document,
)
from server.ops.errors import (
    Duplicate,
    InvalidDocument,
    InvalidState,
    NotFound,
    PermissionDenied,
    SignerMismatch,
)
from server.ops.lifecycle import insert_user
from server.ops.roles import Action, Actor, Role, authorize
from server.resources.catalogue import ROLE_BASES
from server.resources.identifiers import validate_iin
from server.store import schema as cp
from signing.api import Signer
from signing.documents import refusal_document
from signing.dsse import decode_envelope, verify_envelope
from signing.trust import CertificateVerifier, TrustChecker
from siogw_api.timeutil import astana_iso

#: The operator decides within one day of receipt (§6).
DECISION_PERIOD = _dt.timedelta(days=1)
#: How far a client-signed refusal's ``refused_at`` may be from the gateway's clock.
REFUSAL_SKEW = _dt.timedelta(minutes=5)
_PHONE = re.compile(r"^\+7\d{10}$")


class ApplicationStatus:
    PENDING = "pending"
    REGISTERED = "registered"
    REFUSED = "refused"


@dataclass(frozen=True)
class Application:
    id: str
    iin: str
    full_name: str
    unit: str
    post: str
    phone: str
    requested_role: str
    basis: str
    cert_fingerprint: str
    corrects: str | None
    received_at: _dt.datetime
    deadline_at: _dt.datetime
    status: str
    decided_at: _dt.datetime | None
    decided_by: str | None
    refusal_reason: str | None
    user_id: str | None

    def overdue(self, now: _dt.datetime) -> bool:
        return self.status == ApplicationStatus.PENDING and now > self.deadline_at

    @property
    def deadline_astana(self) -> str:
        return astana_iso(self.deadline_at)


@dataclass(frozen=True)
class Enrolment:
    """What the gateway needs to enrol a registered user (``EnrollUser`` fields)."""

    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    basis: str
    certificate_der: bytes
    application_id: str


@dataclass(frozen=True)
class Refusal:
    """A verified refusal, as the applicant sees it."""

    application_id: str
    iin: str
    reason: str
    refused_by: str
    refused_at: _dt.datetime
    signer_subject: str


def _app(row: sa.Row[tuple[object, ...]]) -> Application:
    m = row._mapping
    return Application(
        id=m["id"], iin=m["iin"], full_name=m["full_name"], unit=m["unit"], post=m["post"],
        phone=m["phone"], requested_role=m["requested_role"], basis=m["basis"],
        cert_fingerprint=m["cert_fingerprint"], corrects=m["corrects"],
        received_at=utc_required(m["received_at"]), deadline_at=utc_required(m["deadline_at"]),
        status=m["status"], decided_at=utc(m["decided_at"]), decided_by=m["decided_by"],
        refusal_reason=m["refusal_reason"], user_id=m["user_id"],
    )


def _parse(doc: dict[str, Any]) -> dict[str, Any]:
    what = "the application"
    iin = validate_iin(text_field(doc, "iin", what, limit=12))
    phone = text_field(doc, "phone", what, limit=32)
    if not _PHONE.match(phone):
        raise InvalidDocument("the application's phone must be +7 and 10 digits (for SMS codes)")
    try:
        role = Role(text_field(doc, "requested_role", what, limit=32))
    except ValueError:
        raise InvalidDocument(
            "unknown requested_role; one of " + ", ".join(r.value for r in Role)
        ) from None
    basis = text_field(doc, "basis", what, required=False, limit=64)
    allowed = {b.value for b in ROLE_BASES[role]}
    if allowed and basis not in allowed:
        raise InvalidDocument(f"basis {basis!r} is not one the role {role.value} may name; "
                              f"one of {', '.join(sorted(allowed))}")
    corrects = doc.get("corrects")
    if corrects is not None and (not isinstance(corrects, str) or not corrects):
        raise InvalidDocument("the application's 'corrects' is not an application id")
    return {
        "iin": iin,
        "full_name": text_field(doc, "full_name", what, limit=300),
        # Incomplete unit/post are filed: refusing incomplete data is the operator's call.
        "unit": text_field(doc, "unit", what, required=False, limit=300),
        "post": text_field(doc, "post", what, required=False, limit=300),
        "phone": phone,
        "requested_role": role.value,
        "basis": basis,
        "cert_der": b64_field(doc, "certificate", what),
        "corrects": corrects,
    }


def _check_subject_iin(cert: Any, iin: str) -> None:
    """National (NCA-style) certificates carry ``serialNumber=IIN<12 digits>`` in the
    subject; when one does, it must be the applicant's IIN (R7: keys are personal)."""
    from cryptography.x509.oid import NameOID

    for attr in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        value = str(attr.value)
        if re.fullmatch(r"IIN\d{12}", value) and value[3:] != iin:
            raise SignerMismatch("the certificate belongs to another person (subject IIN)")


class ApplicationService:
    """See the module docstring."""

    def __init__(self, ctx: OpsContext, trust: TrustChecker) -> None:
        self.ctx = ctx
        self.trust = trust

    # --- the applicant's side --------------------------------------------------------
    def check(self, envelope_json: bytes, *, received_at: _dt.datetime | None = None) -> str:
        """Verify an application without filing it (nothing changes); returns the
        fingerprint of the certificate it carries and is signed with.

        The gateway checks first, then writes the request ahead (``server.writeahead``),
        then calls :meth:`file`, which verifies again.
        """
        received = utc_required(received_at) if received_at is not None else self.ctx.now()
        fields = self._verified(envelope_json, received)
        return fingerprint(fields["cert_der"])

    def file(self, envelope_json: bytes, *, received_at: _dt.datetime | None = None) -> Application:
        """Verify and file an application; returns it with its decision deadline."""
        received = utc_required(received_at) if received_at is not None else self.ctx.now()
        fields = self._verified(envelope_json, received)
        app_id = uuid.uuid4().hex
        with self.ctx.tx() as conn:
            pending = conn.execute(sa.select(s.applications.c.id).where(
                s.applications.c.iin == fields["iin"],
                s.applications.c.status == ApplicationStatus.PENDING)).first()
            if pending is not None:
                raise InvalidState(f"an application for this person is pending ({pending.id})")
            if fields["corrects"] is not None:
                prev = conn.execute(sa.select(s.applications).where(
                    s.applications.c.id == fields["corrects"])).first()
                if prev is None or prev.iin != fields["iin"]:
                    raise NotFound(f"no application {fields['corrects']!r} of this person "
                                   "to correct")
                if prev.status != ApplicationStatus.REFUSED:
                    raise InvalidState(f"application {prev.id} is {prev.status}, not refused")
            conn.execute(s.applications.insert().values(
                id=app_id, iin=fields["iin"], full_name=fields["full_name"], unit=fields["unit"],
                post=fields["post"], phone=fields["phone"],
                requested_role=fields["requested_role"], basis=fields["basis"],
                cert_der=fields["cert_der"], cert_fingerprint=fingerprint(fields["cert_der"]),
                envelope_json=envelope_json, corrects=fields["corrects"], received_at=received,
                deadline_at=received + DECISION_PERIOD, status=ApplicationStatus.PENDING,
            ))
            self.ctx.record(
                "ops.application.filed", f"applicant:{fingerprint(fields['cert_der'])[:16]}",
                "success",
                {"application_id": app_id, "requested_role": fields["requested_role"],
                 "cert_fingerprint": fingerprint(fields["cert_der"]),
                 "corrects": fields["corrects"],
                 "deadline_at": astana_iso(received + DECISION_PERIOD)},
            )
            row = conn.execute(sa.select(s.applications).where(s.applications.c.id == app_id)).one()
        return _app(row)

    def _verified(self, envelope_json: bytes, received: _dt.datetime) -> dict[str, Any]:
        """The fields of a verified application (signed with the certificate it carries)."""
        hint: list[Any] = []
        peeked = peek_payload(envelope_json).get("certificate")
        if isinstance(peeked, str):
            try:
                hint = [parse_certificate(b64_field({"c": peeked}, "c", "certificate"))]
            except InvalidDocument:
                hint = []
        doc, signer_cert = verify_document(
            envelope_json, PAYLOAD_APPLICATION, self.trust, certificates=hint, at=received
        )
        fields = _parse(doc)
        cert = parse_certificate(fields["cert_der"])
        if der_of(cert) != der_of(signer_cert):
            raise SignerMismatch("the application must be signed with the key of the "
                                 "certificate it carries")
        _check_subject_iin(cert, fields["iin"])
        return fields

    def status_for(self, application_id: str, cert_fingerprint: str) -> Application:
        """The applicant's view: only the holder of the application's certificate sees it."""
        app = self.get(application_id)
        if app.cert_fingerprint != cert_fingerprint:
            raise PermissionDenied("this application was filed with another certificate")
        return app

    def refusal_for(self, application_id: str, cert_fingerprint: str) -> bytes:
        """The signed refusal (DSSE JSON), for the holder of the application's certificate.

        The gateway authenticates the applicant by that certificate (a signed fetch or a
        TLS client certificate) and passes its fingerprint here.
        """
        app = self.status_for(application_id, cert_fingerprint)
        if app.status != ApplicationStatus.REFUSED:
            raise InvalidState(f"application {application_id} is {app.status}, not refused")
        with self.ctx.tx() as conn:
            data = conn.execute(sa.select(s.applications.c.refusal_envelope).where(
                s.applications.c.id == application_id)).scalar_one()
        return bytes(data)

    # --- the operator's side ---------------------------------------------------------
    def get(self, application_id: str) -> Application:
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(s.applications).where(
                s.applications.c.id == application_id)).first()
        if row is None:
            raise NotFound(f"no application {application_id!r}")
        return _app(row)

    def applications(self, actor: Actor, *, status: str | None = None) -> Sequence[Application]:
        authorize(actor.role, Action.APPLICATION_LIST)
        stmt = sa.select(s.applications).order_by(s.applications.c.received_at)
        if status is not None:
            stmt = stmt.where(s.applications.c.status == status)
        with self.ctx.tx() as conn:
            return [_app(r) for r in conn.execute(stmt).all()]

    def overdue(self, actor: Actor, now: _dt.datetime | None = None) -> Sequence[Application]:
        """Pending applications past their one-day decision deadline (R3)."""
        authorize(actor.role, Action.APPLICATION_LIST)
        when = utc_required(now) if now is not None else self.ctx.now()
        with self.ctx.tx() as conn:
            rows = conn.execute(sa.select(s.applications).where(
                s.applications.c.status == ApplicationStatus.PENDING,
                s.applications.c.deadline_at < when,
            ).order_by(s.applications.c.deadline_at)).all()
        return [_app(r) for r in rows]

    def _pending(self, conn: sa.Connection, application_id: str) -> sa.Row[tuple[object, ...]]:
        # FOR UPDATE: a concurrent decision waits here, then sees the application decided.
        row = conn.execute(sa.select(s.applications).where(
            s.applications.c.id == application_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no application {application_id!r}")
        if row.status != ApplicationStatus.PENDING:
            raise InvalidState(f"application {application_id} is {row.status} already")
        return row

    @staticmethod
    def _decide(conn: sa.Connection, application_id: str, **values: Any) -> None:
        """Move a pending application to its decision; a concurrent decision wins once."""
        result = conn.execute(s.applications.update().where(
            s.applications.c.id == application_id,
            s.applications.c.status == ApplicationStatus.PENDING).values(**values))
        if result.rowcount != 1:
            raise InvalidState(f"application {application_id} was decided concurrently")

    def register(
        self, actor: Actor, application_id: str, *, user_id: str | None = None
    ) -> Enrolment:
        """Register the applicant: an active user with the application's certificate."""
        authorize(actor.role, Action.APPLICATION_DECIDE)
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            row = self._pending(conn, application_id)
            uid = user_id or f"u-{uuid.uuid4().hex[:12]}"
            active = conn.execute(sa.select(cp.users.c.user_id).where(
                cp.users.c.iin == row.iin, cp.users.c.status == "active")).first()
            if active is not None:
                raise Duplicate(f"this person is registered already as {active.user_id}")
            insert_user(
                conn, user_id=uid, iin=row.iin, full_name=row.full_name, role=row.requested_role,
                unit=row.unit, post=row.post, phone=row.phone, basis=row.basis,
                application_id=application_id, now=now,
            )
            insert_certificate(conn, uid, parse_certificate(row.cert_der), now=now)
            self._decide(conn, application_id, status=ApplicationStatus.REGISTERED,
                         decided_at=now, decided_by=actor.user_id, user_id=uid)
            enrolment = Enrolment(
                user_id=uid, full_name=row.full_name, role=row.requested_role, unit=row.unit,
                post=row.post, phone=row.phone, basis=row.basis,
                certificate_der=bytes(row.cert_der), application_id=application_id,
            )
            self.ctx.record(
                "ops.application.registered", actor.user_id, "success",
                {"application_id": application_id, "user_id": uid, "role": row.requested_role,
                 "within_deadline": now <= utc_required(row.deadline_at)},
            )
        return enrolment

    def refuse(self, actor: Actor, application_id: str, reason: str, signer: Signer) -> bytes:
        """Refuse with a reason, signed with the operator's key; returns the DSSE JSON."""
        authorize(actor.role, Action.APPLICATION_DECIDE)
        reason = reason.strip()
        if not reason:
            raise InvalidDocument("a refusal needs a reason (false, incomplete or stale data)")
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            row = self._pending(conn, application_id)
            doc = refusal_payload(_app(row), reason, actor.user_id, now)
            envelope = sign_document(PAYLOAD_REFUSAL, doc, signer)
            self._decide(conn, application_id, status=ApplicationStatus.REFUSED,
                         decided_at=now, decided_by=actor.user_id,
                         refusal_reason=reason[:1000], refusal_envelope=envelope)
            self.ctx.record(
                "ops.application.refused", actor.user_id, "success",
                {"application_id": application_id, "reason": reason[:1000],
                 "signer_key_id": signer.key_id,
                 "within_deadline": now <= utc_required(row.deadline_at)},
            )
        return envelope

    def refuse_signed(
        self,
        actor: Actor,
        envelope_json: bytes,
        *,
        signer_certificates: Sequence[x509.Certificate],
        max_skew: _dt.timedelta = REFUSAL_SKEW,
    ) -> Refusal:
        """Record a refusal the operator signed on their own token (the gRPC path).

        The client builds the payload with :func:`refusal_payload` and signs it; the
        gateway passes the certificate(s) of the caller's session. Checks: the signature
        (chained to the trust store), that it was made with one of ``signer_certificates``,
        that ``refused_by`` is the actor, that the application and IIN match a pending
        application, and that ``refused_at`` is within ``max_skew`` of now. The envelope is
        stored exactly as signed and is what the applicant fetches.
        """
        authorize(actor.role, Action.APPLICATION_DECIDE)
        now = self.ctx.now()
        doc, signer_cert = verify_document(envelope_json, PAYLOAD_REFUSAL, self.trust,
                                           certificates=signer_certificates, at=now)
        if der_of(signer_cert) not in {der_of(c) for c in signer_certificates}:
            raise SignerMismatch("the refusal must be signed with the operator's own "
                                 "certificate")
        refusal = _refusal_from(doc, signer_cert.subject.rfc4514_string())
        if refusal.refused_by != actor.user_id:
            raise SignerMismatch(f"the refusal names {refusal.refused_by!r} as the operator, "
                                 f"not {actor.user_id!r}")
        if abs(refusal.refused_at - now) > max_skew:
            raise InvalidDocument("the refusal's refused_at is too far from now; sign it again")
        with self.ctx.tx() as conn:
            row = self._pending(conn, refusal.application_id)
            if row.iin != refusal.iin:
                raise InvalidDocument("the refusal's IIN is not the application's")
            self._decide(conn, refusal.application_id, status=ApplicationStatus.REFUSED,
                         decided_at=now, decided_by=actor.user_id,
                         refusal_reason=refusal.reason, refusal_envelope=envelope_json)
            self.ctx.record(
                "ops.application.refused", actor.user_id, "success",
                {"application_id": refusal.application_id, "reason": refusal.reason,
                 "signer_fingerprint": fingerprint(der_of(signer_cert)),
                 "within_deadline": now <= utc_required(row.deadline_at)},
            )
        return refusal


def refusal_payload(application: Application, reason: str, refused_by: str,
                    refused_at: _dt.datetime) -> dict[str, Any]:
    """The JSON a refusal signs (for clients that sign on the operator's token)."""
    if not reason.strip():
        raise InvalidDocument("a refusal needs a reason (false, incomplete or stale data)")
    return refusal_document(application.id, application.iin, reason, refused_by, refused_at)


def _refusal_from(doc: dict[str, Any], signer_subject: str) -> Refusal:
    what = "the refusal"
    return Refusal(
        application_id=text_field(doc, "application_id", what, limit=40),
        iin=text_field(doc, "iin", what, limit=12),
        reason=text_field(doc, "reason", what, limit=1000),
        refused_by=text_field(doc, "refused_by", what, limit=64),
        refused_at=time_field(doc, "refused_at", what),
        signer_subject=signer_subject,
    )


def verify_refusal(
    envelope_json: bytes, trust: TrustChecker, *, at: _dt.datetime | None = None
) -> Refusal:
    """The applicant's check of a refusal: a valid operator signature chained to ``trust``."""
    envelope = decode_envelope(envelope_json)
    verified = verify_envelope(envelope, CertificateVerifier(trust, at=at),
                               payload_types=[PAYLOAD_REFUSAL])
    doc = parse_json_object(verified.payload, "the refusal")
    return _refusal_from(doc, verified.signers[0].subject)
