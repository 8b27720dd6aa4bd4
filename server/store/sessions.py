"""Logins, sessions and consents, and the one read of every authenticated call.

:meth:`SessionStore.session_context` brings, in ONE statement (a prepared statement,
:mod:`server.prepared`), the session, its user and status, its certificate, the consent,
the open maintenance window and the certificate's revocations: the one table of each
fact (:mod:`server.store.schema`), joined by the indexes of migration 2. A block, a
revocation or a window written by any process (the log host, a worker, ``siogw admin``,
the operations domain) is seen by the next call of every process.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from server.prepared import Prepared
from server.store.base import StoreBase
from server.store.certificates import CertRow, Revocation, fingerprint
from server.store.errors import StoreUnavailable
from server.store.maintenance import NOT_CANCELLED, WindowRow, open_window
from server.store.schema import (
    auth_epoch,
    certificates,
    consents,
    logins,
    maintenance,
    revocations,
    sessions,
    users,
)
from server.store.users import UserRow
from siogw_api.timeutil import ensure_utc, now_utc


@dataclass(frozen=True)
class LoginRow:
    login_id: str
    user_id: str
    cert_fingerprint: str
    cert_der: bytes
    challenge: bytes
    state: str
    factor: str
    code_hash: bytes | None
    code_salt: bytes | None
    code_expires_at: _dt.datetime | None
    attempts: int
    device_challenge: bytes | None
    expires_at: _dt.datetime


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    user_id: str
    cert_fingerprint: str
    factor: str
    expires_at: _dt.datetime
    ended_at: _dt.datetime | None


@dataclass(frozen=True)
class SessionContext:
    """Everything a call's checks need about its session, read in ONE statement.

    The session, its user and certificate (None when gone), whether the user signed
    ``consent_version``, the maintenance window open at ``at`` and the DB revocations
    of the certificate's serial number (any issuer; see
    :class:`server.store.certificates.PrefetchedRevocations`). All from the same
    snapshot of the database.
    """

    session: SessionRow
    user: UserRow | None
    certificate: CertRow | None
    consented: bool
    window: WindowRow | None
    revocations: tuple[Revocation, ...]


def _utc(value: _dt.datetime | None) -> _dt.datetime | None:
    return ensure_utc(value) if value is not None else None


#: One read for every per-call check (see :meth:`SessionStore.session_context`). Several
#: rows only when the certificate's serial has revocations under several issuers.
SESSION_CONTEXT = (
    sa.select(
        sessions,
        users.c.user_id.label("u_user_id"), users.c.full_name, users.c.role, users.c.unit,
        users.c.post, users.c.phone, users.c.status, users.c.status_reason,
        users.c.device_public_key_der,
        certificates.c.fingerprint.label("c_fingerprint"),
        certificates.c.user_id.label("c_user_id"),
        certificates.c.serial_hex.label("c_serial_hex"),
        certificates.c.key_id.label("c_key_id"),
        certificates.c.der.label("c_der"),
        sa.select(consents.c.id)
        .where(consents.c.user_id == sessions.c.user_id,
               consents.c.version == sa.bindparam("version"))
        .limit(1)
        .scalar_subquery()
        .label("consent_id"),
        open_window(maintenance.c.id).label("w_id"),
        open_window(maintenance.c.starts_at).label("w_starts_at"),
        open_window(maintenance.c.ends_at).label("w_ends_at"),
        open_window(maintenance.c.description).label("w_description"),
        revocations.c.issuer.label("r_issuer"),
        revocations.c.serial_hex.label("r_serial_hex"),
        revocations.c.reason.label("r_reason"),
        revocations.c.revoked_at.label("r_revoked_at"),
    )
    .select_from(
        sessions.outerjoin(users, users.c.user_id == sessions.c.user_id)
        .outerjoin(certificates, certificates.c.fingerprint == sessions.c.cert_fingerprint)
        .outerjoin(revocations, revocations.c.serial_hex == certificates.c.serial_hex)
    )
    .where(sessions.c.token_hash == sa.bindparam("token_hash"))
)


#: The authentication epoch (migration 10): bumped by the database on every change of a
#: table that :data:`SESSION_CONTEXT` reads.
AUTH_EPOCH = sa.select(auth_epoch.c.version).where(auth_epoch.c.id == 1)
#: The next maintenance window to open after ``at`` (how long a cached session may go
#: without looking at the windows again).
NEXT_WINDOW = sa.select(sa.func.min(maintenance.c.starts_at)).where(
    maintenance.c.starts_at > sa.bindparam("at", type_=sa.DateTime(timezone=True)),
    NOT_CANCELLED,
)


class SessionStore(StoreBase):
    """The login, session and consent methods of :class:`server.store.Store`."""

    _prepared_context: Prepared | None = None
    _prepared_epoch: Prepared | None = None

    def auth_epoch(self) -> int:
        """The authentication epoch: it changes with every committed change of a session,
        user, certificate, revocation, consent or maintenance window (database triggers,
        migration 10). Equal epochs: :meth:`session_context` would answer the same."""
        prepared = self._prepared("_prepared_epoch", AUTH_EPOCH)
        try:
            rows = prepared.all({}, conn=self._pinned)
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        if not rows:
            raise StoreUnavailable("control-plane database error",
                                   detail="the auth_epoch row is missing")
        return int(rows[0][0])

    def next_window_start(self, at: _dt.datetime) -> _dt.datetime | None:
        """When the next maintenance window not cancelled opens after ``at`` (None: none)."""
        try:
            with self._tx() as conn:
                value = conn.execute(NEXT_WINDOW, {"at": ensure_utc(at)}).scalar()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        return None if value is None else ensure_utc(value)

    # --- logins --------------------------------------------------------------------------
    def create_login(
        self,
        *,
        login_id: str,
        user_id: str,
        cert_der: bytes,
        challenge: bytes,
        expires_at: _dt.datetime,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                logins.insert().values(
                    login_id=login_id, user_id=user_id, cert_fingerprint=fingerprint(cert_der),
                    cert_der=cert_der, challenge=challenge, state="begun", factor="",
                    attempts=0, created_at=now_utc(), expires_at=expires_at,
                )
            )

    def open_logins(self, user_id: str) -> int:
        """Logins of ``user_id`` begun and neither proved nor expired (BeginLogin's cap)."""
        with self._tx() as conn:
            value = conn.execute(
                sa.select(sa.func.count()).select_from(logins).where(
                    logins.c.user_id == user_id, logins.c.state == "begun",
                    logins.c.expires_at > now_utc(),
                )
            ).scalar()
        return int(value or 0)

    def get_login(self, login_id: str) -> LoginRow | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(logins).where(logins.c.login_id == login_id)).first()
        if row is None:
            return None
        return LoginRow(
            login_id=row.login_id, user_id=row.user_id, cert_fingerprint=row.cert_fingerprint,
            cert_der=row.cert_der, challenge=row.challenge, state=row.state, factor=row.factor,
            code_hash=row.code_hash, code_salt=row.code_salt,
            code_expires_at=_utc(row.code_expires_at), attempts=row.attempts,
            device_challenge=row.device_challenge, expires_at=ensure_utc(row.expires_at),
        )

    def update_login(
        self, login_id: str, *, expect_state: str | None = None, **values: Any
    ) -> bool:
        """Update a login; with ``expect_state`` only if still in that state (returns hit)."""
        stmt = logins.update().where(logins.c.login_id == login_id)
        if expect_state is not None:
            stmt = stmt.where(logins.c.state == expect_state)
        with self._tx() as conn:
            result = conn.execute(stmt.values(**values))
        return bool(result.rowcount)

    def claim_attempt(self, login_id: str, *, max_attempts: int) -> int | None:
        """Claim one SMS-code comparison, atomically; the attempt's number, or None.

        ONE statement increments and checks (``UPDATE ... SET attempts = attempts + 1
        WHERE state = 'proved' AND attempts < max RETURNING attempts``): concurrent
        ``CompleteLogin`` calls cannot read the same count, so at most ``max_attempts``
        codes are ever compared for one login, whatever the concurrency (SQLite
        serialises writers; PostgreSQL takes the row lock and re-checks the WHERE).
        None: the login is not waiting for a code, or its attempts are used up.
        """
        stmt = (
            logins.update()
            .where(logins.c.login_id == login_id, logins.c.state == "proved",
                   logins.c.attempts < max_attempts)
            .values(attempts=logins.c.attempts + 1)
            .returning(logins.c.attempts)
        )
        with self._tx() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else int(value)

    def release_attempt(self, login_id: str) -> None:
        """Hand back a claim of :meth:`claim_attempt` (the code compared was right)."""
        with self._tx() as conn:
            conn.execute(
                logins.update()
                .where(logins.c.login_id == login_id, logins.c.attempts > 0)
                .values(attempts=logins.c.attempts - 1)
            )

    # --- sessions ------------------------------------------------------------------------
    def create_session(
        self,
        *,
        token_hash: str,
        user_id: str,
        cert_fingerprint: str,
        factor: str,
        expires_at: _dt.datetime,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                sessions.insert().values(
                    token_hash=token_hash, user_id=user_id, cert_fingerprint=cert_fingerprint,
                    factor=factor, created_at=now_utc(), expires_at=expires_at,
                )
            )

    def get_session(self, token_hash: str) -> SessionRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(sessions).where(sessions.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        return SessionRow(
            token_hash=row.token_hash, user_id=row.user_id,
            cert_fingerprint=row.cert_fingerprint, factor=row.factor,
            expires_at=ensure_utc(row.expires_at), ended_at=_utc(row.ended_at),
        )

    def live_sessions(self, at: _dt.datetime) -> int:
        """Sessions neither ended nor expired at ``at`` (metrics)."""
        with self._tx() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(sessions)
                .where(sessions.c.ended_at.is_(None), sessions.c.expires_at > at)
            ).scalar_one())

    def end_session(self, token_hash: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sessions.update()
                .where(sessions.c.token_hash == token_hash, sessions.c.ended_at.is_(None))
                .values(ended_at=now_utc())
            )

    def session_context(
        self, token_hash: str, *, consent_version: str, at: _dt.datetime
    ) -> SessionContext | None:
        """The :class:`SessionContext` of a session token hash (None if unknown)."""
        # The read of every authenticated call: a prepared statement (server.prepared).
        prepared = self._prepared("_prepared_context", SESSION_CONTEXT)
        try:
            rows = prepared.all(
                {"token_hash": token_hash, "version": consent_version, "at": ensure_utc(at)},
                conn=self._pinned,
            )
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        if not rows:
            return None
        r = rows[0]
        session = SessionRow(
            token_hash=r.token_hash, user_id=r.user_id, cert_fingerprint=r.cert_fingerprint,
            factor=r.factor, expires_at=ensure_utc(r.expires_at), ended_at=_utc(r.ended_at),
        )
        user = None
        if r.u_user_id is not None:
            user = UserRow(
                user_id=r.u_user_id, full_name=r.full_name, role=r.role, unit=r.unit,
                post=r.post, phone=r.phone, status=r.status, status_reason=r.status_reason,
                device_public_key_der=r.device_public_key_der,
            )
        cert = None
        if r.c_fingerprint is not None:
            cert = CertRow(r.c_fingerprint, r.c_user_id, r.c_serial_hex, r.c_key_id, r.c_der)
        window = None
        if r.w_id is not None:
            window = WindowRow(
                r.w_id, ensure_utc(r.w_starts_at), ensure_utc(r.w_ends_at), r.w_description
            )
        revs = tuple(
            Revocation(x.r_issuer, x.r_serial_hex, x.r_reason, ensure_utc(x.r_revoked_at))
            for x in rows
            if x.r_issuer is not None
        )
        return SessionContext(
            session=session, user=user, certificate=cert, consented=r.consent_id is not None,
            window=window, revocations=revs,
        )

    # --- consent -------------------------------------------------------------------------
    def record_consent(
        self,
        *,
        user_id: str,
        version: str,
        text_sha256: str,
        envelope_json: bytes,
        cert_fingerprint: str,
        signed_at: _dt.datetime,
        signed_at_astana: str,
    ) -> None:
        try:
            with self._tx() as conn:
                conn.execute(
                    consents.insert().values(
                        user_id=user_id, version=version, text_sha256=text_sha256,
                        envelope_json=envelope_json, cert_fingerprint=cert_fingerprint,
                        signed_at=signed_at, signed_at_astana=signed_at_astana,
                    )
                )
        except IntegrityError:
            pass  # already consented to this version: keep the first signature

    def has_consent(self, user_id: str, version: str) -> bool:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(consents.c.id).where(
                    consents.c.user_id == user_id, consents.c.version == version
                )
            ).first()
        return row is not None
