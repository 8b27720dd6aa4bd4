"""Certificates of registered users (R8): registration after a key rotation, revocation
effective at once, CRL import, and the list with expiry and PIN-age warnings.

A certificate is one row of the control plane's ``certificates`` table and a
revocation one row of ``revocations`` (:mod:`server.store.certificates`): the rows the
gateway's session check reads on every call, in every process. Revoking here ends the
certificate's live sessions in the same transaction
(:func:`server.store.certificates.revoke_serial`); the first revocation of a serial
number stands, whoever made it (this service, ``siogw admin revoke-cert``, a CRL).
:class:`CertificateInfo` is the operations view of a row, revoked or not.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection

from server.ops.base import OpsContext, utc, utc_required
from server.ops.documents import der_of, fingerprint, parse_certificate
from server.ops.errors import Duplicate, InvalidDocument, NotFound
from server.ops.roles import Action, Actor, authorize
from server.store import schema as cp
from server.store.certificates import ANY_ISSUER, revoke_serial, revoked_clause
from server.store.certificates import insert_certificate as insert_row
from signing.api import key_id_for
from signing.pin_ages import pin_age_warning
from signing.trust import TrustChecker
from siogw_api.timeutil import astana_iso

#: Warn this many days before a certificate expires.
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class CertificateInfo:
    fingerprint: str
    user_id: str
    serial_hex: str
    issuer: str
    subject: str
    #: None only for a certificate whose DER does not parse (never one registered here).
    not_before: _dt.datetime | None
    not_after: _dt.datetime | None
    token_label: str | None
    registered_at: _dt.datetime
    revoked_at: _dt.datetime | None
    revocation_reason: str | None
    #: The token's last PIN change as reported at the latest login with this certificate
    #: (§12; None: not reported), and when that login was (None: no login reported).
    pin_changed_at: _dt.datetime | None = None
    pin_reported_at: _dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class CertificateStatus:
    """A certificate and what is wrong or about to be wrong with it."""

    certificate: CertificateInfo
    warnings: tuple[str, ...]


_c = cp.certificates.c


def _first_revocation(column: Any) -> Any:
    return (sa.select(column).where(revoked_clause(_c.issuer, _c.serial_hex))
            .order_by(cp.revocations.c.revoked_at).limit(1).scalar_subquery())


#: Certificates with their first revocation (under their issuer or any issuer), if any.
_CERTIFICATES = sa.select(
    _c.fingerprint, _c.user_id, _c.serial_hex, _c.issuer, _c.subject, _c.not_before,
    _c.not_after, _c.token_label, _c.registered_at, _c.der, _c.pin_changed_at,
    _c.pin_reported_at,
    _first_revocation(cp.revocations.c.revoked_at).label("revoked_at"),
    _first_revocation(cp.revocations.c.reason).label("revocation_reason"),
)
_NOT_REVOKED = ~sa.exists().where(revoked_clause(_c.issuer, _c.serial_hex))


def _info(row: Any) -> CertificateInfo:
    m = row._mapping
    return CertificateInfo(
        fingerprint=m["fingerprint"], user_id=m["user_id"], serial_hex=m["serial_hex"],
        issuer=m["issuer"], subject=m["subject"], not_before=utc(m["not_before"]),
        not_after=utc(m["not_after"]), token_label=m["token_label"],
        registered_at=utc_required(m["registered_at"]), revoked_at=utc(m["revoked_at"]),
        revocation_reason=m["revocation_reason"], pin_changed_at=utc(m["pin_changed_at"]),
        pin_reported_at=utc(m["pin_reported_at"]),
    )


def _get(conn: Connection, fp: str) -> Any:
    return conn.execute(_CERTIFICATES.where(_c.fingerprint == fp)).first()


def insert_certificate(
    conn: Connection,
    user_id: str,
    cert: x509.Certificate,
    *,
    now: _dt.datetime,
    token_label: str | None = None,
) -> CertificateInfo:
    """Bind ``cert`` to ``user_id`` (idempotent for the same user; keys are personal, R7)."""
    der = der_of(cert)
    fp = fingerprint(der)
    row = _get(conn, fp)
    if row is not None:
        if row.user_id != user_id:
            raise Duplicate(f"certificate {fp[:16]}… is registered to another user")
        return _info(row)
    insert_row(conn, user_id, der, serial_hex=format(cert.serial_number, "x"),
               key_id=key_id_for(cert.public_key()),  # type: ignore[arg-type]
               now=now, token_label=token_label)
    fresh = _get(conn, fp)
    assert fresh is not None
    return _info(fresh)


def active_certificates(conn: Connection, user_id: str) -> list[x509.Certificate]:
    """The user's registered, unrevoked certificates."""
    rows = conn.execute(sa.select(_c.der).where(_c.user_id == user_id, _NOT_REVOKED)).all()
    return [parse_certificate(r.der) for r in rows]


class CertificateService:
    """See the module docstring."""

    def __init__(self, ctx: OpsContext, trust: TrustChecker | None = None) -> None:
        self.ctx = ctx
        self.trust = trust

    def get(self, fp: str) -> CertificateInfo:
        with self.ctx.tx() as conn:
            row = _get(conn, fp)
        if row is None:
            raise NotFound(f"no certificate {fp[:16]}…")
        return _info(row)

    def register(
        self, actor: Actor, user_id: str, certificate_der: bytes, *, token_label: str | None = None
    ) -> CertificateInfo:
        """Register a user's new certificate (after a key rotation); checked against trust."""
        authorize(actor.role, Action.CERTIFICATE_REGISTER)
        cert = parse_certificate(certificate_der)
        now = self.ctx.now()
        if self.trust is not None:
            self.trust.verify_certificate(cert, at=now)
        with self.ctx.tx() as conn:
            known = sa.select(cp.users.c.user_id).where(cp.users.c.user_id == user_id)
            if conn.execute(known).first() is None:
                raise NotFound(f"no user {user_id!r}")
            info = insert_certificate(conn, user_id, cert, now=now, token_label=token_label)
            self.ctx.record(
                "ops.certificate.registered", actor.user_id, "success",
                {"user_id": user_id, "fingerprint": info.fingerprint,
                 "serial_hex": info.serial_hex, "not_after": astana_iso(info.not_after)},
            )
        return info

    def _revoke(
        self, conn: Connection, actor_id: str, row: Any, reason: str,
        at: _dt.datetime, source: str,
    ) -> CertificateInfo:
        revoke_serial(conn, row.serial_hex, row.issuer or ANY_ISSUER, reason[:500], at,
                      fingerprints=[row.fingerprint])
        self.ctx.record(
            "ops.certificate.revoked", actor_id, "success",
            {"user_id": row.user_id, "fingerprint": row.fingerprint,
             "serial_hex": row.serial_hex, "reason": reason, "revoked_at": astana_iso(at),
             "source": source},
        )
        fresh = _get(conn, row.fingerprint)
        assert fresh is not None
        return _info(fresh)

    def revoke(
        self, actor: Actor, fp: str, reason: str, *, at: _dt.datetime | None = None
    ) -> CertificateInfo:
        """Revoke at once (R8: a lost key); idempotent (the first revocation stands)."""
        authorize(actor.role, Action.CERTIFICATE_REVOKE)
        reason = reason.strip()
        if not reason:
            raise InvalidDocument("a revocation needs a reason")
        when = utc_required(at) if at is not None else self.ctx.now()
        with self.ctx.tx() as conn:
            row = _get(conn, fp)
            if row is None:
                raise NotFound(f"no certificate {fp[:16]}…")
            if row.revoked_at is not None:
                return _info(row)
            return self._revoke(conn, actor.user_id, row, reason, when, "order")

    def import_crl(self, actor: Actor, data: bytes) -> list[CertificateInfo]:
        """Apply a CRL signed by a trusted CA: registered certificates it lists are revoked.

        The CRL's signature is checked against the trust store's anchors and
        intermediates (an unknown or bad signer is :class:`InvalidDocument`).
        """
        authorize(actor.role, Action.CRL_IMPORT)
        try:
            crl = (x509.load_pem_x509_crl(data) if b"-----BEGIN" in data
                   else x509.load_der_x509_crl(data))
        except (ValueError, x509.InvalidVersion) as exc:
            raise InvalidDocument("not a PEM or DER CRL", detail=str(exc)[:200]) from None
        if self.trust is None:
            raise InvalidDocument("no trust store configured to check the CRL's signature")
        issuers = [c for c in (*self.trust.anchors, *self.trust.intermediates)
                   if c.subject == crl.issuer]
        if not any(_crl_signed_by(crl, c) for c in issuers):
            raise InvalidDocument(f"the CRL of {crl.issuer.rfc4514_string()} is not signed by "
                                  "a trusted CA")
        issuer = crl.issuer.rfc4514_string()
        out: list[CertificateInfo] = []
        with self.ctx.tx() as conn:
            rows = conn.execute(_CERTIFICATES.where(_c.issuer == issuer, _NOT_REVOKED)).all()
            for row in rows:
                entry = crl.get_revoked_certificate_by_serial_number(int(row.serial_hex, 16))
                if entry is None:
                    continue
                out.append(self._revoke(conn, actor.user_id, row, "crl",
                                        utc_required(entry.revocation_date_utc), "crl"))
            self.ctx.record("ops.crl.imported", actor.user_id, "success",
                            {"issuer": issuer, "revoked": len(out)})
        return out

    def overview(
        self,
        actor: Actor,
        *,
        now: _dt.datetime | None = None,
        pin_ages: Mapping[str, _dt.datetime] | None = None,
        expiry_warning_days: int = EXPIRY_WARNING_DAYS,
        user_id: str | None = None,
    ) -> Sequence[CertificateStatus]:
        """Every registered certificate with its warnings (expired / expiring / revoked /
        PIN older than 30 days or of unknown age). The PIN's age is what the user's client
        reported at its latest login with the certificate (``pin_changed_at``, §12) or,
        when ``pin_ages`` is given (token label -> last PIN change, as
        ``signing.pin_ages.load_pin_ages`` returns: tokens on the gateway's host), the
        later of the two; with neither, a certificate that logged in without reporting
        it, or whose token has a label, is warned of as of unknown age."""
        authorize(actor.role, Action.CERTIFICATE_LIST)
        when = utc_required(now) if now is not None else self.ctx.now()
        stmt = _CERTIFICATES.order_by(_c.user_id, _c.registered_at)
        if user_id is not None:
            stmt = stmt.where(_c.user_id == user_id)
        with self.ctx.tx() as conn:
            infos = [_info(r) for r in conn.execute(stmt).all()]
        out: list[CertificateStatus] = []
        for info in infos:
            warnings: list[str] = []
            if info.revoked_at is not None:
                warnings.append(f"revoked at {astana_iso(info.revoked_at)} "
                                f"({info.revocation_reason})")
            elif info.not_after is None:
                warnings.append("the certificate does not parse")
            elif info.not_after <= when:
                warnings.append(f"expired at {astana_iso(info.not_after)}")
            elif info.not_after - when <= _dt.timedelta(days=expiry_warning_days):
                days = (info.not_after - when).days
                warnings.append(f"expires in {days} day(s), at {astana_iso(info.not_after)}")
            line = _pin_warning(info, pin_ages, when)
            if line is not None:
                warnings.append(line.removeprefix("warning: "))
            out.append(CertificateStatus(info, tuple(warnings)))
        return out


def _pin_warning(info: CertificateInfo, pin_ages: Mapping[str, _dt.datetime] | None,
                 when: _dt.datetime) -> str | None:
    """The PIN-age warning of a live certificate (:meth:`CertificateService.overview`)."""
    if info.revoked_at is not None:
        return None
    on_host = pin_ages.get(info.token_label) if pin_ages and info.token_label else None
    known = [t for t in (info.pin_changed_at, on_host) if t is not None]
    if not known and info.pin_reported_at is None and not (pin_ages is not None
                                                          and info.token_label):
        return None  # nothing was ever reported, and no token of the host to look at
    label = info.token_label or f"{info.user_id}, serial {info.serial_hex}"
    return pin_age_warning(label, max(known) if known else None, when)


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
