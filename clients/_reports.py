"""Reports (§21) and the prosecutor's supervision (§22): the typed results of the
AuditService's Reports methods, without I/O.

The plans that call them live in :mod:`clients._core` (``list_queries``,
``export_queries_csv``, ``register_resolution``, ``read_audit_trail``); this module holds
what they build and return: :class:`ReportFilter` (the criteria, to the wire),
:class:`QueryRow` and :class:`QueryRowPage` (a page of Reports rows, with their inclusion
proofs verified when asked for), :class:`Resolution` and :class:`CsvExportInfo`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from clients import _common as c
from clients.errors import ResultVerificationError
from signing.api import Signer
from signing.documents import PAYLOAD_RESOLUTION, resolution_document, sign_document
from siogw_api.v1 import audit_pb2


@dataclass(frozen=True)
class ReportFilter:
    """Criteria of a Reports listing or export; every given one must match.

    ``since`` (inclusive) and ``until`` (exclusive) are ISO 8601 with an offset;
    ``outcome`` is ``success`` or ``refused``; ``reason`` a refusal's reason
    (``PERMISSION_DENIED``, ``INVALID_IDENTIFIER``, ...); ``subject`` the IIN/BIN or
    other identifier asked about; ``unit`` the user's unit when they asked.
    """

    user_ids: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    resource: str = ""
    basis: str = ""
    task: str = ""
    outcome: str = ""
    unit: str = ""
    subject: str = ""
    reason: str = ""

    def to_proto(self) -> audit_pb2.QueryFilter:
        return audit_pb2.QueryFilter(
            user_ids=list(self.user_ids), since=self.since, until=self.until,
            resource=self.resource, basis=self.basis, task=self.task, outcome=self.outcome,
            unit=self.unit, subject=self.subject, reason=self.reason)


@dataclass(frozen=True)
class QueryRow:
    """One query (answered or refused) as Reports shows it. Fields an old record lacks
    are empty. ``proved`` is True when its inclusion proof was verified against a
    checkpoint signed by the gateway's audit key, None when no proof was asked for."""

    seq: int
    time: str
    user_id: str
    event: str
    resource: str
    resource_number: int
    resource_name: str
    basis: str
    task: str
    outcome: str
    request_id: str
    unit: str
    subject: str
    justification: str
    parameters: Mapping[str, str]
    status_code: str
    reason: str
    message: str
    result_summary: str
    truncated: bool
    leaf_hash: str
    proved: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "user": self.user_id, "event": self.event,
            "resource": self.resource_number or None, "resource_name": self.resource_name,
            "basis": self.basis, "task": self.task, "outcome": self.outcome,
            "request_id": self.request_id, "unit": self.unit, "subject": self.subject,
            "justification": self.justification, "parameters": dict(self.parameters),
            "status_code": self.status_code, "reason": self.reason, "message": self.message,
            "result_summary": self.result_summary, "truncated": self.truncated,
            "leaf_hash": self.leaf_hash, "proved": self.proved,
        }


@dataclass(frozen=True)
class QueryRowPage:
    """A page of rows; pass ``next_after_seq`` as ``after_seq`` while ``has_more``.
    ``tree_size`` is the checkpoint the rows were proved against (0: not proved)."""

    rows: tuple[QueryRow, ...]
    has_more: bool
    next_after_seq: int
    tree_size: int = 0


@dataclass(frozen=True)
class Resolution:
    """A registered resolution: its id (for :meth:`read_audit_trail`) and scope."""

    id: str
    number: str
    date: str
    user_ids: tuple[str, ...]
    period_start: str
    period_end: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "date": self.date,
                "user_ids": list(self.user_ids), "period_start": self.period_start,
                "period_end": self.period_end}


@dataclass
class CsvExportInfo:
    """What :meth:`export_queries_csv` wrote: rows and bytes. ``complete`` turns True
    only when the gateway's last chunk arrived (it carries the total row count)."""

    rows: int = 0
    bytes: int = 0
    complete: bool = False
    _chunks: int = field(default=0, repr=False)


def row_from_proto(msg: audit_pb2.QueryRecord, proved: bool | None = None) -> QueryRow:
    return QueryRow(
        seq=msg.seq, time=msg.time, user_id=msg.user_id, event=msg.event,
        resource=msg.resource, resource_number=msg.resource_number,
        resource_name=msg.resource_name, basis=msg.basis, task=msg.task,
        outcome=msg.outcome, request_id=msg.request_id, unit=msg.unit, subject=msg.subject,
        justification=msg.justification, parameters=dict(msg.parameters),
        status_code=msg.status_code, reason=msg.reason, message=msg.message,
        result_summary=msg.result_summary, truncated=msg.truncated, leaf_hash=msg.leaf_hash,
        proved=proved)


def page_from_proto(msg: audit_pb2.QueryPage) -> QueryRowPage:
    return QueryRowPage(rows=tuple(row_from_proto(r) for r in msg.records),
                        has_more=msg.has_more, next_after_seq=msg.next_after_seq)


def proved_page(
    msg: audit_pb2.QueryPage, checkpoint: c.CheckpointInfo, keys: Iterable[Any]
) -> QueryRowPage:
    """The page with every row's inclusion proof checked against ``checkpoint`` (itself
    checked under the audit key the pinned gateway keys endorse). A row the checkpoint
    does not cover has ``proved=False``; a proof that fails raises
    :class:`~clients.errors.ResultVerificationError` (or an ``AuditError``)."""
    if msg.tree_size and msg.tree_size != checkpoint.tree_size:
        raise ResultVerificationError(
            f"the rows are proved into a tree of {msg.tree_size}, the checkpoint has "
            f"{checkpoint.tree_size}")
    keys = list(keys)
    rows = []
    for rec in msg.records:
        if not rec.HasField("proof"):
            rows.append(row_from_proto(rec, proved=False))
            continue
        try:
            leaf = bytes.fromhex(rec.leaf_hash)
        except ValueError:
            raise ResultVerificationError(f"record {rec.seq} has a malformed leaf hash") from None
        receipt = c.Receipt(seq=rec.seq, leaf_hash=leaf, tree_size=rec.seq + 1)
        c.verify_receipt(receipt, c.proof_from_proto(rec.proof), checkpoint, keys)
        rows.append(row_from_proto(rec, proved=True))
    return QueryRowPage(rows=tuple(rows), has_more=msg.has_more,
                        next_after_seq=msg.next_after_seq, tree_size=checkpoint.tree_size)


def resolution_from_proto(msg: audit_pb2.ResolutionInfo) -> Resolution:
    return Resolution(id=msg.id, number=msg.number, date=msg.date,
                      user_ids=tuple(msg.user_ids), period_start=msg.period_start,
                      period_end=msg.period_end)


def sign_resolution(
    number: str, date: str, user_ids: Iterable[str], period_start: str, period_end: str,
    signer: Signer,
) -> bytes:
    """The resolution document (:func:`signing.documents.resolution_document`), signed
    on the prosecutor's token (DSSE JSON)."""
    doc = resolution_document(number, date, user_ids, period_start, period_end)
    return sign_document(PAYLOAD_RESOLUTION, doc, signer)


class CsvSink:
    """Takes the chunks of a streamed export and writes them to ``out`` (a binary file
    object, or a text one: the CSV is UTF-8)."""

    def __init__(self, out: IO[Any]) -> None:
        self.out = out
        self.text = isinstance(out, io.TextIOBase)
        self.info = CsvExportInfo()

    def __call__(self, chunk: audit_pb2.CsvChunk) -> None:
        if self.info.complete:
            raise ResultVerificationError("the export went on after its last chunk")
        if chunk.data:
            data = bytes(chunk.data)
            self.out.write(data.decode("utf-8") if self.text else data)
            self.info.bytes += len(data)
        self.info.rows += chunk.rows
        self.info._chunks += 1
        if chunk.last:
            if chunk.total_rows != self.info.rows:
                raise ResultVerificationError(
                    f"the export says {chunk.total_rows} rows, {self.info.rows} arrived")
            self.info.complete = True

    def result(self) -> CsvExportInfo:
        if not self.info.complete:
            raise ResultVerificationError(
                "the export ended before its last chunk: the file is incomplete")
        return self.info
