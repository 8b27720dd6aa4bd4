"""The control-plane database: users, certificates, revocations, logins, sessions,
consents, seen request ids and maintenance windows.

SQLAlchemy 2.x Core over SQLite (default, in ``$SIOGW_HOME``) or PostgreSQL (by URL).
The schema is versioned: ``schema_version`` holds one row per applied migration and
:data:`MIGRATIONS` is the ordered list; :meth:`Store.open` applies the missing ones.
Times are stored as UTC; the Astana rendering happens at the edges (R9).

The audit log is *not* here: it lives in ``audit/`` (WORM segments).
All methods are synchronous and short; every failure of the database surfaces as
:class:`StoreUnavailable` (a :class:`~siogw_api.errors.StorageError`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from siogw.db import install_text_guard
from siogw.prepared import Prepared
from siogw_api.errors import InputError, PolicyError, StorageError
from siogw_api.timeutil import ensure_utc, now_utc

log = logging.getLogger("siogw.store")


class StoreUnavailable(StorageError):
    """The control-plane database failed."""


class ReplayDetected(PolicyError):
    """A request id was seen before (R7: each signed request counts once)."""

    reason_code = "REPLAY"


class UnknownUser(InputError):
    """No user with this id."""

    reason_code = "UNKNOWN_USER"


class DuplicateUser(InputError):
    """A user with this id exists already."""

    reason_code = "DUPLICATE_USER"


class CertificateInUse(InputError):
    """This certificate is registered to another user (keys are not transferable, R7)."""

    reason_code = "CERTIFICATE_IN_USE"


USER_ACTIVE = "active"
USER_BLOCKED = "blocked"

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("full_name", sa.String(300), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("unit", sa.String(300), nullable=False, default=""),
    sa.Column("post", sa.String(300), nullable=False, default=""),
    sa.Column("phone", sa.String(32), nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.String(500), nullable=False, default=""),
    sa.Column("device_public_key_der", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),  # sha256(DER) hex
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("serial_hex", sa.String(64), nullable=False, index=True),
    sa.Column("key_id", sa.String(64), nullable=False, index=True),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
)

revocations = sa.Table(
    "revocations",
    metadata,
    sa.Column("issuer", sa.String(500), primary_key=True),  # RFC 4514, or "*" (any issuer)
    # Indexed alone too (migration 2): every authenticated call joins the session's
    # certificate to its revocations by serial, whatever the issuer ("*" included).
    sa.Column("serial_hex", sa.String(64), primary_key=True, index=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
)

logins = sa.Table(
    "logins",
    metadata,
    sa.Column("login_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("challenge", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("factor", sa.String(16), nullable=False, default=""),
    sa.Column("code_hash", sa.LargeBinary, nullable=True),
    sa.Column("code_salt", sa.LargeBinary, nullable=True),
    sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("device_challenge", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256(token) hex
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    # Indexed (migration 2): revoking a certificate ends its live sessions at once.
    sa.Column("cert_fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("factor", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("envelope_json", sa.LargeBinary, nullable=False),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signed_at_astana", sa.String(40), nullable=False),
    sa.UniqueConstraint("user_id", "version", name="uq_consent_user_version"),
)

seen_requests = sa.Table(
    "seen_requests",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),  # unique: replay guard
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # Indexed (migration 2): housekeeping deletes the old ones in chunks (Store.prune)
    # without scanning a day of request ids under the write lock.
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

maintenance = sa.Table(
    "maintenance",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    # Indexed (migration 2): every call looks for a window still open (ends_at > now);
    # past windows stay in the table.
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("description", sa.String(1000), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

_V1_TABLES = (users, certificates, revocations, logins, sessions, consents, seen_requests,
              maintenance)


def _migration_1(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(_V1_TABLES))


#: The indexes of migration 2. A database made by migration 1 from today's tables has
#: them already (``create_all`` makes a column's index), hence ``checkfirst``.
_V2_INDEXES = ("ix_revocations_serial_hex", "ix_maintenance_ends_at",
               "ix_sessions_cert_fingerprint", "ix_seen_requests_seen_at")


def _migration_2(conn: Connection) -> None:
    for table in (revocations, maintenance, sessions, seen_requests):
        for index in table.indexes:
            if index.name in _V2_INDEXES:
                index.create(conn, checkfirst=True)


#: Ordered migrations: (version, description, apply). Append; never edit an applied one.
MIGRATIONS: Sequence[tuple[int, str, Callable[[Connection], None]]] = (
    (1, "initial control-plane schema", _migration_1),
    (2, "indexes: revocations by serial, maintenance by end, sessions by certificate, "
        "request ids by time",
     _migration_2),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _open_window(column: Any) -> Any:
    at = sa.bindparam("at", type_=sa.DateTime(timezone=True))
    return (
        sa.select(column)
        .where(maintenance.c.starts_at <= at, maintenance.c.ends_at > at)
        .order_by(maintenance.c.starts_at, maintenance.c.id)
        .limit(1)
        .scalar_subquery()
    )


_CLAIM = seen_requests.insert()

_OPEN_WINDOW = (
    sa.select(maintenance)
    .where(
        maintenance.c.starts_at <= sa.bindparam("at", type_=sa.DateTime(timezone=True)),
        maintenance.c.ends_at > sa.bindparam("at", type_=sa.DateTime(timezone=True)),
    )
    .order_by(maintenance.c.starts_at, maintenance.c.id)
    .limit(1)
)

#: One read for every per-call check (see :meth:`Store.session_context`). Several rows
#: only when the certificate's serial has revocations under several issuers.
_SESSION_CONTEXT = (
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
        _open_window(maintenance.c.id).label("w_id"),
        _open_window(maintenance.c.starts_at).label("w_starts_at"),
        _open_window(maintenance.c.ends_at).label("w_ends_at"),
        _open_window(maintenance.c.description).label("w_description"),
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


def _periodic(
    name: str, interval: float, job: Callable[[], None], *, first_now: bool
) -> tuple[threading.Event, threading.Thread]:
    """Run ``job`` every ``interval`` seconds (and at once with ``first_now``) in a daemon
    thread ``name`` until the returned event is set. A job that raises is logged and
    runs again at the next tick. :meth:`Store.close` stops these threads."""
    stop = threading.Event()

    def run() -> None:
        if first_now or not stop.wait(interval):
            while True:
                try:
                    job()
                except Exception as exc:
                    log.warning("%s failed: %s", name, exc)
                if stop.wait(interval):
                    return

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return stop, thread


#: How long :meth:`Store.prune` keeps rows no check needs any more (at least).
KEEP_AT_LEAST = _dt.timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    """Rows one :meth:`Store.prune` deleted."""

    request_ids: int
    sessions: int
    logins: int

    @property
    def total(self) -> int:
        return self.request_ids + self.sessions + self.logins

    def __str__(self) -> str:
        return (f"{self.request_ids} request id(s), {self.sessions} session(s), "
                f"{self.logins} login attempt(s)")


# --- rows --------------------------------------------------------------------------------
def _utc(value: _dt.datetime | None) -> _dt.datetime | None:
    return ensure_utc(value) if value is not None else None


@dataclass(frozen=True)
class UserRow:
    user_id: str
    full_name: str
    role: str
    unit: str
    post: str
    phone: str
    status: str
    status_reason: str
    device_public_key_der: bytes | None

    @property
    def active(self) -> bool:
        return self.status == USER_ACTIVE


@dataclass(frozen=True)
class CertRow:
    fingerprint: str
    user_id: str
    serial_hex: str
    key_id: str
    der: bytes


#: Issuer wildcard for a revocation ordered by serial alone for an unregistered cert.
ANY_ISSUER = "*"


@dataclass(frozen=True)
class Revocation:
    issuer: str
    serial_hex: str
    reason: str
    revoked_at: _dt.datetime


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
class WindowRow:
    id: str
    starts_at: _dt.datetime
    ends_at: _dt.datetime
    description: str

    def covers(self, at: _dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class SessionContext:
    """Everything a call's checks need about its session, read in ONE statement.

    The session, its user and certificate (None when gone), whether the user signed
    ``consent_version``, the maintenance window open at ``at`` and the DB revocations
    of the certificate's serial number (any issuer; see :class:`PrefetchedRevocations`).
    All from the same snapshot of the database.
    """

    session: SessionRow
    user: UserRow | None
    certificate: CertRow | None
    consented: bool
    window: WindowRow | None
    revocations: tuple[Revocation, ...]
    #: Whether :attr:`ops_status` was read (see :meth:`Store.read_status_from`), and the
    #: session user's status in that table (None: the table does not know the user).
    ops_status_read: bool = False
    ops_status: str | None = None


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


class Store:
    """The control-plane database (see module docstring)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = install_text_guard(sa.create_engine(url, **kwargs))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreUnavailable(f"cannot open database {_redact(url)}", detail=str(exc)) from exc
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time and a blocked writer sleeps in the busy handler
        # (1, 2, 5, … 100 ms steps): the hot-path writes of this process queue on a lock
        # instead, which wakes the next writer as soon as the previous one commits.
        self._write_lock: Any = (
            threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )
        self._pin = threading.local()

    @contextmanager
    def pinned_connection(self) -> Iterator[None]:
        """Within the block, this thread's hot-path statements (:meth:`session_context`,
        :meth:`claim_request_id`) share one pooled connection.

        A query's checks then take one connection from the pool instead of one per
        statement: one pre-ping (PostgreSQL) and one reset on return instead of two. The
        claim commits what the connection did; leaving the block returns it to the pool,
        which rolls back anything left open (a read after a refusal). Nested blocks
        share the outer one's connection.
        """
        if getattr(self._pin, "conn", None) is not None:
            yield
            return
        try:
            conn = self.engine.raw_connection()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        self._pin.conn = conn
        try:
            yield
        finally:
            self._pin.conn = None
            conn.close()

    # --- lifecycle -----------------------------------------------------------------------
    _checkpointer: tuple[threading.Event, threading.Thread] | None = None
    _housekeeper: tuple[threading.Event, threading.Thread] | None = None
    #: Background WAL checkpoints done (:meth:`start_checkpointer`).
    checkpoints = 0
    #: Housekeeping passes done (:meth:`start_housekeeper`).
    housekeeping_passes = 0
    _session_context_stmt: Any = _SESSION_CONTEXT
    _reads_ops_status = False
    _prepared_context: Prepared | None = None
    _prepared_claim: Prepared | None = None

    @property
    def _dbapi_error(self) -> type[Exception]:
        """The driver's base error class (prepared statements raise it unwrapped)."""
        dbapi = self.engine.dialect.dbapi
        return dbapi.Error if dbapi is not None else Exception

    def open(self) -> Store:
        """Apply missing migrations; returns self."""
        with self._tx() as conn:
            schema_version.create(conn, checkfirst=True)
            applied = {r[0] for r in conn.execute(sa.select(schema_version.c.version))}
            for version, description, apply in MIGRATIONS:
                if version in applied:
                    continue
                apply(conn)
                conn.execute(
                    schema_version.insert().values(
                        version=version, description=description, applied_at=now_utc()
                    )
                )
        return self

    def version(self) -> int:
        with self._tx() as conn:
            value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return int(value or 0)

    def start_checkpointer(self, interval: float = 1.0) -> bool:
        """SQLite: checkpoint the WAL every ``interval`` seconds in a background thread.

        ``PRAGMA wal_checkpoint(PASSIVE)`` copies what it can without waiting for any
        lock, so writers never wait on it; its fsyncs happen here instead of inside a
        commit on the query path. Returns False (nothing started) for other databases.
        Stopped by :meth:`close`.
        """
        if self.engine.dialect.name != "sqlite" or self._checkpointer is not None:
            return False

        def checkpoint() -> None:
            conn = self.engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cur.fetchall()
                cur.close()
            finally:
                conn.close()
            self.checkpoints += 1

        # a failure is logged; SQLite's own (raised) threshold is the safety net
        self._checkpointer = _periodic("siogw-wal-checkpoint", interval, checkpoint,
                                       first_now=False)
        return True

    def prune(
        self, *, clock_skew_seconds: int, now: _dt.datetime | None = None,
        keep: _dt.timedelta = KEEP_AT_LEAST, chunk: int = 5000,
    ) -> Pruned:
        """Delete the rows no check can need any more; the audit log keeps their story.

        * request ids claimed longer ago than ``max(keep, 2 x skew + 60 s)``: a request
          is fresh only within ``± skew`` of the gateway clock, so by then any replay of
          it is refused as stale before the replay guard is asked. ``keep`` (a day by
          default) also covers the skew being raised later, up to about 12 hours;
        * sessions and login attempts that expired more than ``keep`` ago (a session lives
          minutes; one ended early expired no later).

        Deletes go in chunks of ``chunk`` rows, one short transaction each, so the first
        pass over a large old database never holds the write lock long.
        """
        now = ensure_utc(now) if now is not None else now_utc()
        horizon = max(keep, _dt.timedelta(seconds=2 * clock_skew_seconds + 60))
        return Pruned(
            request_ids=self._delete_chunked(
                seen_requests, seen_requests.c.request_id,
                seen_requests.c.seen_at < now - horizon, chunk),
            sessions=self._delete_chunked(
                sessions, sessions.c.token_hash, sessions.c.expires_at < now - keep, chunk),
            logins=self._delete_chunked(
                logins, logins.c.login_id, logins.c.expires_at < now - keep, chunk),
        )

    def _delete_chunked(self, table: sa.Table, key: Any, old: Any, chunk: int) -> int:
        total = 0
        while True:
            batch = sa.select(key).where(old).limit(chunk).scalar_subquery()
            with self._write_lock, self._tx() as conn:
                n = conn.execute(table.delete().where(key.in_(batch))).rowcount or 0
            total += n
            if n < chunk:
                return total

    def start_housekeeper(self, *, clock_skew_seconds: int, interval: float) -> bool:
        """Run :meth:`prune` now and every ``interval`` seconds in a background thread
        (one per database is enough; more do no harm). False when ``interval`` is not
        positive (housekeeping off) or it runs already. Stopped by :meth:`close`.
        """
        if interval <= 0 or self._housekeeper is not None:
            return False

        def housekeeping() -> None:
            pruned = self.prune(clock_skew_seconds=clock_skew_seconds)
            self.housekeeping_passes += 1
            if pruned.total:
                log.info("housekeeping: deleted %s", pruned)

        # a failed pass is logged; the next one tries again
        self._housekeeper = _periodic("siogw-housekeeping", interval, housekeeping,
                                      first_now=True)
        return True

    def close(self) -> None:
        for attr in ("_checkpointer", "_housekeeper"):
            running: tuple[threading.Event, threading.Thread] | None = getattr(self, attr)
            if running is not None:
                stop, thread = running
                stop.set()
                thread.join(10)
                setattr(self, attr, None)
        self.engine.dispose()

    def drop_all(self) -> None:
        """Drop every table (tests only)."""
        with self._tx() as conn:
            metadata.drop_all(conn)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (IntegrityError, StorageError, PolicyError, InputError):
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc

    # --- users ---------------------------------------------------------------------------
    def add_user(
        self,
        *,
        user_id: str,
        full_name: str,
        role: str,
        unit: str = "",
        post: str = "",
        phone: str = "",
        device_public_key_der: bytes | None = None,
    ) -> UserRow:
        if not user_id:
            raise InputError("user id is empty")
        now = now_utc()
        try:
            with self._tx() as conn:
                conn.execute(
                    users.insert().values(
                        user_id=user_id, full_name=full_name, role=role, unit=unit, post=post,
                        phone=phone, status=USER_ACTIVE, status_reason="",
                        device_public_key_der=device_public_key_der,
                        created_at=now, updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise DuplicateUser(f"user {user_id!r} exists already") from exc
        return self.require_user(user_id)

    def get_user(self, user_id: str) -> UserRow | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
        if row is None:
            return None
        return UserRow(
            user_id=row.user_id, full_name=row.full_name, role=row.role, unit=row.unit,
            post=row.post, phone=row.phone, status=row.status, status_reason=row.status_reason,
            device_public_key_der=row.device_public_key_der,
        )

    def require_user(self, user_id: str) -> UserRow:
        user = self.get_user(user_id)
        if user is None:
            raise UnknownUser(f"no user {user_id!r}")
        return user

    def set_user_status(self, user_id: str, status: str, reason: str = "") -> UserRow:
        """Block or unblock; blocking also ends the user's live sessions at once (R4)."""
        if status not in (USER_ACTIVE, USER_BLOCKED):
            raise InputError(f"unknown user status {status!r}")
        now = now_utc()
        with self._tx() as conn:
            result = conn.execute(
                users.update()
                .where(users.c.user_id == user_id)
                .values(status=status, status_reason=reason, updated_at=now)
            )
            if result.rowcount == 0:
                raise UnknownUser(f"no user {user_id!r}")
            if status == USER_BLOCKED:
                conn.execute(
                    sessions.update()
                    .where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
                    .values(ended_at=now)
                )
        return self.require_user(user_id)

    def set_device_key(self, user_id: str, device_public_key_der: bytes | None) -> None:
        with self._tx() as conn:
            conn.execute(
                users.update().where(users.c.user_id == user_id).values(
                    device_public_key_der=device_public_key_der, updated_at=now_utc()
                )
            )

    # --- certificates and revocations ---------------------------------------------------
    def register_certificate(
        self, user_id: str, der: bytes, *, serial_hex: str, key_id: str
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
            conn.execute(
                certificates.insert().values(
                    fingerprint=fp, user_id=user_id, serial_hex=normalize_serial(serial_hex),
                    key_id=key_id, der=der, registered_at=now_utc(),
                )
            )
        return CertRow(fp, user_id, normalize_serial(serial_hex), key_id, der)

    def get_certificate(self, fp: str) -> CertRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(certificates).where(certificates.c.fingerprint == fp)
            ).first()
        if row is None:
            return None
        return CertRow(row.fingerprint, row.user_id, row.serial_hex, row.key_id, row.der)

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
                conn.execute(
                    sessions.update()
                    .where(sessions.c.cert_fingerprint.in_(fps), sessions.c.ended_at.is_(None))
                    .values(ended_at=when)
                )
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

    def count_failed_attempt(self, login_id: str) -> int:
        """Atomically add one wrong-code attempt; returns the new count."""
        with self._tx() as conn:
            conn.execute(
                logins.update()
                .where(logins.c.login_id == login_id)
                .values(attempts=logins.c.attempts + 1)
            )
            value = conn.execute(
                sa.select(logins.c.attempts).where(logins.c.login_id == login_id)
            ).scalar()
        return int(value or 0)

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

    def end_session(self, token_hash: str) -> None:
        with self._tx() as conn:
            conn.execute(
                sessions.update()
                .where(sessions.c.token_hash == token_hash, sessions.c.ended_at.is_(None))
                .values(ended_at=now_utc())
            )

    def read_status_from(self, table: sa.Table) -> None:
        """Make :meth:`session_context` also read ``table.status`` of the session's user.

        ``table`` has ``user_id`` and ``status`` columns in the same database (the
        operations domain's users, :func:`server.ops.gateway.connect_store`): the status
        comes in the same statement and snapshot as the session, instead of one more
        read per call.
        """
        status = (
            sa.select(table.c.status)
            .where(table.c.user_id == sessions.c.user_id)
            .scalar_subquery()
            .label("ops_status")
        )
        self._session_context_stmt = _SESSION_CONTEXT.add_columns(status)
        self._reads_ops_status = True
        self._prepared_context = None

    def _prepared(self, attr: str, stmt: Any) -> Prepared:
        prepared: Prepared | None = getattr(self, attr)
        if prepared is None:
            prepared = Prepared(self.engine, stmt)
            setattr(self, attr, prepared)
        return prepared

    def session_context(
        self, token_hash: str, *, consent_version: str, at: _dt.datetime
    ) -> SessionContext | None:
        """The :class:`SessionContext` of a session token hash (None if unknown)."""
        # The read of every authenticated call: a prepared statement (siogw.prepared).
        prepared = self._prepared("_prepared_context", self._session_context_stmt)
        try:
            rows = prepared.all(
                {"token_hash": token_hash, "version": consent_version, "at": ensure_utc(at)},
                conn=getattr(self._pin, "conn", None),
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
            window=window, revocations=revs, ops_status_read=self._reads_ops_status,
            ops_status=r.ops_status if self._reads_ops_status else None,
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

    # --- replay guard --------------------------------------------------------------------
    def claim_request_id(self, request_id: str, *, user_id: str, kind: str) -> None:
        """Record a request id; :class:`ReplayDetected` if it was seen before (durable)."""
        # The write of every query: a prepared statement (siogw.prepared).
        prepared = self._prepared("_prepared_claim", _CLAIM)
        dbapi = self.engine.dialect.dbapi
        try:
            with self._write_lock:
                prepared.run({"request_id": request_id, "user_id": user_id, "kind": kind,
                              "seen_at": now_utc()}, conn=getattr(self._pin, "conn", None))
        except dbapi.IntegrityError as exc:  # type: ignore[union-attr]
            raise ReplayDetected(f"request id {request_id!r} was used before") from exc
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc

    def restore_request_ids(self, claims: Iterable[tuple[str, str, str, _dt.datetime]]) -> int:
        """Claim again request ids the audit log shows as claimed; returns how many were
        missing (and are now back).

        ``claims`` are ``(request_id, user_id, kind, seen_at)``. With SQLite in WAL mode
        and ``synchronous=NORMAL`` a power loss can lose the last commits, claims among
        them; the audit log, fsync'd before every answer, still has them (see
        :meth:`server.ops_wiring.OpsWiring.restore_replay_guard`). Ids present already are
        left alone.
        """
        restored = 0
        batch: list[tuple[str, str, str, _dt.datetime]] = []

        def flush() -> int:
            wanted = {c[0]: c for c in batch}
            with self._tx() as conn:
                have = set(conn.execute(
                    sa.select(seen_requests.c.request_id)
                    .where(seen_requests.c.request_id.in_(list(wanted)))
                ).scalars())
                rows = [
                    {"request_id": rid, "user_id": uid, "kind": kind, "seen_at": ensure_utc(at)}
                    for rid, (_r, uid, kind, at) in wanted.items() if rid not in have
                ]
                if rows:
                    conn.execute(seen_requests.insert(), rows)
            batch.clear()
            return len(rows)

        try:
            with self._write_lock:
                for claim in claims:
                    batch.append(claim)
                    if len(batch) >= 500:
                        restored += flush()
                if batch:
                    restored += flush()
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc
        return restored

    # --- maintenance ---------------------------------------------------------------------
    def add_window(
        self, *, window_id: str, starts_at: _dt.datetime, ends_at: _dt.datetime, description: str
    ) -> WindowRow:
        starts, ends = ensure_utc(starts_at), ensure_utc(ends_at)
        if ends <= starts:
            raise InputError("a maintenance window must end after it starts")
        try:
            with self._tx() as conn:
                conn.execute(
                    maintenance.insert().values(
                        id=window_id, starts_at=starts, ends_at=ends, description=description,
                        created_at=now_utc(),
                    )
                )
        except IntegrityError as exc:
            raise InputError(f"maintenance window {window_id!r} exists already") from exc
        return WindowRow(window_id, starts, ends, description)

    def windows(self, *, not_ended_before: _dt.datetime | None = None) -> list[WindowRow]:
        """Maintenance windows ordered by start; only those still open at the given time."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(maintenance).order_by(maintenance.c.starts_at)).all()
        out = [
            WindowRow(r.id, ensure_utc(r.starts_at), ensure_utc(r.ends_at), r.description)
            for r in rows
        ]
        if not_ended_before is not None:
            out = [w for w in out if w.ends_at > not_ended_before]
        return out

    def current_window(self, at: _dt.datetime | None = None) -> WindowRow | None:
        """The window open at ``at`` (default now), earliest start first; one row read."""
        when = ensure_utc(at) if at is not None else now_utc()
        with self._tx() as conn:
            r = conn.execute(_OPEN_WINDOW, {"at": when}).first()
        if r is None:
            return None
        return WindowRow(r.id, ensure_utc(r.starts_at), ensure_utc(r.ends_at), r.description)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit is durable across a *process* crash (it is in the WAL file)
    # without an fsync per commit; the WAL is fsync'd at checkpoints. A power loss may
    # lose the last commits; see docs/adr/0005-gateway.md (replay guard and power loss).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints (copy the WAL into the database, fsync) run in the gateway's own
    # background thread (Store.start_checkpointer), not inside whichever commit crosses
    # SQLite's default 1,000 pages: on the query path that commit is on the event loop.
    # The high threshold stays as a safety net for processes without the thread.
    cur.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
    cur.close()


#: SQLite's own checkpoint threshold (pages of 4 KiB) when the background thread runs.
_WAL_AUTOCHECKPOINT_PAGES = 16384


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # never let redaction fail the error path
        return "<database url>"


def _issuer_of(der: bytes) -> str:
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der).issuer.rfc4514_string()
    except ValueError:
        return ANY_ISSUER


class DbRevocationStore:
    """:class:`signing.revocation.RevocationStore` backed by the control-plane DB.

    Every lookup reads the database, so a revocation by any gateway process (or by
    ``siogw admin revoke-cert``) takes effect on the very next check.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def lookup(self, issuer: Any, serial: int) -> Any:
        from signing.revocation import RevocationEntry

        name = issuer.rfc4514_string() if hasattr(issuer, "rfc4514_string") else str(issuer)
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
        from signing.revocation import RevocationEntry, check_reason

        name = issuer.rfc4514_string() if hasattr(issuer, "rfc4514_string") else str(issuer)
        rev = self._store.revoke(format(serial, "x"), check_reason(reason), issuer=name, at=at)[0]
        return RevocationEntry(name, serial, rev.revoked_at, _crl_reason(rev.reason))

    def entries(self) -> list[Any]:
        from signing.revocation import RevocationEntry

        return [
            RevocationEntry(r.issuer, int(r.serial_hex, 16), r.revoked_at, _crl_reason(r.reason))
            for r in self._store.revocations()
        ]


class PrefetchedRevocations(DbRevocationStore):
    """A :class:`DbRevocationStore` that answers for one serial number from rows read
    in the same statement as the session (:attr:`SessionContext.revocations`), and
    from the database for any other serial (intermediates)."""

    def __init__(self, store: Store, serial_hex: str, rows: Sequence[Revocation]) -> None:
        super().__init__(store)
        self._serial = normalize_serial(serial_hex)
        self._rows = tuple(rows)

    def lookup(self, issuer: Any, serial: int) -> Any:
        if format(serial, "x") != self._serial:
            return super().lookup(issuer, serial)
        from signing.revocation import RevocationEntry

        name = issuer.rfc4514_string() if hasattr(issuer, "rfc4514_string") else str(issuer)
        hits = [r for r in self._rows if r.issuer in (name, ANY_ISSUER)]
        if not hits:
            return None
        rev = min(hits, key=lambda r: r.revoked_at)
        return RevocationEntry(
            issuer=name, serial=serial, revoked_at=rev.revoked_at, reason=_crl_reason(rev.reason)
        )


def _crl_reason(reason: str) -> str:
    """Reasons typed by an operator may be free text; unknown ones count as compromise."""
    from signing.revocation import REASONS

    return reason if reason in REASONS else "keyCompromise"
