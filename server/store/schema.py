"""The control-plane tables and their numbered migrations.

``schema_version`` holds one row per applied migration and :data:`MIGRATIONS` is the
ordered list; :func:`migrate` applies the missing ones (``Store.open`` calls it, and so
does the operations domain's ``create_schema``, whose tables sit beside these).

One home for each fact (migration 3): a user and their status, a certificate and a
maintenance window are one row each, here, read by the gateway's session check, by
the worker processes and by the operations domain (``server.ops``) alike. A revocation
is a row of ``revocations``; nothing else says a certificate is revoked.
Times are stored as UTC; the Astana rendering happens at the edges (R9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection

from signing.api import key_id_for
from siogw_api.timeutil import ensure_utc, now_utc

log = logging.getLogger("siogw.store")

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
    # 1000 since migration 3 (the operations domain's reasons; 500 before).
    sa.Column("status_reason", sa.String(1000), nullable=False, default=""),
    sa.Column("device_public_key_der", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Migration 3: what the operations domain knows of a user ("" / NULL for users
    # enrolled otherwise, e.g. ``siogw admin bootstrap`` or EnrollUser).
    sa.Column("iin", sa.String(12), nullable=False, default="", server_default="",
              index=True),
    sa.Column("basis", sa.String(64), nullable=False, default="", server_default=""),
    sa.Column("block_kind", sa.String(16), nullable=True),
    sa.Column("application_id", sa.String(40), nullable=True),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),  # sha256(DER) hex
    # Indexed since migration 3: the operations domain lists a user's certificates.
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False,
              index=True),
    sa.Column("serial_hex", sa.String(64), nullable=False, index=True),
    sa.Column("key_id", sa.String(64), nullable=False, index=True),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    # Migration 3: read from the DER at registration ("" / NULL when it does not parse).
    sa.Column("issuer", sa.String(500), nullable=False, default="", server_default=""),
    sa.Column("subject", sa.String(500), nullable=False, default="", server_default=""),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
    sa.Column("token_label", sa.String(64), nullable=True),
    # Migration 6 (part "rules", §12): the token's last PIN change as the client reported
    # it at its latest login with this certificate, and when that login was.
    sa.Column("pin_changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pin_reported_at", sa.DateTime(timezone=True), nullable=True),
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
    # Migration 3: who published it through the operations domain ("" otherwise).
    sa.Column("published_by", sa.String(64), nullable=False, default="", server_default=""),
    # Migration 6 (part "rules", §14): published with less than the notice period
    # (``limits.maintenance_notice_hours``) because it could not wait.
    sa.Column("urgent", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
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


# --- migration 3: one home for users, certificates and maintenance windows -------------
# The shapes below are frozen as of migration 3 (later migrations may change the tables
# above; this one must keep doing what it did).
_T = sa.DateTime(timezone=True)


def _frozen(name: str, *columns: tuple[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, t) for c, t in columns))


_S, _B = sa.String(), sa.LargeBinary()
_v3_users = _frozen(
    "users", ("user_id", _S), ("full_name", _S), ("role", _S), ("unit", _S), ("post", _S),
    ("phone", _S), ("status", _S), ("status_reason", _S), ("device_public_key_der", _B),
    ("created_at", _T), ("updated_at", _T), ("iin", _S), ("basis", _S),
    ("block_kind", _S), ("application_id", _S))
_v3_certificates = _frozen(
    "certificates", ("fingerprint", _S), ("user_id", _S), ("serial_hex", _S), ("key_id", _S),
    ("der", _B), ("registered_at", _T), ("issuer", _S), ("subject", _S),
    ("not_before", _T), ("not_after", _T), ("token_label", _S))
_v3_revocations = _frozen(
    "revocations", ("issuer", _S), ("serial_hex", _S), ("reason", _S), ("revoked_at", _T))
_v3_sessions = _frozen("sessions", ("cert_fingerprint", _S), ("ended_at", _T))
_v3_maintenance = _frozen(
    "maintenance", ("id", _S), ("starts_at", _T), ("ends_at", _T), ("description", _S),
    ("created_at", _T), ("published_by", _S))
_ops_users = _frozen(
    "ops_users", ("user_id", _S), ("iin", _S), ("full_name", _S), ("role", _S), ("unit", _S),
    ("post", _S), ("phone", _S), ("basis", _S), ("status", _S), ("block_kind", _S),
    ("status_reason", _S), ("application_id", _S), ("created_at", _T), ("updated_at", _T))
_ops_certificates = _frozen(
    "ops_certificates", ("fingerprint", _S), ("user_id", _S), ("serial_hex", _S),
    ("issuer", _S), ("subject", _S), ("not_before", _T), ("not_after", _T),
    ("token_label", _S), ("der", _B), ("registered_at", _T), ("revoked_at", _T),
    ("revocation_reason", _S))
_ops_maintenance = _frozen(
    "ops_maintenance", ("id", _S), ("starts_at", _T), ("ends_at", _T), ("what", _S),
    ("published_by", _S), ("published_at", _T))

#: Columns migration 3 adds to existing tables (name, DDL type, NOT NULL DEFAULT '').
_V3_COLUMNS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "users": (("iin", "VARCHAR(12)", True), ("basis", "VARCHAR(64)", True),
              ("block_kind", "VARCHAR(16)", False), ("application_id", "VARCHAR(40)", False)),
    "certificates": (("issuer", "VARCHAR(500)", True), ("subject", "VARCHAR(500)", True),
                     ("not_before", "TIMESTAMP WITH TIME ZONE", False),
                     ("not_after", "TIMESTAMP WITH TIME ZONE", False),
                     ("token_label", "VARCHAR(64)", False)),
    "maintenance": (("published_by", "VARCHAR(64)", True),),
}
_V3_INDEXES = ("ix_users_iin", "ix_certificates_user_id")


def _add_v3_columns(conn: Connection) -> None:
    """Add the columns a database made before migration 3 lacks (one made by migration 1
    from today's tables has them)."""
    sqlite = conn.dialect.name == "sqlite"
    for table, columns in _V3_COLUMNS.items():
        have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        for name, ddl, not_null in columns:
            if name in have:
                continue
            if sqlite and ddl.startswith("TIMESTAMP"):
                ddl = "DATETIME"
            tail = " DEFAULT '' NOT NULL" if not_null else ""
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}{tail}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE users ALTER COLUMN status_reason TYPE VARCHAR(1000)")
    for indexed in (users, certificates):
        for index in indexed.indexes:
            if index.name in _V3_INDEXES:
                index.create(conn, checkfirst=True)


def _certificate_details(der: bytes) -> dict[str, Any]:
    """Issuer, subject and validity read from a certificate's DER ({} if it does not parse)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    return {"issuer": cert.issuer.rfc4514_string()[:500],
            "subject": cert.subject.rfc4514_string()[:500],
            "not_before": cert.not_valid_before_utc, "not_after": cert.not_valid_after_utc}


def _move_users(conn: Connection) -> None:
    """``ops_users`` -> ``users``. Where both tables know a user the stricter status wins
    (a block in either one stood, R4); the operations record adds IIN, basis, block kind
    and application, and its unit and post (transfer edits were applied there only)."""
    u = _v3_users.c
    for o in conn.execute(sa.select(_ops_users)).all():
        cur = conn.execute(sa.select(_v3_users).where(u.user_id == o.user_id)).first()
        if cur is None:
            conn.execute(_v3_users.insert().values(
                user_id=o.user_id, full_name=o.full_name, role=o.role, unit=o.unit,
                post=o.post, phone=o.phone, status=o.status, status_reason=o.status_reason,
                device_public_key_der=None, created_at=o.created_at, updated_at=o.updated_at,
                iin=o.iin, basis=o.basis, block_kind=o.block_kind,
                application_id=o.application_id))
            continue
        values: dict[str, Any] = {
            "iin": o.iin, "basis": o.basis, "application_id": o.application_id,
            "unit": o.unit or cur.unit, "post": o.post or cur.post,
            "phone": cur.phone or o.phone,
            "updated_at": max(ensure_utc(cur.updated_at), ensure_utc(o.updated_at)),
        }
        if o.status != "active":
            values.update(status=o.status, status_reason=o.status_reason,
                          block_kind=o.block_kind)
        conn.execute(_v3_users.update().where(u.user_id == o.user_id).values(**values))


def _move_certificates(conn: Connection) -> None:
    """``ops_certificates`` -> ``certificates``; a revocation recorded there becomes a
    ``revocations`` row (and ends the certificate's live sessions)."""
    c, r = _v3_certificates.c, _v3_revocations.c
    known_users = set(conn.execute(sa.select(_v3_users.c.user_id)).scalars())
    for o in conn.execute(sa.select(_ops_certificates)).all():
        serial = format(int(o.serial_hex, 16), "x")
        have = conn.execute(sa.select(c.fingerprint).where(c.fingerprint == o.fingerprint))
        details = {"issuer": o.issuer, "subject": o.subject, "not_before": o.not_before,
                   "not_after": o.not_after, "token_label": o.token_label}
        if have.first() is not None:
            conn.execute(_v3_certificates.update().where(c.fingerprint == o.fingerprint)
                         .values(**details))
        elif o.user_id not in known_users:
            log.warning("migration 3: certificate %s of unknown user %r not moved",
                        o.fingerprint[:16], o.user_id)
            continue
        else:
            cert = x509.load_der_x509_certificate(bytes(o.der))
            conn.execute(_v3_certificates.insert().values(
                fingerprint=o.fingerprint, user_id=o.user_id, serial_hex=serial,
                key_id=key_id_for(cert.public_key()),  # type: ignore[arg-type]
                der=bytes(o.der), registered_at=o.registered_at, **details))
        if o.revoked_at is None:
            continue
        revoked = conn.execute(sa.select(r.serial_hex).where(
            r.serial_hex == serial, r.issuer.in_([o.issuer, "*"]))).first()
        if revoked is None:
            conn.execute(_v3_revocations.insert().values(
                issuer=o.issuer, serial_hex=serial,
                reason=o.revocation_reason or "unspecified", revoked_at=o.revoked_at))
        s = _v3_sessions.c
        conn.execute(_v3_sessions.update().where(
            s.cert_fingerprint == o.fingerprint, s.ended_at.is_(None)).values(
            ended_at=o.revoked_at))


def _move_windows(conn: Connection) -> None:
    """``ops_maintenance`` -> ``maintenance`` (``what`` is the description)."""
    m = _v3_maintenance.c
    for o in conn.execute(sa.select(_ops_maintenance)).all():
        if conn.execute(sa.select(m.id).where(m.id == o.id)).first() is not None:
            conn.execute(_v3_maintenance.update().where(m.id == o.id)
                         .values(published_by=o.published_by))
            continue
        conn.execute(_v3_maintenance.insert().values(
            id=o.id, starts_at=o.starts_at, ends_at=o.ends_at, description=o.what,
            created_at=o.published_at, published_by=o.published_by))


def _fill_certificate_details(conn: Connection) -> None:
    c = _v3_certificates.c
    rows = conn.execute(sa.select(c.fingerprint, c.der).where(c.issuer == "")).all()
    for row in rows:
        details = _certificate_details(bytes(row.der))
        if details:
            conn.execute(_v3_certificates.update().where(c.fingerprint == row.fingerprint)
                         .values(**details))


def _migration_3(conn: Connection) -> None:
    _add_v3_columns(conn)
    present = set(sa.inspect(conn).get_table_names())
    if "ops_users" in present:
        _move_users(conn)
    if "ops_certificates" in present:
        _move_certificates(conn)
    if "ops_maintenance" in present:
        _move_windows(conn)
    _fill_certificate_details(conn)
    for name in ("ops_certificates", "ops_users", "ops_maintenance"):
        if name in present:
            conn.exec_driver_sql(f"DROP TABLE {name}")


# --- migration 4: the audit log's signed checkpoints, kept outside the log directory ------
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(200), nullable=False),
    sa.Column("tree_size", sa.BigInteger, nullable=False, index=True),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    # The signed note exactly as the log signed it (a C2SP signed note, a few hundred
    # bytes; bounded by ``server.store.checkpoints.MAX_NOTE_BYTES``).
    sa.Column("note", sa.LargeBinary, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)


def _migration_4(conn: Connection) -> None:
    audit_checkpoints.create(conn, checkfirst=True)


# --- migration 5: the two indexes migration 2 gained after it had landed ----------------
# Migration 2 was edited after it landed (ix_sessions_cert_fingerprint and
# ix_seen_requests_seen_at were added to it): a database migrated in between records
# version 2 without them. Frozen shapes (not the live tables), created only if missing.
_V5_META = sa.MetaData()
_V5_INDEXES = (
    sa.Index("ix_sessions_cert_fingerprint",
             sa.Table("sessions", _V5_META, sa.Column("cert_fingerprint", sa.String(64)))
             .c.cert_fingerprint),
    sa.Index("ix_seen_requests_seen_at",
             sa.Table("seen_requests", _V5_META,
                      sa.Column("seen_at", sa.DateTime(timezone=True))).c.seen_at),
)


def _migration_5(conn: Connection) -> None:
    for index in _V5_INDEXES:
        index.create(conn, checkfirst=True)


# --- migration 6 (issue 15): cancelled maintenance windows -------------
#: One row per cancelled window (a window is never deleted: it stays in the record). A
#: window with a row here is neither announced (status, journal) nor closes the gateway.
maintenance_cancellations = sa.Table(
    "maintenance_cancellations",
    metadata,
    sa.Column("window_id", sa.String(64), primary_key=True),  # maintenance.id
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_by", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(2000), nullable=False),
)
_V6_META = sa.MetaData()
_v6_maintenance_cancellations = sa.Table(
    "maintenance_cancellations",
    _V6_META,
    sa.Column("window_id", sa.String(64), primary_key=True),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_by", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(2000), nullable=False),
)


def _migration_adminlib(conn: Connection) -> None:
    """A frozen shape (not the live table), created if missing."""
    _v6_maintenance_cancellations.create(conn, checkfirst=True)
# --- migration 7 (issue 16): compliance officers and FM-1 messages -------------
# A provider's compliance officer is a user (role ``compliance_officer``) with one row
# here naming the provider's BIN. An FM-1 message is one row of ``fm1_messages`` (never
# updated but for the receipt of its own submission and a later list match; a correction
# or withdrawal is a new row naming the one it amends) and one row per party in
# ``fm1_parties``. Housekeeping never deletes either (``retention_until``: see
# ``server/reporting/store.py``).
provider_officers = sa.Table(
    "provider_officers",
    metadata,
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), primary_key=True),
    sa.Column("provider_bin", sa.String(12), nullable=False, index=True),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
)

fm1_messages = sa.Table(
    "fm1_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider_bin", sa.String(12), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("amends", sa.String(64), nullable=True),
    sa.Column("submitted_by", sa.String(64), nullable=False, index=True),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("operation_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("recognised_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("lateness_seconds", sa.BigInteger, nullable=False),
    sa.Column("retention_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("message_json", sa.Text, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("envelope_sha256", sa.String(64), nullable=False),
    sa.Column("request_seq", sa.BigInteger, nullable=False),
    sa.Column("receipt_seq", sa.BigInteger, nullable=True),
    sa.Column("receipt_leaf_hash", sa.LargeBinary, nullable=True),
    sa.Column("receipt_tree_size", sa.BigInteger, nullable=True),
    sa.Column("list_match", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.UniqueConstraint("provider_bin", "message_id", name="uq_fm1_provider_message"),
)

fm1_parties = sa.Table(
    "fm1_parties",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_row", sa.Integer, sa.ForeignKey("fm1_messages.id"), nullable=False,
              index=True),
    sa.Column("role", sa.String(24), nullable=False),
    sa.Column("idn", sa.String(12), nullable=True, index=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("birth_date", sa.Date, nullable=True),
    sa.Column("residence", sa.String(2), nullable=False),
)



def _v7_fm1_shapes(meta: sa.MetaData) -> list[sa.Table]:
    """The three tables as migration 7 makes them, in ``meta``: a frozen shape, not the
    live tables above (a later change of those is a migration of its own)."""
    _T7 = sa.DateTime(timezone=True)
    sa.Table("users", meta, sa.Column("user_id", sa.String(64), primary_key=True))  # FK only
    officers = sa.Table(
        "provider_officers", meta,
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), primary_key=True),
        sa.Column("provider_bin", sa.String(12), nullable=False, index=True),
        sa.Column("enrolled_at", _T7, nullable=False),
    )
    messages = sa.Table(
        "fm1_messages", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider_bin", sa.String(12), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("amends", sa.String(64), nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=False, index=True),
        sa.Column("cert_fingerprint", sa.String(64), nullable=False),
        sa.Column("received_at", _T7, nullable=False, index=True),
        sa.Column("operation_at", _T7, nullable=True),
        sa.Column("decided_at", _T7, nullable=True),
        sa.Column("recognised_at", _T7, nullable=True),
        sa.Column("deadline_at", _T7, nullable=True),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("lateness_seconds", sa.BigInteger, nullable=False),
        sa.Column("retention_until", _T7, nullable=True),
        sa.Column("message_json", sa.Text, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("envelope_sha256", sa.String(64), nullable=False),
        sa.Column("request_seq", sa.BigInteger, nullable=False),
        sa.Column("receipt_seq", sa.BigInteger, nullable=True),
        sa.Column("receipt_leaf_hash", sa.LargeBinary, nullable=True),
        sa.Column("receipt_tree_size", sa.BigInteger, nullable=True),
        sa.Column("list_match", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("provider_bin", "message_id", name="uq_fm1_provider_message"),
    )
    parties = sa.Table(
        "fm1_parties", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_row", sa.Integer, sa.ForeignKey("fm1_messages.id"),
                  nullable=False, index=True),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("idn", sa.String(12), nullable=True, index=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("residence", sa.String(2), nullable=False),
    )
    return [officers, messages, parties]


def _migration_fm1(conn: Connection) -> None:
    """Frozen shapes (not the live tables), created if missing."""
    meta = sa.MetaData()
    meta.create_all(conn, tables=_v7_fm1_shapes(meta), checkfirst=True)
# --- migration 8 (issue 16, point 6): the List and the Lists ---------------
# Each published version of a list (signed envelope, digest) and its entries; the
# clients providers watch; every screening result (kept >= 5 years, never deleted by
# housekeeping: ``retain_until``); the providers' outbox of new matches.
_LT = sa.DateTime(timezone=True)
screening_list_versions = sa.Table(
    "screening_list_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_name", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the file, hex
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("source_reference", sa.String(500), nullable=False),
    sa.Column("published_at", _LT, nullable=False),
    sa.Column("published_by", sa.String(64), nullable=False),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),  # siogw.v1.Envelope bytes
    sa.Column("request_seq", sa.BigInteger, nullable=True),  # its write-ahead record
    sa.UniqueConstraint("list_name", "version", name="uq_screening_list_version"),
)
screening_list_entries = sa.Table(
    "screening_list_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("screening_list_versions.id"),
              nullable=False, index=True),
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("iin_bin", sa.String(12), nullable=False),
    sa.Column("names_json", sa.Text, nullable=False),
    sa.Column("birth_date", sa.String(10), nullable=False),
    sa.Column("country", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(500), nullable=False),
)
screening_watch = sa.Table(
    "screening_watch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("client_ref", sa.String(128), nullable=False),
    sa.Column("iin_bin", sa.String(12), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("birth_date", sa.String(10), nullable=False),
    sa.Column("registered_by", sa.String(64), nullable=False),
    sa.Column("registered_at", _LT, nullable=False),
    sa.UniqueConstraint("provider", "client_ref", name="uq_screening_watch_client"),
)
screening_results = sa.Table(
    "screening_results",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(64), nullable=False, index=True),
    sa.Column("client_ref", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # screen / watch / rescreen
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("iin_bin", sa.String(12), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("birth_date", sa.String(10), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("versions_json", sa.Text, nullable=False),
    sa.Column("matches_json", sa.Text, nullable=False),
    sa.Column("screened_at", _LT, nullable=False),
    sa.Column("retain_until", _LT, nullable=False),
)
screening_outbox = sa.Table(
    "screening_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(64), nullable=False, index=True),
    sa.Column("client_ref", sa.String(128), nullable=False),
    sa.Column("list_name", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("entry_ref", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("summary", sa.String(1000), nullable=False),
    sa.Column("result_id", sa.String(32), nullable=False),
    sa.Column("created_at", _LT, nullable=False),
    sa.Column("read_at", _LT, nullable=True),
    sa.UniqueConstraint("provider", "client_ref", "list_name", "entry_ref",
                        name="uq_screening_outbox_match"),
)


def _v8_lists_shapes(meta: sa.MetaData) -> list[sa.Table]:
    """The five tables as migration 8 makes them, in ``meta``: a frozen shape, not the
    live tables above (a later change of those is a migration of its own)."""
    _T8 = sa.DateTime(timezone=True)
    versions = sa.Table(
        "screening_list_versions", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_name", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("source_reference", sa.String(500), nullable=False),
        sa.Column("published_at", _T8, nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("cert_fingerprint", sa.String(64), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("request_seq", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("list_name", "version", name="uq_screening_list_version"),
    )
    entries = sa.Table(
        "screening_list_entries", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("screening_list_versions.id"),
                  nullable=False, index=True),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("iin_bin", sa.String(12), nullable=False),
        sa.Column("names_json", sa.Text, nullable=False),
        sa.Column("birth_date", sa.String(10), nullable=False),
        sa.Column("country", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(500), nullable=False),
    )
    watch = sa.Table(
        "screening_watch", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("client_ref", sa.String(128), nullable=False),
        sa.Column("iin_bin", sa.String(12), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("birth_date", sa.String(10), nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", _T8, nullable=False),
        sa.UniqueConstraint("provider", "client_ref", name="uq_screening_watch_client"),
    )
    results = sa.Table(
        "screening_results", meta,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False, index=True),
        sa.Column("client_ref", sa.String(128), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("iin_bin", sa.String(12), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("birth_date", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("versions_json", sa.Text, nullable=False),
        sa.Column("matches_json", sa.Text, nullable=False),
        sa.Column("screened_at", _T8, nullable=False),
        sa.Column("retain_until", _T8, nullable=False),
    )
    outbox = sa.Table(
        "screening_outbox", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False, index=True),
        sa.Column("client_ref", sa.String(128), nullable=False),
        sa.Column("list_name", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("entry_ref", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("result_id", sa.String(32), nullable=False),
        sa.Column("created_at", _T8, nullable=False),
        sa.Column("read_at", _T8, nullable=True),
        sa.UniqueConstraint("provider", "client_ref", "list_name", "entry_ref",
                            name="uq_screening_outbox_match"),
    )
    return [versions, entries, watch, results, outbox]


def _migration_lists(conn: Connection) -> None:
    """Frozen shapes (not the live tables), created if missing."""
    meta = sa.MetaData()
    meta.create_all(conn, tables=_v8_lists_shapes(meta), checkfirst=True)
# --- migration 9 (issue 15): PIN age reported at login, urgent maintenance ---------
#: table -> (column, DDL); frozen text, not the live tables.
_RULES_COLUMNS = (
    ("certificates", "pin_changed_at", "TIMESTAMP WITH TIME ZONE"),
    ("certificates", "pin_reported_at", "TIMESTAMP WITH TIME ZONE"),
    ("maintenance", "urgent", "BOOLEAN DEFAULT FALSE NOT NULL"),
)


def _migration_rules(conn: Connection) -> None:
    """Add the columns (a database made by migration 1 from today's tables has them)."""
    sqlite = conn.dialect.name == "sqlite"
    for table, name, ddl in _RULES_COLUMNS:
        have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        if name in have:
            continue
        if sqlite:
            ddl = ddl.replace("TIMESTAMP WITH TIME ZONE", "DATETIME").replace(
                "DEFAULT FALSE", "DEFAULT 0")
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")


# --- migration 10 (issue 18): the authentication epoch --------------------------------
#: The tables whose rows decide whether a session may act (session, user, certificate,
#: revocations, consent, maintenance windows): a change to any of them bumps the epoch,
#: by a trigger of the database, so no write path can forget to (ADR 0007, session cache).
_EPOCH_TABLES = ("sessions", "users", "certificates", "revocations", "consents",
                 "maintenance", "maintenance_cancellations")
_EPOCH_DDL = "CREATE TABLE IF NOT EXISTS auth_epoch (id INTEGER NOT NULL PRIMARY KEY, " \
    "version BIGINT NOT NULL)"
_EPOCH_ROW = "INSERT INTO auth_epoch (id, version) SELECT 1, 0 WHERE NOT EXISTS " \
    "(SELECT 1 FROM auth_epoch WHERE id = 1)"
_EPOCH_BUMP = "UPDATE auth_epoch SET version = version + 1 WHERE id = 1"
#: PostgreSQL: one statement-level trigger per table, BEFORE the statement, so that a
#: transaction takes the epoch's row lock before any row lock of its statement (two
#: writers then queue on the epoch instead of deadlocking on each other's rows).
_EPOCH_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION siogw_bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN UPDATE auth_epoch SET version = version + 1 WHERE id = 1; RETURN NULL; "
    "END $$")
_EPOCH_PG_TRIGGER = (
    "CREATE TRIGGER siogw_epoch_{table} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
    "ON {table} FOR EACH STATEMENT EXECUTE FUNCTION siogw_bump_auth_epoch()")
#: SQLite has row triggers only (one writer at a time: no lock order to keep).
_EPOCH_SQLITE_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS siogw_epoch_{table}_{op} AFTER {op} ON {table} "
    "BEGIN UPDATE auth_epoch SET version = version + 1 WHERE id = 1; END")


def _migration_epoch(conn: Connection) -> None:
    """The epoch table, its one row, and the triggers that bump it."""
    conn.exec_driver_sql(_EPOCH_DDL)
    conn.exec_driver_sql(_EPOCH_ROW)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(_EPOCH_PG_FUNCTION)
        for table in _EPOCH_TABLES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS siogw_epoch_{table} ON {table}")
            conn.exec_driver_sql(_EPOCH_PG_TRIGGER.format(table=table))
    elif dialect == "sqlite":
        for table in _EPOCH_TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.exec_driver_sql(_EPOCH_SQLITE_TRIGGER.format(table=table, op=op))
    else:
        raise RuntimeError(f"no epoch triggers for the {dialect} database")


#: The epoch (live shape; created by migration 10, never by ``create_all``).
auth_epoch = sa.Table(
    "auth_epoch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)


#: Ordered migrations: (version, description, apply). Append; never edit an applied one:
#: ``tests/server/test_migration_digests.py`` holds each one's digest and fails when a
#: shipped migration changes (issue 14, finding 7).
MIGRATIONS: Sequence[tuple[int, str, Callable[[Connection], None]]] = (
    (1, "initial control-plane schema", _migration_1),
    (2, "indexes: revocations by serial, maintenance by end, sessions by certificate, "
        "request ids by time",
     _migration_2),
    (3, "one home: ops_users, ops_certificates and ops_maintenance moved into users, "
        "certificates (+ revocations) and maintenance, then dropped",
     _migration_3),
    (4, "audit_checkpoints: the audit log's signed checkpoints, outside the log directory",
     _migration_4),
    (5, "indexes migration 2 gained after it landed: sessions by certificate, request ids "
        "by time (created if missing)",
     _migration_5),
    (6, "maintenance_cancellations: cancelled maintenance windows", _migration_adminlib),
    (7, "fm1: provider_officers (a compliance officer's provider BIN), fm1_messages and "
        "fm1_parties (FM-1 reporting, issue 16)",
     _migration_fm1),
    (8, "the List and the Lists: list versions and entries, watched clients, screening "
        "results, the providers' outbox", _migration_lists),
    (9, "certificates: the PIN change the client reports at login; maintenance: urgent",
     _migration_rules),
    (10, "auth_epoch: a version the database bumps (triggers) on every change of sessions, "
         "users, certificates, revocations, consents and maintenance windows",
     _migration_epoch),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: Connection) -> None:
    """Apply the missing migrations, in order, on ``conn`` (one transaction)."""
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
