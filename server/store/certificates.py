"""Certificates bound to users, and revocations (R7, R8).

A certificate is one ``certificates`` row: its user, serial number, key id, DER and
what the operations domain shows of it (issuer, subject, validity, token label). It is
revoked when ``revocations`` holds its serial number under its issuer (or under
:data:`ANY_ISSUER`); nothing else records a revocation. Revoking ends the certificate's
live sessions in the same transaction, whoever revokes: :meth:`CertificateStore.revoke`
and the operations domain (:mod:`server.ops.certificates`) both call :func:`revoke_serial`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from server.store.base import StoreBase
from server.store.errors import CertificateInUse
from server.store.schema import certificates, revocations, sessions
from server.store.users import UserStore
from signing.revocation import REASONS, RevocationEntry, check_reason
from siogw_api.errors import InputError
from siogw_api.timeutil import ensure_utc, now_utc

#: Issuer wildcard for a revocation ordered by serial alone for an unregistered cert.
ANY_ISSUER = "*"


@dataclass(frozen=True)
class CertRow:
    fingerprint: str
    user_id: str
    serial_hex: str
    key_id: str
    der: bytes


@dataclass(frozen=True)
class Revocation:
    issuer: str
    serial_hex: str
    reason: str
    revoked_at: _dt.datetime


def fingerprint(der: bytes) -> str:
    """Certificate fingerprint: lowercase hex SHA-256 of its DER."""
    return hashlib.sha256(der).hexdigest()


def normalize_serial(serial_hex: str) -> str:
    """Serial numbers as lowercase hex without leading zeros or ``0x``/colons."""
    text = serial_hex.strip().lower().replace(":", "")
    text = text.removeprefix("0x")
    try:
        value = int(text, 16)
    except ValueError as exc:
        raise InputError(f"not a hexadecimal serial number: {serial_hex!r}") from exc
    return format(value, "x")


def _issuer_of(der: bytes) -> str:
    try:
        return x509.load_der_x509_certificate(der).issuer.rfc4514_string()
    except ValueError:
        return ANY_ISSUER


def details_of(der: bytes) -> dict[str, Any]:
    """Issuer, subject and validity read from the DER (empty when it does not parse)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    return {"issuer": cert.issuer.rfc4514_string()[:500],
            "subject": cert.subject.rfc4514_string()[:500],
            "not_before": cert.not_valid_before_utc, "not_after": cert.not_valid_after_utc}


def insert_certificate(
    conn: Connection, user_id: str, der: bytes, *, serial_hex: str, key_id: str,
    now: _dt.datetime, token_label: str | None = None,
) -> None:
    """Insert a certificate row (the caller checked it is new) in ``conn``'s transaction."""
    conn.execute(
        certificates.insert().values(
            fingerprint=fingerprint(der), user_id=user_id, serial_hex=normalize_serial(serial_hex),
            key_id=key_id, der=der, registered_at=now, token_label=token_label,
            **details_of(der),
        )
    )


def revoked_clause(issuer: Any, serial_hex: Any) -> Any:
    """Revocations of ``serial_hex`` under ``issuer`` or :data:`ANY_ISSUER` (columns or
    values): a certificate is revoked when this matches a row."""
    return sa.and_(revocations.c.serial_hex == serial_hex,
                   revocations.c.issuer.in_([issuer, ANY_ISSUER]))


def revoke_serial(
    conn: Connection, serial_hex: str, issuer: str, reason: str, at: _dt.datetime,
    *, fingerprints: Sequence[str] = (),
) -> bool:
    """Record the revocation of ``serial_hex`` by ``issuer`` unless one exists (the first
    stands), and end the live sessions of ``fingerprints``, in ``conn``'s transaction.
    True if a row was added."""
    serial = normalize_serial(serial_hex)
    known = conn.execute(
        sa.select(revocations.c.serial_hex).where(revoked_clause(issuer, serial))
    ).first()
    if known is None:
        conn.execute(revocations.insert().values(
            issuer=issuer, serial_hex=serial, reason=reason, revoked_at=at))
    end_sessions_of(conn, fingerprints, at)
    return known is None


def end_sessions_of(conn: Connection, fingerprints: Sequence[str], at: _dt.datetime) -> None:
    if fingerprints:
        conn.execute(
            sessions.update()
            .where(sessions.c.cert_fingerprint.in_(list(fingerprints)),
                   sessions.c.ended_at.is_(None))
            .values(ended_at=at)
        )


class CertificateStore(UserStore, StoreBase):
    """The certificate and revocation methods of :class:`server.store.Store`."""

    def register_certificate(
        self, user_id: str, der: bytes, *, serial_hex: str, key_id: str,
        token_label: str | None = None,
    ) -> CertRow:
        """Bind a certificate to a user. A certificate belongs to exactly one user."""
        self.require_user(user_id)
        fp = fingerprint(der)
        existing = self.get_certificate(fp)
        if existing is not None:
            if existing.user_id != user_id:
                raise CertificateInUse(
                    f"certificate {fp[:16]}… is registered to another user"
                )
            return existing
        with self._tx() as conn:
            insert_certificate(conn, user_id, der, serial_hex=serial_hex, key_id=key_id,
                               now=now_utc(), token_label=token_label)
        return CertRow(fp, user_id, normalize_serial(serial_hex), key_id, der)

    def get_certificate(self, fp: str) -> CertRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(certificates).where(certificates.c.fingerprint == fp)
            ).first()
        if row is None:
            return None
        return CertRow(row.fingerprint, row.user_id, row.serial_hex, row.key_id, row.der)

    def record_pin_report(
        self, fp: str, pin_changed_at: _dt.datetime | None, *, reported_at: _dt.datetime
    ) -> None:
        """Keep what a login with certificate ``fp`` reported of its token's last PIN
        change (``None``: unknown) and when (§12; the certificate list shows it)."""
        with self._tx() as conn:
            conn.execute(certificates.update().where(certificates.c.fingerprint == fp).values(
                pin_changed_at=pin_changed_at, pin_reported_at=reported_at))

    def certificates_by_key_id(self, key_id: str) -> list[CertRow]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(certificates).where(certificates.c.key_id == key_id)
            ).all()
        return [CertRow(r.fingerprint, r.user_id, r.serial_hex, r.key_id, r.der) for r in rows]

    def revoke(
        self,
        serial_hex: str,
        reason: str,
        *,
        issuer: str | None = None,
        at: _dt.datetime | None = None,
    ) -> list[Revocation]:
        """Record a revocation, effective for every later check (R8). Idempotent.

        Without ``issuer`` the serial is looked up among registered certificates and
        each match is revoked under its own issuer; an unknown serial is revoked for any
        issuer (:data:`ANY_ISSUER`). Live sessions bound to the certificate end at once.
        """
        serial = normalize_serial(serial_hex)
        when = ensure_utc(at) if at is not None else now_utc()
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(certificates.c.fingerprint, certificates.c.der).where(
                    certificates.c.serial_hex == serial
                )
            ).all()
        fps = [r.fingerprint for r in rows]
        if issuer is not None:
            issuers = [issuer]
        else:
            issuers = sorted({_issuer_of(r.der) for r in rows}) or [ANY_ISSUER]
        out: list[Revocation] = []
        for iss in issuers:
            existing = self.revocation(serial, issuer=iss)
            if existing is None:
                try:
                    with self._tx() as conn:
                        conn.execute(
                            revocations.insert().values(
                                issuer=iss, serial_hex=serial, reason=reason, revoked_at=when
                            )
                        )
                except IntegrityError:
                    pass  # a concurrent revocation won
                existing = self.revocation(serial, issuer=iss)
            assert existing is not None
            out.append(existing)
        if fps:
            with self._tx() as conn:
                end_sessions_of(conn, fps, when)
        return out

    def revocation(self, serial_hex: str, *, issuer: str | None = None) -> Revocation | None:
        """The revocation of ``serial_hex`` by ``issuer`` (or by any issuer when None)."""
        serial = normalize_serial(serial_hex)
        stmt = sa.select(revocations).where(revocations.c.serial_hex == serial)
        if issuer is not None:
            stmt = stmt.where(revocations.c.issuer.in_([issuer, ANY_ISSUER]))
        with self._tx() as conn:
            row = conn.execute(stmt.order_by(revocations.c.revoked_at)).first()
        if row is None:
            return None
        return Revocation(row.issuer, row.serial_hex, row.reason, ensure_utc(row.revoked_at))

    def revocations(self) -> list[Revocation]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(revocations).order_by(revocations.c.revoked_at)).all()
        return [
            Revocation(r.issuer, r.serial_hex, r.reason, ensure_utc(r.revoked_at)) for r in rows
        ]


def _issuer_name(issuer: Any) -> str:
    return issuer.rfc4514_string() if hasattr(issuer, "rfc4514_string") else str(issuer)


class DbRevocationStore:
    """:class:`signing.revocation.RevocationStore` backed by the control-plane DB.

    Every lookup reads the database, so a revocation by any gateway process (or by
    ``siogw admin revoke-cert``) takes effect on the very next check.
    """

    def __init__(self, store: CertificateStore) -> None:
        self._store = store

    def lookup(self, issuer: Any, serial: int) -> Any:
        name = _issuer_name(issuer)
        rev = self._store.revocation(format(serial, "x"), issuer=name)
        if rev is None:
            return None
        return RevocationEntry(
            issuer=name, serial=serial, revoked_at=rev.revoked_at, reason=_crl_reason(rev.reason)
        )

    def revoke(
        self,
        issuer: Any,
        serial: int,
        reason: str = "unspecified",
        at: _dt.datetime | None = None,
    ) -> Any:
        name = _issuer_name(issuer)
        rev = self._store.revoke(format(serial, "x"), check_reason(reason), issuer=name, at=at)[0]
        return RevocationEntry(name, serial, rev.revoked_at, _crl_reason(rev.reason))

    def entries(self) -> list[Any]:
        return [
            RevocationEntry(r.issuer, int(r.serial_hex, 16), r.revoked_at, _crl_reason(r.reason))
            for r in self._store.revocations()
        ]


class PrefetchedRevocations(DbRevocationStore):
    """A :class:`DbRevocationStore` that answers for one serial number from rows read
    in the same statement as the session (``SessionContext.revocations``), and
    from the database for any other serial (intermediates)."""

    def __init__(
        self, store: CertificateStore, serial_hex: str, rows: Sequence[Revocation]
    ) -> None:
        super().__init__(store)
        self._serial = normalize_serial(serial_hex)
        self._rows = tuple(rows)

    #: Whether any lookup found an entry (in force or not): the gateway's session cache
    #: keeps only sessions whose whole path has none (a future-dated revocation starts to
    #: apply without a write to the database).
    found = False

    def lookup(self, issuer: Any, serial: int) -> Any:
        if format(serial, "x") != self._serial:
            entry = super().lookup(issuer, serial)
            if entry is not None:
                self.found = True
            return entry
        if not self._rows:
            return None
        name = _issuer_name(issuer)
        hits = [r for r in self._rows if r.issuer in (name, ANY_ISSUER)]
        if not hits:
            return None
        self.found = True
        rev = min(hits, key=lambda r: r.revoked_at)
        return RevocationEntry(
            issuer=name, serial=serial, revoked_at=rev.revoked_at, reason=_crl_reason(rev.reason)
        )


def _crl_reason(reason: str) -> str:
    """Reasons typed by an operator may be free text; unknown ones count as compromise."""
    return reason if reason in REASONS else "keyCompromise"
