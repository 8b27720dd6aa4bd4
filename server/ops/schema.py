"""The operations tables (prefix ``ops_``), in their own :class:`~sqlalchemy.MetaData`.

They live beside the gateway's control-plane tables (:mod:`server.store.schema`) in the
same database. Users (and their status), certificates (revoked when ``revocations``
says so) and maintenance windows are NOT here: they have one home each, the control
plane's ``users``, ``certificates`` and ``maintenance`` tables, which the services read
and write directly (migration 3 of the store moved ``ops_users``, ``ops_certificates``
and ``ops_maintenance`` there). Nothing here has a foreign key into those tables. Times
are ``DateTime(timezone=True)`` holding UTC (SQLite gives them back naive: read them
through :func:`server.ops.base.utc`). :func:`create_schema` is idempotent.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from server.ops.errors import OpsStorageError
from server.store.schema import migrate

metadata = sa.MetaData()
_T = sa.DateTime(timezone=True)

applications = sa.Table(
    "ops_applications", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("iin", sa.String(12), nullable=False, index=True),
    sa.Column("full_name", sa.String(300), nullable=False),
    sa.Column("unit", sa.String(300), nullable=False),
    sa.Column("post", sa.String(300), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False),
    sa.Column("requested_role", sa.String(32), nullable=False),
    sa.Column("basis", sa.String(64), nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("envelope_json", sa.LargeBinary, nullable=False),
    sa.Column("corrects", sa.String(40), nullable=True),
    sa.Column("received_at", _T, nullable=False),
    sa.Column("deadline_at", _T, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("decided_at", _T, nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("refusal_reason", sa.String(1000), nullable=True),
    sa.Column("refusal_envelope", sa.LargeBinary, nullable=True),
    sa.Column("user_id", sa.String(64), nullable=True),
)



transfers = sa.Table(
    "ops_transfers", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("unit", sa.String(300), nullable=False),
    sa.Column("post", sa.String(300), nullable=False),
    sa.Column("order_number", sa.String(100), nullable=False),
    sa.Column("order_signed_at", _T, nullable=False),
    sa.Column("received_at", _T, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("envelope_json", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("applied_at", _T, nullable=True),
    sa.Column("applied_by", sa.String(64), nullable=True),
)

outbox = sa.Table(
    "ops_agency_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", _T, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("alert_id", sa.Integer, nullable=True),
    sa.Column("read_at", _T, nullable=True),
    sa.Column("read_by", sa.String(64), nullable=True),
)

#: §23: the prosecutor's copy of the violations the operator found (same shape as the
#: agency's outbox; its own table, read by the prosecutor only).
prosecutor_outbox = sa.Table(
    "ops_prosecutor_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", _T, nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("alert_id", sa.Integer, nullable=True),
    sa.Column("read_at", _T, nullable=True),
    sa.Column("read_by", sa.String(64), nullable=True),
)

alerts = sa.Table(
    "ops_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("raised_at", _T, nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("blocking", sa.Boolean, nullable=False),
    sa.Column("summary", sa.String(1000), nullable=False),
    sa.Column("details_json", sa.Text, nullable=False),
    sa.Column("record_seq", sa.BigInteger, nullable=True, index=True),  # replay at start
    sa.Column("acknowledged_at", _T, nullable=True),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
)


emergencies = sa.Table(
    "ops_emergencies", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("onset_at", _T, nullable=False),
    sa.Column("causes", sa.String(2000), nullable=False),
    sa.Column("measures", sa.String(2000), nullable=False),
    sa.Column("resolved_at", _T, nullable=True),
    sa.Column("recorded_by", sa.String(64), nullable=False),
    sa.Column("recorded_at", _T, nullable=False),
)

#: Audit records of automatic Journal entries waiting for the audit log
#: (:mod:`server.ops.autojournal`: the entry must not depend on the failed log).
journal_pending = sa.Table(
    "ops_journal_pending", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", _T, nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("details_json", sa.Text, nullable=False),
)

reviews = sa.Table(
    "ops_reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("controller_id", sa.String(64), nullable=False, index=True),
    sa.Column("period_start", _T, nullable=False),
    sa.Column("period_end", _T, nullable=False),
    sa.Column("reviewed_at", _T, nullable=False),
    sa.Column("note", sa.String(1000), nullable=False),
)

resolutions = sa.Table(
    "ops_resolutions", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("number", sa.String(100), nullable=False, unique=True),
    sa.Column("resolution_date", sa.String(10), nullable=False),
    sa.Column("prosecutor_id", sa.String(64), nullable=False, index=True),
    sa.Column("scope_users_json", sa.Text, nullable=False),
    sa.Column("period_start", _T, nullable=False),
    sa.Column("period_end", _T, nullable=False),
    sa.Column("envelope_json", sa.LargeBinary, nullable=False),
    sa.Column("cert_fingerprint", sa.String(64), nullable=False),
    sa.Column("registered_at", _T, nullable=False),
)

TABLES = (applications, transfers, outbox, alerts, emergencies, reviews, resolutions,
          prosecutor_outbox, journal_pending)


def create_schema(engine: Engine) -> None:
    """Bring the control-plane schema up to date (the store's migrations: the services
    use its users, certificates and maintenance tables), then create the missing ``ops_``
    tables and indexes (idempotent).

    ``create_all`` skips a table that exists, with its indexes: an index added to an
    existing table since (``ops_alerts.record_seq``) is created here.
    """
    try:
        with engine.begin() as conn:
            migrate(conn)
        metadata.create_all(engine, tables=list(TABLES))
        with engine.begin() as conn:
            for table in TABLES:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
    except SQLAlchemyError as exc:
        raise OpsStorageError("cannot create the operations tables", detail=str(exc)) from exc


def drop_schema(engine: Engine) -> None:
    """Drop the ``ops_`` tables (tests and tear-down only)."""
    try:
        metadata.drop_all(engine, tables=list(TABLES))
    except SQLAlchemyError as exc:
        raise OpsStorageError("cannot drop the operations tables", detail=str(exc)) from exc
