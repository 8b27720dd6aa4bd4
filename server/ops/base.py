"""What every operations service shares: the database, the clock and the audit callable.

Every service is a plain synchronous object over an :class:`OpsContext`. Each state
change runs in one database transaction and calls :attr:`OpsContext.record` *inside* it,
just before the commit: if the audit log refuses the event, the transaction rolls back
and the action does not happen (fail closed, R11). The gateway runs these services in
a worker thread (``asyncio.to_thread``) and passes a recorder that appends to the audit
log synchronously (``AuditLog.append_sync``), see :func:`audit_log_recorder`. Before
calling a service that changes state, the gateway has already written the request's own
record (the write-ahead rule, ``server.writeahead``); the service's record is the effect's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from audit.record import AuditRecord
from server.ops.errors import Duplicate, InvalidDocument, OpsStorageError
from signing import documents
from siogw_api.errors import SiogwError
from siogw_api.timeutil import ensure_utc, now_utc, parse_iso

Clock = Callable[[], _dt.datetime]


class Recorder(Protocol):
    """The audit callable: record one event durably or raise (an ``AuditError``)."""

    def __call__(
        self, event_type: str, actor: str, outcome: str, details: Mapping[str, Any]
    ) -> None: ...


@dataclass(frozen=True)
class OpsContext:
    """Engine, clock and audit recorder shared by the services."""

    engine: Engine
    record: Recorder
    clock: Clock = now_utc

    def now(self) -> _dt.datetime:
        return ensure_utc(self.clock())

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction; database failures surface as :class:`OpsStorageError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SiogwError:
            raise
        except IntegrityError as exc:  # a unique key taken, usually by a concurrent change
            raise Duplicate("conflicting change: the object exists already",
                            detail=str(exc.orig)[:300]) from exc
        except SQLAlchemyError as exc:
            raise OpsStorageError("operations database error", detail=str(exc)[:500]) from exc


def audit_log_recorder(log: Any) -> Recorder:
    """A :class:`Recorder` over ``audit.AuditLog`` (blocking ``append_sync``).

    Call the services from a worker thread, never from the event loop thread.
    """
    def record(event_type: str, actor: str, outcome: str, details: Mapping[str, Any]) -> None:
        log.append_sync(
            AuditRecord(actor=actor, event=event_type, outcome=outcome, details=dict(details))
        )

    return record


# --- small helpers shared by the services ------------------------------------------------
def utc(value: _dt.datetime | None) -> _dt.datetime | None:
    """Aware UTC (SQLite returns naive datetimes, which are UTC)."""
    return ensure_utc(value) if value is not None else None


def utc_required(value: _dt.datetime) -> _dt.datetime:
    return ensure_utc(value)


def parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    """A signed payload as a JSON object, or :class:`InvalidDocument`."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidDocument(f"{what} is not JSON", detail=str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise InvalidDocument(f"{what} is not a JSON object")
    return doc


def text_field(doc: Mapping[str, Any], name: str, what: str, *, required: bool = True,
               limit: int = 500) -> str:
    value = doc.get(name, "")
    if not isinstance(value, str):
        raise InvalidDocument(f"{what}: {name!r} is not a string")
    value = value.strip()
    if required and not value:
        raise InvalidDocument(f"{what}: {name!r} is missing or empty")
    if len(value) > limit:
        raise InvalidDocument(f"{what}: {name!r} is longer than {limit} characters")
    return value


def time_field(doc: Mapping[str, Any], name: str, what: str) -> _dt.datetime:
    value = text_field(doc, name, what, limit=64)
    try:
        return parse_iso(value)
    except SiogwError as exc:
        raise InvalidDocument(f"{what}: {name!r} is not an ISO 8601 time with offset") from exc


def b64_field(doc: Mapping[str, Any], name: str, what: str) -> bytes:
    value = text_field(doc, name, what, limit=64 * 1024)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidDocument(f"{what}: {name!r} is not base64") from None


dumps = documents.dumps  # compact, key-sorted JSON (the payloads the domain signs)


def count(conn: Connection, stmt: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one())
