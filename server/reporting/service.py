"""ReportingService: the FM-1 channel (R17, issue 16; ``docs/adr/0009-reporting.md``).

``Submit`` is checked in this order; the first failure decides the status, and nothing
of a refused message is stored (the interceptor's refusal record, which keeps the
signed envelope, is all that remains of it):

1. session (:meth:`server.context.Gateway.authenticate`)                 UNAUTHENTICATED
2. the audit log accepts records (fail closed)                           UNAVAILABLE
3. role ``compliance_officer`` with a provider (EnrollUser.provider_bin) PERMISSION_DENIED
4. envelope type ``application/vnd.siogw.fm1+json``, signed by the session's
   certificate                                                           UNAUTHENTICATED
5. the message validates (:func:`server.reporting.fm1.parse_fm1`)       INVALID_ARGUMENT
   (``INVALID_FM1_FIELD``, metadata ``field`` and ``check``)
6. the message's provider is the officer's                              PERMISSION_DENIED
7. the message id is new for the provider                               ALREADY_EXISTS
   (``FM1_DUPLICATE`` with the original receipt, as a replayed query's)
8. a correction / withdrawal names a message of the provider            INVALID_ARGUMENT

Then the write-ahead rule (:mod:`server.writeahead`): the request record
(``event="fm1"``, ``outcome="requested"``, the signed envelope) is durable before the
message is stored; the outcome record (``outcome="success"``, the deadline, the
lateness, the envelope's digest) follows, and its receipt is the message's. The answer
carries the status, the gateway-signed acknowledgement
(``application/vnd.siogw.fm1-receipt+json``, the result key's), a freshly signed
checkpoint and the receipt's inclusion proof into it: the officer verifies all of it
offline (``siogw client fm1 submit`` does, and writes a bundle for ``siogw audit
prove``).

Reads: an officer sees their own provider's messages; an agency analyst
(``agency_user``) sees every provider's. Every read is recorded (``event="fm1.read"``)
before its answer leaves.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
from typing import Any

from grpc import aio

from audit.record import AuditRecord
from server.audit_service import AuditServicer, csv_export
from server.context import Gateway, Session, envelope_bytes
from server.errors import MissingField, NotFound, NotPermitted
from server.interceptors import current_call
from server.ops.roles import Action, authorize
from server.reporting.calendar import WorkCalendar, deadline_for, lateness
from server.reporting.errors import InvalidFm1Field
from server.reporting.fm1 import KINDS, Fm1Message, parse_fm1
from server.reporting.store import (
    MessageFilter,
    ReportingStore,
    StoredMessage,
    duplicate,
)
from server.resources.catalogue import Role
from server.resources.identifiers import validate_bin
from server.writeahead import write_ahead
from signing import dsse
from signing.wire import envelope_to_proto
from siogw_api.errors import InputError, SiogwError
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import audit_pb2, common_pb2, reporting_pb2, reporting_pb2_grpc

log = logging.getLogger("siogw.server")

#: The acknowledgement's ``type``.
RECEIPT_TYPE = "siogw.fm1.receipt/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The largest ``after_id`` (row ids are 32-bit integers).
MAX_AFTER_ID = 2**31 - 1
#: Rows per page while a whole export is read.
_EXPORT_PAGE = 500
CSV_HEADER = ("id", "message_id", "provider_bin", "kind", "action", "amends",
              "submitted_by", "received_at", "deadline_at", "late", "lateness_seconds",
              "retention_until", "list_match", "receipt_seq")
#: A cell starting with one of these would run as a formula in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text (a leading formula character is quoted)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _iso(value: Any) -> str:
    return astana_iso(value) if value is not None else ""


def acknowledgement_payload(row: StoredMessage, origin: str) -> bytes:
    """The JSON the gateway signs for an accepted message (canonical: sorted keys)."""
    seq, leaf, size = row.receipt or (0, b"", 0)
    doc = {
        "type": RECEIPT_TYPE, "message_id": row.message_id, "provider_bin": row.provider_bin,
        "kind": row.kind, "action": row.action, "amends": row.amends or "",
        "submitted_by": row.submitted_by, "envelope_sha256": row.envelope_sha256,
        "received_at": _iso(row.received_at), "deadline_at": _iso(row.deadline_at),
        "late": row.late, "lateness_seconds": row.lateness_seconds,
        "retention_until": _iso(row.retention_until),
        "audit": {"origin": origin, "seq": seq, "leaf_hash": leaf.hex(), "tree_size": size,
                  "request_seq": row.request_seq},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway, audit: AuditServicer | None = None) -> None:
        self.gw = gateway
        self.audit = audit
        self.store = ReportingStore(gateway.store.engine)
        cfg = gateway.config.reporting
        self.calendar = WorkCalendar(cfg.holidays, cfg.workdays)

    @property
    def origin(self) -> str:
        return self.gw.audit_log.origin if self.gw.audit_log is not None else ""

    def status(self, row: StoredMessage, amended_by: list[str] | None = None
               ) -> reporting_pb2.Fm1Status:
        out = reporting_pb2.Fm1Status(
            message_id=row.message_id, provider_bin=row.provider_bin, kind=row.kind,
            action=row.action, amends=row.amends or "", submitted_by=row.submitted_by,
            received_at=_iso(row.received_at), deadline_at=_iso(row.deadline_at),
            late=row.late, lateness_seconds=row.lateness_seconds,
            retention_until=_iso(row.retention_until), request_seq=row.request_seq,
            envelope_sha256=row.envelope_sha256, amended_by=amended_by or [],
            list_match=row.list_match, origin=self.origin,
        )
        if row.receipt is not None:
            seq, leaf, size = row.receipt
            out.receipt.CopyFrom(common_pb2.AuditReceipt(seq=seq, leaf_hash=leaf,
                                                         tree_size=size))
        return out

    # -- submit --------------------------------------------------------------------------
    async def Submit(
        self, request: reporting_pb2.SubmitFm1Request, context: aio.ServicerContext
    ) -> reporting_pb2.Fm1Receipt:
        gw = self.gw
        info = current_call()
        session = await gw.authenticate(context)
        if request.HasField("envelope"):
            info.payload = envelope_bytes(request.envelope)
        gw.audit.check()
        authorize(session.user.role, Action.FM1_SUBMIT)
        provider = await asyncio.to_thread(self.store.provider_of, session.user_id)
        if provider is None:
            raise NotPermitted("this compliance officer was enrolled without a provider BIN")
        if not request.HasField("envelope"):
            raise MissingField("the FM-1 envelope is missing")
        payload = gw.verify_by_certificate(request.envelope, dsse.PAYLOAD_FM1,
                                           session.certificate)
        received_at = now_utc()
        msg = parse_fm1(payload, now=received_at)
        info.details.update({"message_id": msg.message_id, "provider_bin": msg.provider_bin,
                             "kind": msg.kind, "action": msg.action})
        if msg.provider_bin != provider:
            raise NotPermitted("the message names another provider than the one this "
                               "officer reports for")
        envelope = envelope_bytes(request.envelope)
        sha = hashlib.sha256(envelope).hexdigest()
        earlier = await asyncio.to_thread(self.store.find, provider, msg.message_id)
        if earlier is not None:
            raise duplicate(earlier, sha)
        if msg.amends is not None and await asyncio.to_thread(
                self.store.find, provider, msg.amends) is None:
            raise InvalidFm1Field("amends", "unknown",
                                  "names no message this provider has sent")
        deadline = deadline_for(self.calendar, msg.kind, action=msg.action,
                                decided_at=msg.decided_at, recognised_at=msg.recognised_at)
        late_by = lateness(deadline, received_at)
        details: dict[str, Any] = {"message_id": msg.message_id, "provider_bin": provider,
                                   "kind": msg.kind, "action": msg.action}
        if msg.amends:
            details["amends"] = msg.amends
        intent = await write_ahead(gw, event="fm1", actor=session.user_id,
                                   cert_fingerprint=session.cert_fingerprint,
                                   details=details, payload=info.payload)
        row = await asyncio.to_thread(
            self._insert, msg, session, received_at, deadline, late_by, envelope, sha,
            intent.seq)
        receipt = await intent.done({
            **details, "envelope_sha256": sha, "deadline_at": _iso(deadline),
            "late": late_by > 0, "lateness_seconds": late_by,
            "retention_until": _iso(row.retention_until),
        })
        await asyncio.to_thread(self.store.set_receipt, row.id, receipt.seq,
                                receipt.leaf_hash, receipt.tree_size)
        row = await asyncio.to_thread(self._reread, row)
        return await self._receipt(row, context)

    def _insert(self, msg: Fm1Message, session: Session, received_at: Any, deadline: Any,
                late_by: int, envelope: bytes, sha: str, request_seq: int) -> StoredMessage:
        return self.store.insert(
            msg, submitted_by=session.user_id, cert_fingerprint=session.cert_fingerprint,
            received_at=received_at, deadline_at=deadline, lateness_seconds=late_by,
            envelope=envelope, envelope_sha256=sha, request_seq=request_seq)

    def _reread(self, row: StoredMessage) -> StoredMessage:
        return self.store.find(row.provider_bin, row.message_id) or row

    async def _receipt(self, row: StoredMessage, context: aio.ServicerContext
                       ) -> reporting_pb2.Fm1Receipt:
        signer = self.gw.signer
        out = reporting_pb2.Fm1Receipt(status=self.status(row))
        if signer is not None:
            ack = await asyncio.to_thread(dsse.sign_envelope, dsse.PAYLOAD_FM1_RECEIPT,
                                          acknowledgement_payload(row, self.origin), signer)
            out.acknowledgement.CopyFrom(envelope_to_proto(ack))
        if self.audit is not None and self.gw.audit_log is not None and row.receipt:
            # The message is accepted and recorded: a checkpoint that cannot be signed now
            # leaves the receipt to be proved later (GetCheckpoint + GetInclusionProof).
            try:
                cp = await self.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(), context)
                proof = await self.audit.GetInclusionProof(audit_pb2.GetInclusionProofRequest(
                    seq=row.receipt[0], tree_size=cp.tree_size), context)
            except SiogwError as exc:
                log.warning("FM-1 %s accepted; its checkpoint could not be attached: %s",
                            row.message_id, exc.diagnostics())
            else:
                out.checkpoint.CopyFrom(cp)
                out.inclusion_proof.CopyFrom(proof)
        return out

    # -- reads ---------------------------------------------------------------------------
    async def _reader(self, context: aio.ServicerContext) -> tuple[Session, str | None]:
        """The session and the provider it is confined to (None: an analyst, all)."""
        session = await self.gw.authenticate(context)
        role = session.user.role
        if role == Role.AGENCY_USER:
            authorize(role, Action.FM1_READ)
            return session, None
        authorize(role, Action.FM1_SUBMIT)
        provider = await asyncio.to_thread(self.store.provider_of, session.user_id)
        if provider is None:
            raise NotPermitted("this compliance officer was enrolled without a provider BIN")
        return session, provider

    async def _record_read(self, session: Session, details: dict[str, Any]) -> None:
        await self.gw.record(AuditRecord(
            actor=session.user_id, event="fm1.read", outcome="success",
            cert_fingerprint=session.cert_fingerprint, details=details))

    async def _one(self, request: reporting_pb2.Fm1Ref, context: aio.ServicerContext
                   ) -> tuple[Session, StoredMessage]:
        session, own = await self._reader(context)
        if not request.message_id:
            raise MissingField("message_id is empty")
        provider = own or request.provider_bin
        if not provider:
            raise MissingField("provider_bin is empty: name the provider of the message")
        if own is not None and request.provider_bin and request.provider_bin != own:
            raise NotPermitted("a compliance officer reads their own provider's messages")
        current_call().details.update({"message_id": request.message_id,
                                       "provider_bin": provider})
        row = await asyncio.to_thread(self.store.find, provider, request.message_id)
        if row is None:
            raise NotFound("no such FM-1 message")
        return session, row

    async def GetStatus(
        self, request: reporting_pb2.Fm1Ref, context: aio.ServicerContext
    ) -> reporting_pb2.Fm1Status:
        session, row = await self._one(request, context)
        amended = await asyncio.to_thread(self.store.amended_by, row.provider_bin,
                                          row.message_id)
        await self._record_read(session, {"read": "status", "message_id": row.message_id,
                                          "provider_bin": row.provider_bin})
        return self.status(row, amended)

    async def GetMessage(
        self, request: reporting_pb2.Fm1Ref, context: aio.ServicerContext
    ) -> reporting_pb2.Fm1Message:
        session, row = await self._one(request, context)
        amended = await asyncio.to_thread(self.store.amended_by, row.provider_bin,
                                          row.message_id)
        await self._record_read(session, {"read": "message", "message_id": row.message_id,
                                          "provider_bin": row.provider_bin})
        envelope = common_pb2.Envelope()
        envelope.ParseFromString(row.envelope)
        return reporting_pb2.Fm1Message(status=self.status(row, amended),
                                        message_json=row.message_json, envelope=envelope)

    def _filter(self, request: reporting_pb2.ListFm1Request, own: str | None
                ) -> MessageFilter:
        if own is not None and request.provider_bin and request.provider_bin != own:
            raise NotPermitted("a compliance officer lists their own provider's messages")
        if request.after_id > MAX_AFTER_ID:
            raise InputError(f"after_id is over {MAX_AFTER_ID}")
        provider = own or (validate_bin(request.provider_bin) if request.provider_bin
                           else None)
        if request.kind and request.kind not in KINDS:
            raise InputError("kind is not an FM-1 kind", detail="one of " + ", ".join(KINDS))
        return MessageFilter(
            provider_bin=provider, kind=request.kind or None,
            since=parse_iso(request.since) if request.since else None,
            until=parse_iso(request.until) if request.until else None,
            late_only=request.late_only, list_match_only=request.list_match_only,
        )

    async def ListMessages(
        self, request: reporting_pb2.ListFm1Request, context: aio.ServicerContext
    ) -> reporting_pb2.Fm1Page:
        session, own = await self._reader(context)
        flt = self._filter(request, own)
        limit = min(request.limit or DEFAULT_LIMIT, MAX_LIMIT)
        rows, nxt = await asyncio.to_thread(self.store.page, flt, after_id=request.after_id,
                                            limit=limit)
        await self._record_read(session, {"read": "list", "filter": flt.describe(),
                                          "after_id": request.after_id, "rows": len(rows)})
        return reporting_pb2.Fm1Page(messages=[self.status(r) for r in rows],
                                     has_more=nxt is not None, next_after_id=nxt or 0)

    async def ExportMessagesCsv(
        self, request: reporting_pb2.ListFm1Request, context: aio.ServicerContext
    ) -> audit_pb2.CsvExport:
        session, own = await self._reader(context)
        flt = self._filter(request, own)
        paged = bool(request.limit or request.after_id)
        rows, nxt = await asyncio.to_thread(self._export_rows, flt, request, paged)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow([safe_cell(v) for v in (
                r.id, r.message_id, r.provider_bin, r.kind, r.action, r.amends or "",
                r.submitted_by, _iso(r.received_at), _iso(r.deadline_at),
                "true" if r.late else "false", r.lateness_seconds, _iso(r.retention_until),
                "true" if r.list_match else "false",
                r.receipt_seq if r.receipt_seq is not None else "")])
        answer = csv_export(out.getvalue(), len(rows),
                            self.gw.config.limits.transport_max_message_bytes)
        await self._record_read(session, {"read": "export_csv", "filter": flt.describe(),
                                          "after_id": request.after_id, "rows": len(rows)})
        if nxt is not None:
            answer.has_more = True
            answer.next_after_seq = nxt
        return answer

    def _export_rows(self, flt: MessageFilter, request: reporting_pb2.ListFm1Request,
                     paged: bool) -> tuple[list[StoredMessage], int | None]:
        if paged:
            return self.store.page(flt, after_id=request.after_id,
                                   limit=min(request.limit or DEFAULT_LIMIT, MAX_LIMIT))
        rows: list[StoredMessage] = []
        after: int | None = 0
        while after is not None:
            page, after = self.store.page(flt, after_id=after, limit=_EXPORT_PAGE)
            rows.extend(page)
        return rows, None
