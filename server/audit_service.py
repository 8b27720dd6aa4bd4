"""AuditService: signed checkpoints and Merkle proofs of the audit log (R11, R12), the
controllers' Reports (R15) and the prosecutor's reads under a resolution (R16).

Backed by ``audit.AuditLog``. ``GetCheckpoint`` answers a freshly signed checkpoint (the
audit key's) with the gateway result key's endorsement of that audit key, so that a
client pinning the gateway certificate can verify a receipt with ``GetInclusionProof``
at once (issue 12). Only authenticated callers (a live session, re-checked like
every other call) may ask; the proofs reveal hashes only, never records. Without an
``AuditLog`` (the JSONL development sink) the calls are ``UNIMPLEMENTED``.

R12: only a departmental controller lists or exports other users' queries
(``ListQueries``, ``ExportQueriesCsv``) and only a prosecutor registers resolutions and
reads the trail within one (``RegisterResolution``, ``ReadAuditTrail``); every other role
gets ``PERMISSION_DENIED`` (recorded as a refusal; a trail read out of scope is also
recorded as ``prosecutor.read``/``refused``). A resolution is written ahead
(:mod:`server.writeahead`: ``event="resolution"``, ``outcome="requested"``, the signed
document) before it is registered. Each read is itself audited
(``report.read``, ``prosecutor.read``). Reads first bring the audit index up to date
(:meth:`server.ops_wiring.OpsWiring.catch_up`).

Issue 15: a Reports row (``QueryRecord``) carries what control and supervision need --
justification, subject, parameters, unit, the resource's name, the status code, the
refusal's reason and message, the result summary and the leaf hash -- and, with
``prove``, its inclusion proof into a tree the caller names (the size of the checkpoint
it holds). ``StreamQueriesCsv`` streams the export in chunks (no size limit; the read is
recorded before the first row, :meth:`server.ops.reports.ReportService.export_csv_stream`);
``ExportQueriesCsv`` stays for callers of one message. Every cell of both is neutralised
against formula injection (:func:`server.ops.reports.csv_cell`).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
from collections.abc import AsyncIterator
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc import aio

from server.context import Gateway
from server.errors import ExportTooLarge, NotFound, NotImplementedYet
from server.interceptors import current_call
from server.ops import (
    Action,
    Actor,
    Operations,
    PermissionDenied,
    QueryFilter,
    QueryRecord,
    ReportPage,
    authorize,
)
from server.writeahead import write_ahead
from signing.note import audit_key_statement
from siogw_api.errors import AuditError, InputError
from siogw_api.timeutil import astana_iso, parse_iso
from siogw_api.v1 import audit_pb2, audit_pb2_grpc

#: Page size when a request gives none.
DEFAULT_LIMIT = 100
#: Rows per chunk of StreamQueriesCsv when the request gives none, and the most allowed
#: (a row is at most a few KiB: a chunk stays well under the transport's message limit).
STREAM_CHUNK_ROWS = 100
MAX_STREAM_CHUNK_ROWS = 200


#: Room left in a message for the CsvExport envelope around the CSV bytes.
_EXPORT_OVERHEAD = 1024


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def csv_export(text: str, rows: int, transport_limit: int) -> audit_pb2.CsvExport:
    """The ``CsvExport`` answer, or :class:`ExportTooLarge` when it cannot be sent.

    gRPC would fail a message over the transport limit while sending it: the caller
    would get a bare RESOURCE_EXHAUSTED and the log no refusal. Refused here instead,
    with the size and the way out.
    """
    data = text.encode("utf-8")
    limit = transport_limit - _EXPORT_OVERHEAD
    if len(data) > limit:
        raise ExportTooLarge(
            f"the export of {rows} rows is {_size(len(data))}, over the "
            f"{_size(limit)} a message can carry: narrow the filter (dates, "
            "users, resources) or export it in pages (set limit, then after_seq)",
            detail=f"{len(data)} bytes > {limit}",
        )
    return audit_pb2.CsvExport(csv=data, rows=rows)


def _opt_time(text: str) -> _dt.datetime | None:
    return parse_iso(text) if text else None


def query_filter(flt: audit_pb2.QueryFilter) -> QueryFilter:
    """The ops filter of a wire filter (empty fields match everything)."""
    return QueryFilter(
        user_ids=tuple(flt.user_ids) or None, since=_opt_time(flt.since),
        until=_opt_time(flt.until), resource=flt.resource or None, basis=flt.basis or None,
        task=flt.task or None, outcome=flt.outcome or None, unit=flt.unit or None,
        subject=flt.subject or None, reason=flt.reason or None,
    )


def record_proto(r: QueryRecord) -> audit_pb2.QueryRecord:
    """One Reports row on the wire (empty fields for what an old record lacks)."""
    return audit_pb2.QueryRecord(
        seq=r.seq, time=astana_iso(r.time), user_id=r.user_id, event=r.event,
        resource=r.resource or "", basis=r.basis or "", task=r.task or "",
        outcome=r.outcome, request_id=r.request_id or "", unit=r.unit or "",
        subject=r.subject or "", justification=r.justification or "",
        parameters=dict(r.parameters or {}), resource_number=r.resource_number or 0,
        resource_name=r.resource_name, status_code=r.status_code or "",
        reason=r.reason or "", message=r.message or "",
        result_summary=r.result_summary or "", truncated=bool(r.truncated),
        leaf_hash=r.leaf_hash or "")


def page_proto(page: ReportPage) -> audit_pb2.QueryPage:
    out = audit_pb2.QueryPage(has_more=page.next_after_seq is not None,
                              next_after_seq=page.next_after_seq or 0)
    out.records.extend(record_proto(r) for r in page.rows)
    return out


def add_proofs(page: audit_pb2.QueryPage, log: Any, tree_size: int) -> None:
    """Each record of ``page`` inside the tree of ``tree_size`` (0 = the log's size)
    gets its inclusion proof into that tree (blocking: the log's hashes are read)."""
    top = log.tree_size
    size = tree_size or top
    if size > top:
        raise InputError(f"tree_size {size} is beyond the log's size ({top})")
    page.tree_size = size
    for rec in page.records:
        if rec.seq >= size:
            continue
        try:
            proof = log.inclusion_proof(rec.seq, size)
            leaf = log.leaf_hash(rec.seq)  # the log's, not the index's: a client compares
        except AuditError as exc:
            raise InputError(exc.public_message()) from exc
        rec.proof.CopyFrom(audit_pb2.InclusionProof(
            leaf_index=proof.first, tree_size=proof.tree_size, leaf_hash=leaf,
            hashes=list(proof.hashes)))


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._endorsement: tuple[str, audit_pb2.AuditKeyEndorsement] | None = None

    def _endorse(self, log: Any) -> audit_pb2.AuditKeyEndorsement:
        """The gateway result key's endorsement of the current audit key (signed once
        per audit key): a client pinning only the gateway certificate checks it before
        it trusts a checkpoint (:func:`clients._common.verify_receipt`)."""
        audit_key = log.trusted_keys()[-1]
        signer = self.gw.signer
        if signer is None:
            raise NotImplementedYet("this gateway has no result key to endorse its audit key")
        cached = self._endorsement
        if cached is not None and cached[0] == audit_key.key_id:
            return cached[1]
        der = audit_key.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        endorsement = audit_pb2.AuditKeyEndorsement(
            origin=log.origin, public_key_der=der, signer_key_id=signer.key_id,
            signature=signer.sign(audit_key_statement(log.origin, audit_key.public_key)),
        )
        self._endorsement = (audit_key.key_id, endorsement)
        return endorsement

    async def _actor(
        self, context: aio.ServicerContext, action: Action
    ) -> tuple[Actor, Operations, Any]:
        """The session's actor, allowed ``action`` (R12), the operations services, and
        the session."""
        session = await self.gw.authenticate(context)
        actor = Actor(session.user_id, session.user.role)
        if action is not Action.AUDIT_TRAIL_READ:  # the trail records its own denials
            authorize(actor.role, action)
        return actor, self.gw.require_ops().ops, session

    async def _catch_up(self) -> None:
        await asyncio.to_thread(self.gw.require_ops().catch_up)

    async def _log(self, context: aio.ServicerContext) -> Any:
        await self.gw.authenticate(context)
        if self.gw.audit_log is None:
            raise NotImplementedYet("this gateway's audit sink has no Merkle log")
        return self.gw.audit_log

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: aio.ServicerContext
    ) -> audit_pb2.Checkpoint:
        log = await self._log(context)
        signed = await asyncio.to_thread(log.checkpoint)
        key_id = ""
        for line in signed.checkpoint.extensions:
            if line.startswith("key "):
                key_id = line[4:]
        endorsement = await asyncio.to_thread(self._endorse, log)
        return audit_pb2.Checkpoint(
            signed_checkpoint=signed.note,
            tree_size=signed.checkpoint.size,
            root_hash=signed.checkpoint.root_hash,
            key_id=key_id,
            audit_key=endorsement,
        )

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: aio.ServicerContext
    ) -> audit_pb2.InclusionProof:
        log = await self._log(context)
        size = request.tree_size or log.tree_size
        if request.seq >= size:
            raise NotFound(f"no record {request.seq} in a tree of size {size}")
        try:
            proof = log.inclusion_proof(request.seq, size)
            leaf = log.leaf_hash(request.seq)
        except AuditError as exc:
            raise InputError(exc.public_message()) from exc
        return audit_pb2.InclusionProof(
            leaf_index=proof.first, tree_size=proof.tree_size, leaf_hash=leaf,
            hashes=list(proof.hashes),
        )

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: aio.ServicerContext
    ) -> audit_pb2.ConsistencyProof:
        log = await self._log(context)
        second = request.second or log.tree_size
        if request.first > second:
            raise InputError(f"first ({request.first}) is beyond second ({second})")
        try:
            proof = log.consistency_proof(request.first, second)
        except AuditError as exc:
            raise InputError(exc.public_message()) from exc
        return audit_pb2.ConsistencyProof(
            first=proof.first, second=proof.tree_size, hashes=list(proof.hashes)
        )

    # -- R15: Reports --------------------------------------------------------------------
    async def ListQueries(
        self, request: audit_pb2.ListQueriesRequest, context: aio.ServicerContext
    ) -> audit_pb2.QueryPage:
        actor, ops, _ = await self._actor(context, Action.REPORT_READ)
        flt = query_filter(request.filter)
        await self._catch_up()
        page = await asyncio.to_thread(
            ops.reports.queries, actor, flt,
            after_seq=request.after_seq if request.has_after_seq else None,
            limit=request.limit or DEFAULT_LIMIT)
        return await self._answer(page, request.prove, request.tree_size)

    async def _answer(self, page: ReportPage, prove: bool, tree_size: int) -> audit_pb2.QueryPage:
        out = page_proto(page)
        if prove:
            if self.gw.audit_log is None:
                raise NotImplementedYet("this gateway's audit sink has no Merkle log")
            await asyncio.to_thread(add_proofs, out, self.gw.audit_log, tree_size)
        return out

    async def StreamQueriesCsv(
        self, request: audit_pb2.ListQueriesRequest, context: aio.ServicerContext
    ) -> AsyncIterator[audit_pb2.CsvChunk]:
        """The export as a stream of CSV chunks (formula-safe cells, see
        :func:`server.ops.reports.csv_cell`); the last chunk says ``last`` and the row
        count. The read is recorded before the first row is read (record first)."""
        actor, ops, _ = await self._actor(context, Action.REPORT_READ)
        flt = query_filter(request.filter)
        if request.limit > MAX_STREAM_CHUNK_ROWS:
            raise InputError(f"limit (rows per chunk) must be at most {MAX_STREAM_CHUNK_ROWS}")
        await self._catch_up()
        chunks = await asyncio.to_thread(
            ops.reports.export_csv_stream, actor, flt,
            chunk_rows=request.limit or STREAM_CHUNK_ROWS)
        total = 0
        while True:
            item: tuple[str, int] | None = await asyncio.to_thread(next, chunks, None)
            if item is None:
                break
            text, rows = item
            total += rows
            yield audit_pb2.CsvChunk(data=text.encode("utf-8"), rows=rows)
        yield audit_pb2.CsvChunk(last=True, total_rows=total)

    async def ExportQueriesCsv(
        self, request: audit_pb2.ListQueriesRequest, context: aio.ServicerContext
    ) -> audit_pb2.CsvExport:
        actor, ops, _ = await self._actor(context, Action.REPORT_READ)
        flt = query_filter(request.filter)
        await self._catch_up()
        out = io.StringIO()
        limit = self.gw.config.limits.transport_max_message_bytes
        if request.limit or request.has_after_seq:  # one page (keyset paging)
            page = await asyncio.to_thread(
                ops.reports.export_csv_page, actor, out, flt,
                after_seq=request.after_seq if request.has_after_seq else None,
                limit=request.limit or DEFAULT_LIMIT)
            answer = csv_export(out.getvalue(), len(page.rows), limit)
            if page.next_after_seq is not None:
                answer.has_more = True
                answer.next_after_seq = page.next_after_seq
            return answer
        rows = await asyncio.to_thread(ops.reports.export_csv, actor, out, flt)
        return csv_export(out.getvalue(), rows, limit)

    # -- R16: the prosecutor ---------------------------------------------------------------
    async def RegisterResolution(
        self, request: audit_pb2.RegisterResolutionRequest, context: aio.ServicerContext
    ) -> audit_pb2.ResolutionInfo:
        actor, ops, session = await self._actor(context, Action.RESOLUTION_REGISTER)
        document = bytes(request.document)
        current_call().payload = document
        # The write-ahead rule (server.writeahead): the signed resolution is durable in
        # the log before it is registered.
        intent = await write_ahead(
            self.gw, event="resolution", actor=actor.user_id,
            cert_fingerprint=session.cert_fingerprint, details={}, payload=document,
        )
        res = await asyncio.to_thread(ops.prosecutor.register_resolution, actor, document,
                                      signer_certificates=[session.certificate])
        await intent.done({"resolution_id": res.id})
        return audit_pb2.ResolutionInfo(
            id=res.id, number=res.number, date=res.date, user_ids=list(res.user_ids),
            period_start=astana_iso(res.period_start), period_end=astana_iso(res.period_end))

    async def ReadAuditTrail(
        self, request: audit_pb2.ReadAuditTrailRequest, context: aio.ServicerContext
    ) -> audit_pb2.QueryPage:
        actor, ops, _ = await self._actor(context, Action.AUDIT_TRAIL_READ)
        current_call().details["resolution_id"] = request.resolution_id
        try:  # the role before the input: a wrong role learns nothing about its request
            authorize(actor.role, Action.AUDIT_TRAIL_READ)
        except PermissionDenied:
            # The trail records its own denials (prosecutor.read/refused): let it refuse.
            await asyncio.to_thread(ops.prosecutor.read_trail, actor, request.resolution_id)
            raise
        if not request.resolution_id:
            raise InputError("resolution_id is empty")
        narrow = query_filter(request.filter)
        if narrow.user_ids is not None or narrow.since is not None or narrow.until is not None:
            raise InputError("name the users and the period in the request's user_ids, "
                             "since and until, not in its filter")
        since, until = _opt_time(request.since), _opt_time(request.until)
        if str(actor.role) == "prosecutor":
            await self._catch_up()
        page = await asyncio.to_thread(
            ops.prosecutor.read_trail, actor, request.resolution_id,
            user_ids=list(request.user_ids) or None, since=since, until=until,
            after_seq=request.after_seq if request.has_after_seq else None,
            limit=request.limit or DEFAULT_LIMIT, narrow=narrow)
        return await self._answer(page, request.prove, request.tree_size)
