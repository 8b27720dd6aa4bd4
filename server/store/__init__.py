"""The control-plane database, a package by aggregate; :class:`Store` is its facade.

SQLAlchemy 2.x Core over SQLite (default, in ``$SIOGW_HOME``) or PostgreSQL (by URL).

============================  ===========================================================
module                        owns
============================  ===========================================================
:mod:`~server.store.schema`   the tables and the numbered migrations (``Store.open``)
:mod:`~server.store.users`    users and their status (a block ends live sessions)
:mod:`~server.store.certificates`  certificates, revocations, the DB revocation store
:mod:`~server.store.sessions` logins, sessions, consents; the one read of every call
:mod:`~server.store.requests` the replay guard (request ids claimed once)
:mod:`~server.store.maintenance`  maintenance windows
:mod:`~server.store.checkpoints` the audit log's signed checkpoints, outside its directory
:mod:`~server.store.housekeeping` WAL checkpoints and pruning, in background threads
:mod:`~server.store.base`     engine, transactions, the hot path's pinned connection
:mod:`~server.store.errors`   :class:`StoreUnavailable` and the store's refusals
============================  ===========================================================

Each fact has one table (migration 3): the gateway's per-call check, the worker
processes and the operations domain (``server.ops``, which writes through the
aggregate modules' connection-level functions inside its own audited transactions)
read and write the same rows; nothing is mirrored. Times are stored as UTC; the Astana
rendering happens at the edges (R9). The audit log is *not* here: it lives in
``audit/`` (WORM segments). All methods are synchronous and short; every failure of the
database surfaces as :class:`StoreUnavailable` (a :class:`~siogw_api.errors.StorageError`).
"""

from __future__ import annotations

import sqlalchemy as sa

from server.store.certificates import CertificateStore
from server.store.checkpoints import CheckpointStore
from server.store.housekeeping import Housekeeping
from server.store.maintenance import MaintenanceStore
from server.store.requests import RequestStore
from server.store.schema import metadata, migrate, schema_version
from server.store.sessions import SessionStore
from server.store.users import UserStore


class Store(CertificateStore, UserStore, SessionStore, RequestStore, MaintenanceStore,
            CheckpointStore, Housekeeping):
    """The control-plane database (see the package docstring)."""

    def open(self) -> Store:
        """Apply missing migrations; returns self."""
        with self._tx() as conn:
            migrate(conn)
        return self

    def version(self) -> int:
        with self._tx() as conn:
            value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        return int(value or 0)

    def close(self) -> None:
        self.stop_background()
        self.engine.dispose()

    def drop_all(self) -> None:
        """Drop every table (tests only)."""
        with self._tx() as conn:
            metadata.drop_all(conn)
