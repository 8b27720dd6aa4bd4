"""Prosecutor's supervision (R16, §22-§23).

A prosecutor registers a resolution -- number, date and scope (user ids and a period)
-- as a document signed on their token (``application/vnd.siogw.resolution+json``)
with a certificate registered to them::

    {"number": "12-345", "date": "2026-11-20", "user_ids": ["u-1", "u-2"],
     "period_start": "2026-11-01T00:00:00+05:00", "period_end": "2026-12-01T00:00:00+05:00"}

Reads of the audit trail (the scoped users' query records, through the same
:class:`~server.ops.reports.QueryIndex` as Reports) are allowed only inside a
resolution's scope and only to the prosecutor who registered it. Every read, allowed or
denied, is itself recorded (``prosecutor.read``, outcome ``success`` / ``refused``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509

from server.ops import schema as s
from server.ops.base import OpsContext, text_field, time_field, utc_required
from server.ops.certificates import active_certificates
from server.ops.documents import PAYLOAD_RESOLUTION, der_of, fingerprint, verify_document
from server.ops.errors import Duplicate, InvalidDocument, PermissionDenied, SignerMismatch
from server.ops.reports import QueryFilter, QueryIndex, ReportPage, fetch_page
from server.ops.roles import Action, Actor, authorize
from signing.trust import TrustChecker
from siogw_api.timeutil import astana_iso

MAX_SCOPE_USERS = 1000


@dataclass(frozen=True)
class Resolution:
    id: str
    number: str
    date: str
    prosecutor_id: str
    user_ids: tuple[str, ...]
    period_start: _dt.datetime
    period_end: _dt.datetime
    registered_at: _dt.datetime


def _resolution(row: sa.Row[tuple[object, ...]]) -> Resolution:
    m = row._mapping
    return Resolution(
        id=m["id"], number=m["number"], date=m["resolution_date"],
        prosecutor_id=m["prosecutor_id"], user_ids=tuple(json.loads(m["scope_users_json"])),
        period_start=utc_required(m["period_start"]), period_end=utc_required(m["period_end"]),
        registered_at=utc_required(m["registered_at"]),
    )


def _parse(doc: dict[str, Any]) -> dict[str, Any]:
    what = "the resolution"
    date = text_field(doc, "date", what, limit=10)
    try:
        _dt.date.fromisoformat(date)
    except ValueError:
        raise InvalidDocument("the resolution's date is not YYYY-MM-DD") from None
    users = doc.get("user_ids")
    if (not isinstance(users, list) or not users or len(users) > MAX_SCOPE_USERS
            or not all(isinstance(u, str) and u and len(u) <= 64 for u in users)):
        raise InvalidDocument(f"the resolution's user_ids must be 1..{MAX_SCOPE_USERS} user ids")
    start = time_field(doc, "period_start", what)
    end = time_field(doc, "period_end", what)
    if end <= start:
        raise InvalidDocument("the resolution's period must end after it starts")
    return {"number": text_field(doc, "number", what, limit=100), "date": date,
            "user_ids": sorted(set(users)), "period_start": start, "period_end": end}


class ProsecutorService:
    """See the module docstring."""

    def __init__(self, ctx: OpsContext, trust: TrustChecker, index: QueryIndex) -> None:
        self.ctx = ctx
        self.trust = trust
        self.index = index

    def register_resolution(
        self, actor: Actor, envelope_json: bytes, *,
        received_at: _dt.datetime | None = None,
        signer_certificates: Sequence[x509.Certificate] | None = None,
    ) -> Resolution:
        """Verify and register a resolution signed by ``actor``.

        The signer must be one of ``signer_certificates`` (the gateway passes the
        caller's session certificate) or, when not given, of the actor's unrevoked
        registered certificates (``certificates``, see :mod:`server.ops.certificates`).
        """
        authorize(actor.role, Action.RESOLUTION_REGISTER)
        received = utc_required(received_at) if received_at is not None else self.ctx.now()
        if signer_certificates is not None:
            certs = list(signer_certificates)
        else:
            with self.ctx.tx() as conn:
                certs = active_certificates(conn, actor.user_id)
        if not certs:
            raise SignerMismatch(f"{actor.user_id} has no registered certificate to sign with")
        doc, signer_cert = verify_document(envelope_json, PAYLOAD_RESOLUTION, self.trust,
                                           certificates=certs, at=received)
        if fingerprint(der_of(signer_cert)) not in {fingerprint(der_of(c)) for c in certs}:
            raise SignerMismatch("a resolution must be signed with the prosecutor's own "
                                 "registered certificate")
        fields = _parse(doc)
        res_id = uuid.uuid4().hex
        with self.ctx.tx() as conn:
            if conn.execute(sa.select(s.resolutions.c.id).where(
                    s.resolutions.c.number == fields["number"])).first() is not None:
                raise Duplicate(f"resolution {fields['number']} is registered already")
            conn.execute(s.resolutions.insert().values(
                id=res_id, number=fields["number"], resolution_date=fields["date"],
                prosecutor_id=actor.user_id, scope_users_json=json.dumps(fields["user_ids"]),
                period_start=fields["period_start"], period_end=fields["period_end"],
                envelope_json=envelope_json, cert_fingerprint=fingerprint(der_of(signer_cert)),
                registered_at=received))
            self.ctx.record("ops.resolution.registered", actor.user_id, "success", {
                "resolution_id": res_id, "number": fields["number"], "date": fields["date"],
                "users": fields["user_ids"], "period_start": astana_iso(fields["period_start"]),
                "period_end": astana_iso(fields["period_end"])})
            row = conn.execute(sa.select(s.resolutions).where(s.resolutions.c.id == res_id)).one()
        return _resolution(row)

    def resolutions(self, actor: Actor) -> Sequence[Resolution]:
        """The actor's own resolutions."""
        authorize(actor.role, Action.RESOLUTION_REGISTER)
        with self.ctx.tx() as conn:
            rows = conn.execute(sa.select(s.resolutions).where(
                s.resolutions.c.prosecutor_id == actor.user_id)
                .order_by(s.resolutions.c.registered_at)).all()
        return [_resolution(r) for r in rows]

    def _deny(self, actor: Actor, details: dict[str, Any], why: str) -> PermissionDenied:
        self.ctx.record("prosecutor.read", actor.user_id, "refused", {**details, "reason": why})
        return PermissionDenied(why)

    def read_trail(
        self,
        actor: Actor,
        resolution_id: str,
        *,
        user_ids: Sequence[str] | None = None,
        since: _dt.datetime | None = None,
        until: _dt.datetime | None = None,
        after_seq: int | None = None,
        limit: int = 100,
        narrow: QueryFilter | None = None,
    ) -> ReportPage:
        """Read scoped users' query records within the resolution; recorded either way.

        ``narrow`` adds the Reports criteria (resource, basis, task, outcome, unit,
        subject, reason) inside the scope; its users and period are not used (the scope
        and ``user_ids``/``since``/``until`` decide them)."""
        details: dict[str, Any] = {
            "resolution_id": resolution_id, "role": str(actor.role),
            "users": list(user_ids) if user_ids is not None else None,
            "since": astana_iso(since) if since is not None else None,
            "until": astana_iso(until) if until is not None else None,
        }
        if narrow is not None and narrow.describe():
            details["filter"] = narrow.describe()
        try:
            authorize(actor.role, Action.AUDIT_TRAIL_READ)
        except PermissionDenied as exc:
            raise self._deny(actor, details, exc.message) from None
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(s.resolutions).where(
                s.resolutions.c.id == resolution_id)).first()
        if row is None or row.prosecutor_id != actor.user_id:
            raise self._deny(actor, details, f"no resolution {resolution_id!r} of {actor.user_id}")
        res = _resolution(row)
        details["number"] = res.number
        users = tuple(user_ids) if user_ids is not None else res.user_ids
        outside = sorted(set(users) - set(res.user_ids))
        if not users or outside:
            raise self._deny(actor, details,
                             f"users outside resolution {res.number}: {', '.join(outside)}")
        start = utc_required(since) if since is not None else res.period_start
        end = utc_required(until) if until is not None else res.period_end
        if start < res.period_start or end > res.period_end or end <= start:
            raise self._deny(
                actor, details,
                f"period outside resolution {res.number} ({astana_iso(res.period_start)} .. "
                f"{astana_iso(res.period_end)})")
        scoped = dataclasses.replace(narrow or QueryFilter(), user_ids=users, since=start,
                                     until=end)
        page = fetch_page(self.index, scoped, after_seq, limit)
        self.ctx.record("prosecutor.read", actor.user_id, "success",
                        {**details, "rows": len(page.rows), "after_seq": after_seq})
        return page
