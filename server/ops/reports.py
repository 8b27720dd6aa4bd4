"""Reports (R15, §21): every query of agency users, filtered, paged, exported; reviews.

Queries are read from the audit index (``audit.index.AuditIndex``, one row per audit
record, rebuilt from the WORM log) through the :class:`QueryIndex` interface; the
implementation over H3's table is :class:`AuditIndexQueries`. A "query record" is an
index row with ``event == "query"`` (answered) or a ``refusal`` naming a resource (a
refused query attempt). Paging is keyset on ``seq`` (``after_seq``), so pages stay
stable while the log grows. Every listing and export is itself recorded
(``report.read``), as is every review (``ops.review.recorded``). A controller is
overdue when they have recorded no review since the start of the previous calendar
month (Astana time): "at least monthly".
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from server.ops import schema as s
from server.ops.base import OpsContext, utc_required
from server.ops.errors import InvalidDocument, OpsStorageError
from server.ops.roles import Action, Actor, Role, authorize
from server.resources import catalogue
from server.store import schema as cp
from siogw_api.timeutil import astana_iso, astana_zone, ensure_utc

#: Largest page one call returns.
MAX_PAGE = 1000
#: Characters after which a streamed CSV chunk is sent (at most 4 bytes each in UTF-8).
CHUNK_CHARS = 32 * 1024


@dataclass(frozen=True)
class QueryFilter:
    """All given criteria must match; ``since`` <= time < ``until``."""

    user_ids: tuple[str, ...] | None = None
    since: _dt.datetime | None = None
    until: _dt.datetime | None = None
    resource: str | None = None
    basis: str | None = None
    task: str | None = None
    outcome: str | None = None
    unit: str | None = None
    subject: str | None = None
    reason: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user_ids is not None:
            out["users"] = list(self.user_ids)
        if self.since is not None:
            out["since"] = astana_iso(self.since)
        if self.until is not None:
            out["until"] = astana_iso(self.until)
        for name in _MATCHED:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


#: Filter fields matched exactly against the index column of the same name.
_MATCHED = ("resource", "basis", "task", "outcome", "unit", "subject", "reason")


@dataclass(frozen=True)
class QueryRecord:
    seq: int
    time: _dt.datetime
    user_id: str
    event: str
    resource: str | None
    basis: str | None
    task: str | None
    outcome: str
    request_id: str | None
    # Issue 15: what control (§21) and supervision (§22) need; None for records written
    # before the query path recorded them.
    unit: str | None = None
    subject: str | None = None
    justification: str | None = None
    parameters: Mapping[str, str] | None = None
    status_code: str | None = None
    reason: str | None = None
    message: str | None = None
    result_summary: str | None = None
    truncated: bool | None = None
    leaf_hash: str | None = None

    @property
    def resource_number(self) -> int | None:
        try:
            return int(self.resource) if self.resource else None
        except ValueError:
            return None

    @property
    def resource_name(self) -> str:
        """The resource's name in the catalogue ("" when unknown)."""
        number = self.resource_number
        entry = catalogue.CATALOGUE.get(number) if number is not None else None
        return entry.name if entry is not None else ""


def _params(text: str | None) -> Mapping[str, str] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


@dataclass(frozen=True)
class ReportPage:
    rows: tuple[QueryRecord, ...]
    #: Pass as ``after_seq`` for the next page; ``None`` when this was the last page.
    next_after_seq: int | None = None


class QueryIndex(Protocol):
    """Read interface over the audit index's query records."""

    def query_page(self, flt: QueryFilter, *, after_seq: int | None,
                   limit: int, upto_seq: int | None = None) -> Sequence[QueryRecord]:
        """Up to ``limit`` matching records with ``after_seq < seq <= upto_seq``, by
        ascending seq."""
        ...

    def top_seq(self) -> int | None:
        """The highest seq the index holds (None when empty)."""
        ...


class AuditIndexQueries:
    """:class:`QueryIndex` over ``audit.index.AuditIndex`` (its table and engine)."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def top_seq(self) -> int | None:
        t = self.index.table
        try:
            with self.index.engine.connect() as conn:
                top = conn.execute(sa.select(sa.func.max(t.c.seq))).scalar()
        except SQLAlchemyError as exc:
            raise OpsStorageError("audit index database error", detail=str(exc)[:500]) from exc
        return None if top is None else int(top)

    def query_page(self, flt: QueryFilter, *, after_seq: int | None,
                   limit: int, upto_seq: int | None = None) -> Sequence[QueryRecord]:
        t = self.index.table
        stmt = sa.select(t).where(
            sa.or_(t.c.event == "query",
                   sa.and_(t.c.event == "refusal", t.c.resource.is_not(None)))
        ).order_by(t.c.seq).limit(limit)
        if after_seq is not None:
            stmt = stmt.where(t.c.seq > after_seq)
        if flt.user_ids is not None:
            stmt = stmt.where(t.c.actor.in_(list(flt.user_ids)))
        if flt.since is not None:
            stmt = stmt.where(t.c.time >= ensure_utc(flt.since))
        if flt.until is not None:
            stmt = stmt.where(t.c.time < ensure_utc(flt.until))
        if upto_seq is not None:
            stmt = stmt.where(t.c.seq <= upto_seq)
        for name in _MATCHED:
            value = getattr(flt, name)
            if value is not None:
                stmt = stmt.where(t.c[name] == str(value))

        try:
            with self.index.engine.connect() as conn:
                return [
                    QueryRecord(seq=int(r.seq), time=ensure_utc(r.time), user_id=r.actor,
                                event=r.event, resource=r.resource, basis=r.basis, task=r.task,
                                outcome=r.outcome, request_id=r.request_id, unit=r.unit,
                                subject=r.subject, justification=r.justification,
                                parameters=_params(r.parameters), status_code=r.code,
                                reason=r.reason, message=r.message,
                                result_summary=r.result_summary, truncated=r.truncated,
                                leaf_hash=r.leaf_hash)
                    for r in conn.execute(stmt)
                ]
        except SQLAlchemyError as exc:
            raise OpsStorageError("audit index database error", detail=str(exc)[:500]) from exc


def fetch_page(index: QueryIndex, flt: QueryFilter, after_seq: int | None,
               limit: int, *, upto_seq: int | None = None) -> ReportPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidDocument(f"page size must be 1..{MAX_PAGE}")
    if upto_seq is None:
        rows = tuple(index.query_page(flt, after_seq=after_seq, limit=limit + 1))
    else:
        rows = tuple(index.query_page(flt, after_seq=after_seq, limit=limit + 1,
                                      upto_seq=upto_seq))
    if len(rows) > limit:
        return ReportPage(rows[:limit], rows[limit - 1].seq)
    return ReportPage(rows, None)


#: The export's columns: the first nine as before issue 15, the rest added after them
#: (a spreadsheet or script reading the old columns by position keeps working).
CSV_COLUMNS = ("seq", "time", "user", "event", "resource", "basis", "task", "outcome",
               "request_id", "unit", "subject", "justification", "parameters",
               "resource_name", "status_code", "reason", "message", "result_summary",
               "truncated", "leaf_hash")

#: A cell starting with one of these is a formula (or becomes one) in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` safe for a spreadsheet: a cell that starts like a formula (``=``, ``+``,
    ``-``, ``@``, tab, CR) gets a leading ``'``, which spreadsheets show as text (the
    OWASP "CSV injection" rule). Every other value is unchanged."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_writer(out: TextIO) -> Any:
    """The export's CSV writer: RFC 4180 (CRLF between records), so that a cell holding a
    CR or LF is quoted and a reader keeps it in its cell."""
    return csv.writer(out, lineterminator="\r\n")


def _csv_row(r: QueryRecord) -> list[str]:
    params = ";".join(f"{k}={v}" for k, v in sorted((r.parameters or {}).items()))
    truncated = "" if r.truncated is None else ("yes" if r.truncated else "no")
    cells = [str(r.seq), astana_iso(r.time), r.user_id, r.event, r.resource or "",
             r.basis or "", r.task or "", r.outcome, r.request_id or "", r.unit or "",
             r.subject or "", r.justification or "", params, r.resource_name,
             r.status_code or "", r.reason or "", r.message or "", r.result_summary or "",
             truncated, r.leaf_hash or ""]
    return [csv_cell(cell) for cell in cells]


@dataclass(frozen=True)
class Review:
    id: int
    controller_id: str
    period_start: _dt.datetime
    period_end: _dt.datetime
    reviewed_at: _dt.datetime
    note: str


@dataclass(frozen=True)
class ReviewStatus:
    controller_id: str
    last_review_at: _dt.datetime | None
    overdue: bool
    due_since: _dt.datetime = field(compare=False)


def previous_month_start(now: _dt.datetime) -> _dt.datetime:
    """The first instant of the calendar month before ``now``'s, in Astana time, as UTC."""
    local = ensure_utc(now).astimezone(astana_zone())
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return ensure_utc(_dt.datetime(year, month, 1, tzinfo=astana_zone()))


def _review(row: sa.Row[tuple[object, ...]]) -> Review:
    m = row._mapping
    return Review(int(m["id"]), m["controller_id"], utc_required(m["period_start"]),
                  utc_required(m["period_end"]), utc_required(m["reviewed_at"]), m["note"])


class ReportService:
    """See the module docstring."""

    def __init__(self, ctx: OpsContext, index: QueryIndex) -> None:
        self.ctx = ctx
        self.index = index

    def queries(self, actor: Actor, flt: QueryFilter | None = None, *,
                after_seq: int | None = None, limit: int = 100) -> ReportPage:
        """One page of query records (controllers only, R12); the read is recorded."""
        authorize(actor.role, Action.REPORT_READ)
        flt = flt or QueryFilter()
        page = fetch_page(self.index, flt, after_seq, limit)
        self.ctx.record("report.read", actor.user_id, "success",
                        {"filter": flt.describe(), "after_seq": after_seq,
                         "rows": len(page.rows)})
        return page

    def iter_queries(self, flt: QueryFilter, *, page_size: int = 500,
                     upto_seq: int | None = None) -> Iterable[QueryRecord]:
        after: int | None = None
        while True:
            page = fetch_page(self.index, flt, after, page_size, upto_seq=upto_seq)
            yield from page.rows
            if page.next_after_seq is None:
                return
            after = page.next_after_seq

    def export_csv(self, actor: Actor, out: TextIO, flt: QueryFilter | None = None) -> int:
        """Write every matching record as CSV (times in Astana); returns the row count."""
        authorize(actor.role, Action.REPORT_READ)
        flt = flt or QueryFilter()
        writer = csv_writer(out)
        writer.writerow(CSV_COLUMNS)
        n = 0
        for record in self.iter_queries(flt):
            writer.writerow(_csv_row(record))
            n += 1
        self.ctx.record("report.read", actor.user_id, "success",
                        {"filter": flt.describe(), "export": "csv", "rows": n})
        return n

    def export_csv_page(self, actor: Actor, out: TextIO, flt: QueryFilter | None = None, *,
                        after_seq: int | None = None, limit: int = 100) -> ReportPage:
        """One page of :meth:`export_csv` (with its header row): keyset paging as
        :meth:`queries`. The read is recorded; returns the page (rows and next seq)."""
        authorize(actor.role, Action.REPORT_READ)
        flt = flt or QueryFilter()
        page = fetch_page(self.index, flt, after_seq, limit)
        writer = csv_writer(out)
        writer.writerow(CSV_COLUMNS)
        for record in page.rows:
            writer.writerow(_csv_row(record))
        self.ctx.record("report.read", actor.user_id, "success",
                        {"filter": flt.describe(), "export": "csv", "after_seq": after_seq,
                         "rows": len(page.rows)})
        return page

    def export_csv_stream(self, actor: Actor, flt: QueryFilter | None = None, *,
                          chunk_rows: int = 200) -> Iterator[tuple[str, int]]:
        """The export as ``(csv text, rows in it)`` chunks, the header in the first.

        Record first: the read is recorded (``report.read``, ``export: "csv-stream"``)
        with the filter and ``upto_seq``, the index's top seq at the start, before any
        row is produced, and only records up to that seq are exported -- the record
        names exactly the rows disclosed, however long the stream takes. The role is
        checked when this is called, not when the first chunk is asked for.
        """
        authorize(actor.role, Action.REPORT_READ)
        if not 1 <= chunk_rows <= MAX_PAGE:
            raise InvalidDocument(f"chunk size must be 1..{MAX_PAGE}")
        flt = flt or QueryFilter()
        upto = self.index.top_seq()
        self.ctx.record("report.read", actor.user_id, "success",
                        {"filter": flt.describe(), "export": "csv-stream", "upto_seq": upto})
        return self._csv_chunks(flt, upto, chunk_rows)

    def _csv_chunks(self, flt: QueryFilter, upto: int | None,
                    chunk_rows: int) -> Iterator[tuple[str, int]]:
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(CSV_COLUMNS)
        rows = 0
        if upto is not None:
            for record in self.iter_queries(flt, page_size=chunk_rows, upto_seq=upto):
                writer.writerow(_csv_row(record))
                rows += 1
                # A chunk also stays under CHUNK_CHARS (a row is at most a few KiB), so
                # that it fits any message limit the gateway can be configured with.
                if rows == chunk_rows or out.tell() >= CHUNK_CHARS:
                    yield out.getvalue(), rows
                    out.seek(0)
                    out.truncate()
                    rows = 0
        if rows or out.tell():
            yield out.getvalue(), rows

    # --- reviews ---------------------------------------------------------------------
    def record_review(self, actor: Actor, period_start: _dt.datetime, period_end: _dt.datetime,
                      note: str = "") -> Review:
        """Record that ``actor`` reviewed the queries of [period_start, period_end)."""
        authorize(actor.role, Action.REVIEW_RECORD)
        start, end = utc_required(period_start), utc_required(period_end)
        if end <= start:
            raise InvalidDocument("a review period must end after it starts")
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            result = conn.execute(s.reviews.insert().values(
                controller_id=actor.user_id, period_start=start, period_end=end,
                reviewed_at=now, note=note.strip()[:1000]))
            review_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            self.ctx.record("ops.review.recorded", actor.user_id, "success",
                            {"review_id": review_id, "period_start": astana_iso(start),
                             "period_end": astana_iso(end)})
            row = conn.execute(sa.select(s.reviews).where(s.reviews.c.id == review_id)).one()
        return _review(row)

    def reviews(self, actor: Actor, *, controller_id: str | None = None) -> Sequence[Review]:
        authorize(actor.role, Action.REVIEW_STATUS)
        stmt = sa.select(s.reviews).order_by(s.reviews.c.reviewed_at)
        if controller_id is not None:
            stmt = stmt.where(s.reviews.c.controller_id == controller_id)
        with self.ctx.tx() as conn:
            return [_review(r) for r in conn.execute(stmt).all()]

    def review_status(self, actor: Actor,
                      now: _dt.datetime | None = None) -> Sequence[ReviewStatus]:
        """Every active controller with their last review and whether they are overdue."""
        authorize(actor.role, Action.REVIEW_STATUS)
        when = utc_required(now) if now is not None else self.ctx.now()
        due_since = previous_month_start(when)
        last = sa.func.max(s.reviews.c.reviewed_at)
        with self.ctx.tx() as conn:
            controllers = [r.user_id for r in conn.execute(
                sa.select(cp.users.c.user_id).where(
                    cp.users.c.role == Role.CONTROLLER.value, cp.users.c.status == "active",
                ).order_by(cp.users.c.user_id)).all()]
            latest = {r.controller_id: r.last for r in conn.execute(
                sa.select(s.reviews.c.controller_id, last.label("last"))
                .where(s.reviews.c.reviewed_at <= when)
                .group_by(s.reviews.c.controller_id)).all()}
        out = []
        for cid in controllers:
            at = latest.get(cid)
            at_utc = utc_required(at) if at is not None else None
            out.append(ReviewStatus(cid, at_utc, at_utc is None or at_utc < due_since,
                                    due_since))
        return out

    def overdue_reviews(self, actor: Actor,
                        now: _dt.datetime | None = None) -> Sequence[ReviewStatus]:
        """Controllers with no review since the start of the previous calendar month."""
        return [r for r in self.review_status(actor, now) if r.overdue]
