"""AuditService: signed checkpoints and Merkle proofs of the audit log (R11, R12), the
controllers' Reports (R15) and the prosecutor's reads under a resolution (R16).

Backed by ``audit.AuditLog``. Only authenticated callers (a live session, re-checked like
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
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
from typing import Any

from grpc import aio

from server.context import Gateway
from server.errors import ExportTooLarge, NotFound, NotImplementedYet
from server.interceptors import current_call
from server.ops import Action, Actor, Operations, QueryFilter, ReportPage, authorize
from server.writeahead import write_ahead
from siogw_api.errors import AuditError, InputError
from siogw_api.timeutil import astana_iso, parse_iso
from siogw_api.v1 import audit_pb2, audit_pb2_grpc

#: Page size when a request gives none.
DEFAULT_LIMIT = 100


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
        task=flt.task or None, outcome=flt.outcome or None,
    )


def page_proto(page: ReportPage) -> audit_pb2.QueryPage:
    out = audit_pb2.QueryPage(has_more=page.next_after_seq is not None,
                              next_after_seq=page.next_after_seq or 0)
    for r in page.rows:
        out.records.append(audit_pb2.QueryRecord(
            seq=r.seq, time=astana_iso(r.time), user_id=r.user_id, event=r.event,
            resource=r.resource or "", basis=r.basis or "", task=r.task or "",
            outcome=r.outcome, request_id=r.request_id or ""))
    return out


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

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
        return audit_pb2.Checkpoint(
            signed_checkpoint=signed.note,
            tree_size=signed.checkpoint.size,
            root_hash=signed.checkpoint.root_hash,
            key_id=key_id,
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
            raise InputError(exc.diagnostics()) from exc
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
            raise InputError(exc.diagnostics()) from exc
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
        return page_proto(page)

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
        if not request.resolution_id:
            raise InputError("resolution_id is empty")
        since, until = _opt_time(request.since), _opt_time(request.until)
        if str(actor.role) == "prosecutor":
            await self._catch_up()
        page = await asyncio.to_thread(
            ops.prosecutor.read_trail, actor, request.resolution_id,
            user_ids=list(request.user_ids) or None, since=since, until=until,
            after_seq=request.after_seq if request.has_after_seq else None,
            limit=request.limit or DEFAULT_LIMIT)
        return page_proto(page)
