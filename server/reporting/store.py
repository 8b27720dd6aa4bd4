"""Where FM-1 messages are kept: ``fm1_messages``, ``fm1_parties`` and the compliance
officers' providers (``provider_officers``), tables of :mod:`server.store.schema`
(migration 6).

Nothing here overwrites a message: a row is inserted once, with the signed envelope
exactly as received; afterwards only the receipt of its own submission (written when the
outcome record is durable) and the list-match flag (set by re-screening) are filled in.
A correction or withdrawal is a row of its own naming the one it amends (``amends``).

**Retention** (R18, S§10.14, S§29, S§33): every row carries ``retention_until``, the
earliest time it may be destroyed, computed when it is stored by
:func:`retention_until`:

* when the business relationship has ended (``relationship_ended_on``), or never began
  (``refusal_relations``), or the operation was a one-off (``one_off``): five years after
  the latest of that end (the day after ``relationship_ended_on``, Astana time), the
  operation's date, the decision and the receipt of the message;
* otherwise ``NULL``: the relationship goes on, and the message is kept as long as it
  does (the provider's later termination message carries the end).

Housekeeping (:mod:`server.store.housekeeping`) never deletes from these tables; no code
of the gateway deletes from them (``tests/server/reporting/test_retention.py``).

:func:`iter_parties` yields every party of every stored message with its provider's
BIN: re-screening against a new List / Lists version (``server.screening``) walks it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from server.reporting.errors import Fm1Duplicate
from server.reporting.fm1 import Fm1Message
from server.store.errors import StoreUnavailable
from server.store.schema import fm1_messages, fm1_parties, provider_officers
from siogw_api.errors import InputError, PolicyError, StorageError
from siogw_api.timeutil import astana_zone, ensure_utc, now_utc, to_astana

#: Years a message is kept at least after the relationship ends (S§10.14, S§29).
RETENTION_YEARS = 5


def _plus_years(day: _dt.date, years: int) -> _dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February -> 1 March
        return day.replace(year=day.year + years, month=3, day=1)


def retention_until(msg: Fm1Message, received_at: _dt.datetime) -> _dt.datetime | None:
    """The earliest time the message may be destroyed (UTC), or None while the business
    relationship lasts (module docstring)."""
    ended = msg.relationship_ended_on
    if ended is None and not (msg.one_off or msg.kind == "refusal_relations"):
        return None
    anchors = [to_astana(received_at).date()]
    if ended is not None:
        anchors.append(ended + _dt.timedelta(days=1))
    for when in (msg.decided_at, msg.operation.date if msg.operation else None):
        if when is not None:
            anchors.append(to_astana(when).date())
    day = _plus_years(max(anchors), RETENTION_YEARS)
    return ensure_utc(_dt.datetime(day.year, day.month, day.day, tzinfo=astana_zone()))


@dataclass(frozen=True)
class StoredMessage:
    """One row of ``fm1_messages`` (times UTC)."""

    id: int
    provider_bin: str
    message_id: str
    kind: str
    action: str
    amends: str | None
    submitted_by: str
    cert_fingerprint: str
    received_at: _dt.datetime
    deadline_at: _dt.datetime | None
    late: bool
    lateness_seconds: int
    retention_until: _dt.datetime | None
    message_json: str
    envelope: bytes
    envelope_sha256: str
    request_seq: int
    receipt_seq: int | None
    receipt_leaf_hash: bytes | None
    receipt_tree_size: int | None
    list_match: bool

    @property
    def receipt(self) -> tuple[int, bytes, int] | None:
        if self.receipt_seq is None or self.receipt_leaf_hash is None:
            return None
        return (self.receipt_seq, self.receipt_leaf_hash,
                self.receipt_tree_size or self.receipt_seq + 1)


@dataclass(frozen=True)
class StoredParty:
    """A party of a stored message, for re-screening."""

    message_id: str
    role: str
    name: str
    residence: str
    idn: str | None
    birth_date: _dt.date | None
    #: The officer who submitted the message (the agency's alert of a match names them).
    submitted_by: str = ""


@dataclass(frozen=True)
class MessageFilter:
    provider_bin: str | None = None
    kind: str | None = None
    since: _dt.datetime | None = None
    until: _dt.datetime | None = None
    late_only: bool = False
    list_match_only: bool = False
    submitted_by: str | None = None

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in ("provider_bin", "kind", "submitted_by"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.late_only:
            out["late_only"] = True
        if self.list_match_only:
            out["list_match_only"] = True
        return out


def _row(row: sa.Row[tuple[object, ...]]) -> StoredMessage:
    m = row._mapping
    return StoredMessage(
        id=int(m["id"]), provider_bin=m["provider_bin"], message_id=m["message_id"],
        kind=m["kind"], action=m["action"], amends=m["amends"],
        submitted_by=m["submitted_by"], cert_fingerprint=m["cert_fingerprint"],
        received_at=ensure_utc(m["received_at"]),
        deadline_at=ensure_utc(m["deadline_at"]) if m["deadline_at"] is not None else None,
        late=bool(m["late"]), lateness_seconds=int(m["lateness_seconds"]),
        retention_until=(ensure_utc(m["retention_until"])
                         if m["retention_until"] is not None else None),
        message_json=m["message_json"], envelope=bytes(m["envelope"]),
        envelope_sha256=m["envelope_sha256"], request_seq=int(m["request_seq"]),
        receipt_seq=int(m["receipt_seq"]) if m["receipt_seq"] is not None else None,
        receipt_leaf_hash=(bytes(m["receipt_leaf_hash"])
                           if m["receipt_leaf_hash"] is not None else None),
        receipt_tree_size=(int(m["receipt_tree_size"])
                           if m["receipt_tree_size"] is not None else None),
        list_match=bool(m["list_match"]),
    )


class ReportingStore:
    """The FM-1 tables over the control-plane database's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (IntegrityError, StorageError, PolicyError, InputError):
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable("control-plane database error", detail=str(exc)) from exc

    # -- officers ----------------------------------------------------------------------------
    def set_provider(self, user_id: str, provider_bin: str) -> None:
        """Name the provider a compliance officer reports for (an existing user; the
        enrolment writes it in the user's own transaction: :func:`add_provider_officer`)."""
        with self._tx() as conn:
            add_provider_officer(conn, user_id, provider_bin)

    def provider_of(self, user_id: str) -> str | None:
        with self._tx() as conn:
            value = conn.execute(sa.select(provider_officers.c.provider_bin).where(
                provider_officers.c.user_id == user_id)).scalar()
        return None if value is None else str(value)

    # -- messages ----------------------------------------------------------------------------
    def find(self, provider_bin: str, message_id: str) -> StoredMessage | None:
        t = fm1_messages.c
        with self._tx() as conn:
            row = conn.execute(sa.select(fm1_messages).where(
                t.provider_bin == provider_bin, t.message_id == message_id)).first()
        return None if row is None else _row(row)

    def amended_by(self, provider_bin: str, message_id: str) -> list[str]:
        t = fm1_messages.c
        with self._tx() as conn:
            return [str(v) for v in conn.execute(
                sa.select(t.message_id).where(t.provider_bin == provider_bin,
                                              t.amends == message_id).order_by(t.id)
            ).scalars()]

    def insert(
        self, msg: Fm1Message, *, submitted_by: str, cert_fingerprint: str,
        received_at: _dt.datetime, deadline_at: _dt.datetime | None, lateness_seconds: int,
        envelope: bytes, envelope_sha256: str, request_seq: int,
    ) -> StoredMessage:
        """Store an accepted message and its parties in one transaction;
        :class:`Fm1Duplicate` when the provider sent this message id before."""
        values = dict(
            provider_bin=msg.provider_bin, message_id=msg.message_id, kind=msg.kind,
            action=msg.action, amends=msg.amends, submitted_by=submitted_by,
            cert_fingerprint=cert_fingerprint, received_at=received_at,
            operation_at=msg.operation.date if msg.operation else None,
            decided_at=msg.decided_at, recognised_at=msg.recognised_at,
            deadline_at=deadline_at, late=lateness_seconds > 0,
            lateness_seconds=lateness_seconds,
            retention_until=retention_until(msg, received_at),
            message_json=msg.canonical_json(), envelope=envelope,
            envelope_sha256=envelope_sha256, request_seq=request_seq, list_match=False,
        )
        try:
            with self._tx() as conn:
                inserted = conn.execute(fm1_messages.insert().values(**values))
                row_id = inserted.inserted_primary_key[0]  # type: ignore[index]
                if msg.parties:
                    conn.execute(fm1_parties.insert(), [
                        {"message_row": row_id, "role": p.role, "idn": p.idn,
                         "name": p.name, "birth_date": p.birth_date,
                         "residence": p.residence} for p in msg.parties])
        except IntegrityError:
            exc = duplicate(self.find(msg.provider_bin, msg.message_id), envelope_sha256)
            raise exc from None
        found = self.find(msg.provider_bin, msg.message_id)
        assert found is not None
        return found

    def set_receipt(self, row_id: int, seq: int, leaf_hash: bytes, tree_size: int) -> None:
        """The receipt of the message's own submission (its outcome record)."""
        t = fm1_messages.c
        with self._tx() as conn:
            conn.execute(fm1_messages.update().where(t.id == row_id, t.receipt_seq.is_(None))
                         .values(receipt_seq=seq, receipt_leaf_hash=leaf_hash,
                                 receipt_tree_size=tree_size))

    def mark_list_match(self, provider_bin: str, message_id: str) -> bool:
        """Flag a stored message whose party matched a List / Lists entry (re-screening);
        False when there is no such message."""
        with self._tx() as conn:
            return mark_list_match(conn, provider_bin, message_id)

    def page(self, flt: MessageFilter, *, after_id: int = 0,
             limit: int = 100) -> tuple[list[StoredMessage], int | None]:
        """Messages matching ``flt`` in the order received (keyset paging on ``id``);
        the rows and the ``after_id`` of the next page (None: no more)."""
        t = fm1_messages.c
        q = sa.select(fm1_messages).where(t.id > after_id)
        if flt.provider_bin:
            q = q.where(t.provider_bin == flt.provider_bin)
        if flt.kind:
            q = q.where(t.kind == flt.kind)
        if flt.since is not None:
            q = q.where(t.received_at >= flt.since)
        if flt.until is not None:
            q = q.where(t.received_at < flt.until)
        if flt.late_only:
            q = q.where(t.late.is_(True))
        if flt.list_match_only:
            q = q.where(t.list_match.is_(True))
        if flt.submitted_by:
            q = q.where(t.submitted_by == flt.submitted_by)
        with self._tx() as conn:
            rows = [_row(r) for r in conn.execute(q.order_by(t.id).limit(limit + 1))]
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1].id
        return rows, None

    def iter_parties(self, *, chunk: int = 1000) -> Iterator[tuple[str, StoredParty]]:
        """Every party of every stored message, with its provider's BIN (for
        re-screening after a List / Lists change); read in chunks."""
        m, p = fm1_messages.c, fm1_parties.c
        after = 0
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    sa.select(p.id, m.provider_bin, m.message_id, p.role, p.name,
                              p.residence, p.idn, p.birth_date, m.submitted_by)
                    .select_from(fm1_parties.join(fm1_messages, m.id == p.message_row))
                    .where(p.id > after).order_by(p.id).limit(chunk)).all()
            if not rows:
                return
            for r in rows:
                yield str(r.provider_bin), StoredParty(
                    message_id=r.message_id, role=r.role, name=r.name,
                    residence=r.residence, idn=r.idn, birth_date=r.birth_date,
                    submitted_by=r.submitted_by)
            after = int(rows[-1].id)


def add_provider_officer(conn: Connection, user_id: str, provider_bin: str) -> None:
    """In ``conn``'s transaction: ``user_id`` is a compliance officer of ``provider_bin``.
    EnrollUser runs it in the transaction that inserts the user (``Store.add_user(also=)``),
    so an officer is never enrolled without their provider."""
    conn.execute(provider_officers.insert().values(
        user_id=user_id, provider_bin=provider_bin, enrolled_at=now_utc()))


def mark_list_match(conn: Connection, provider_bin: str, message_id: str) -> bool:
    """In ``conn``'s transaction (re-screening writes the match's outbox row in it): flag
    a stored message whose party matched; False when there is no such message."""
    t = fm1_messages.c
    done = conn.execute(fm1_messages.update().where(
        t.provider_bin == provider_bin, t.message_id == message_id).values(list_match=True))
    return bool(done.rowcount)


def iter_parties(engine: Engine) -> Iterator[tuple[str, StoredParty]]:
    """``(provider_bin, party)`` for every party of every stored FM-1 message (the
    re-screening feed of ``server.screening``)."""
    return ReportingStore(engine).iter_parties()


def duplicate(original: StoredMessage | None, envelope_sha256: str) -> Fm1Duplicate:
    """The refusal of a message id sent again, with the original receipt when known."""
    if original is None:  # pragma: no cover - a unique violation names an existing row
        return Fm1Duplicate("this message id was accepted before")
    exc = Fm1Duplicate(
        f"message {original.message_id} of provider {original.provider_bin} was accepted "
        "before; the original receipt is in the details",
    )
    exc.receipt = original.receipt
    exc.message_id = original.message_id
    exc.same_content = original.envelope_sha256 == envelope_sha256
    return exc
