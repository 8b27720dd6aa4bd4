"""``siogw.v1.ScreeningService``: the List and the Lists over gRPC (issue 16, point 6).

Every call needs a live session (:meth:`server.context.Gateway.authenticate`) and a role
the screening table allows (:data:`server.screening.service.PERMISSIONS`). The calls
that change state follow the write-ahead rule (:mod:`server.writeahead`): the checks
that change nothing (session, role, signature, freshness, the file's or the subject's
format), then the request record, then the effect, then the outcome record whose
receipt the answer carries.

``PublishList`` takes a DSSE envelope (:data:`signing.dsse.PAYLOAD_LIST_PUBLICATION`)
over a ``ListPublication``, signed with the session's certificate; its ``request_id`` is
claimed like an admin command's (a replay is ``ALREADY_EXISTS``) and ``created_at``
must be within the clock skew. The version keeps the signed envelope. ``Screen``,
``Watch`` and ``ReadOutbox`` are a provider's compliance officer's; ``GetLists`` shows
the current versions.
"""

from __future__ import annotations

import asyncio
import datetime as _dt

from google.protobuf.message import DecodeError
from grpc import aio

from server.context import Gateway, check_fresh, envelope_bytes
from server.errors import MissingField
from server.interceptors import current_call
from server.screening.match import MATCH, NO_MATCH, POSSIBLE_MATCH, Hit, Subject
from server.screening.service import (
    ListVersion,
    OutboxItem,
    ScreeningResult,
    ScreeningService,
    authorize,
    check_client_ref,
    check_subject,
)
from server.writeahead import write_ahead
from signing import dsse
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import common_pb2, screening_pb2, screening_pb2_grpc

_OUTCOMES = {
    NO_MATCH: screening_pb2.SCREENING_OUTCOME_NO_MATCH,
    POSSIBLE_MATCH: screening_pb2.SCREENING_OUTCOME_POSSIBLE_MATCH,
    MATCH: screening_pb2.SCREENING_OUTCOME_MATCH,
}


def _time(value: _dt.datetime | None) -> str:
    return astana_iso(value) if value is not None else ""


def version_proto(v: ListVersion) -> screening_pb2.ListVersion:
    return screening_pb2.ListVersion(
        list_name=v.list_name, version=v.version, digest=v.digest, entries=v.entries,
        published_at=_time(v.published_at), published_by=v.published_by,
        source_reference=v.source_reference, format=v.format)


def match_proto(h: Hit) -> screening_pb2.ScreeningMatch:
    e = h.entry
    return screening_pb2.ScreeningMatch(
        list_name=h.list_name, version=h.version, entry_ref=e.ref, kind=e.kind,
        outcome=_OUTCOMES[h.outcome], basis=h.basis, score=h.score,
        matched_name=h.matched_name, names=list(e.names), iin_bin=e.iin_bin,
        birth_date=e.birth_date, country=e.country, reference=e.reference)


def result_proto(r: ScreeningResult, receipt: common_pb2.AuditReceipt | None = None
                 ) -> screening_pb2.ScreeningResult:
    return screening_pb2.ScreeningResult(
        result_id=r.result_id, outcome=_OUTCOMES[r.outcome],
        versions=[version_proto(v) for v in r.versions],
        matches=[match_proto(h) for h in r.hits], screened_at=_time(r.screened_at),
        retain_until=_time(r.retain_until), receipt=receipt, client_ref=r.client_ref)


def outbox_proto(item: OutboxItem) -> screening_pb2.ScreeningOutboxItem:
    return screening_pb2.ScreeningOutboxItem(
        id=item.id, client_ref=item.client_ref, list_name=item.list_name,
        version=item.version, entry_ref=item.entry_ref, outcome=_OUTCOMES[item.outcome],
        summary=item.summary, result_id=item.result_id, created_at=_time(item.created_at),
        read_at=_time(item.read_at))


def _subject(message: screening_pb2.ScreeningSubject) -> Subject:
    return check_subject(Subject(iin_bin=message.iin_bin, name=message.name,
                                 birth_date=message.birth_date))


def _subject_details(s: Subject) -> dict[str, str]:
    return {"iin_bin": s.iin_bin, "name": s.name, "birth_date": s.birth_date}


class ScreeningServicer(screening_pb2_grpc.ScreeningServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway, service: ScreeningService) -> None:
        self.gw = gateway
        self.service = service

    async def PublishList(
        self, request: screening_pb2.PublishListRequest, context: aio.ServicerContext
    ) -> screening_pb2.PublishListResponse:
        gw, info = self.gw, current_call()
        session = await gw.authenticate(context)
        if request.HasField("envelope"):
            info.payload = envelope_bytes(request.envelope)
        gw.audit.check()
        authorize(session.user.role, "publish")
        if not request.HasField("envelope"):
            raise MissingField("the signed list publication (envelope) is missing")
        signed = envelope_bytes(request.envelope)
        payload = gw.verify_by_certificate(request.envelope, dsse.PAYLOAD_LIST_PUBLICATION,
                                           session.certificate)
        pub = screening_pb2.ListPublication()
        try:
            pub.ParseFromString(payload)
        except DecodeError as exc:
            raise InputError("the signed payload is not a siogw.v1.ListPublication") from exc
        info.details.update({"request_id": pub.request_id, "list_name": pub.list_name,
                             "format": pub.format})
        if not pub.request_id:
            raise MissingField("request_id is empty")
        check_fresh(pub.created_at, gw.config.limits.clock_skew_seconds)
        content = bytes(pub.content)
        entries = await asyncio.to_thread(self.service.check_publication, session.user.role,
                                          pub.list_name, pub.format, content)
        intent = await write_ahead(
            gw, event="screening.publish", actor=session.user_id,
            cert_fingerprint=session.cert_fingerprint,
            details={"request_id": pub.request_id, "list_name": pub.list_name,
                     "format": pub.format, "entries": len(entries)},
            payload=signed)
        gw.store.claim_request_id(pub.request_id, user_id=session.user_id, kind="lists")
        info.details["request_claimed"] = True
        done = await asyncio.to_thread(
            lambda: self.service.publish(
                user_id=session.user_id, role=session.user.role, list_name=pub.list_name,
                fmt=pub.format, content=content, entries=entries,
                source_reference=pub.source_reference, envelope=signed,
                cert_fingerprint=session.cert_fingerprint, request_seq=intent.seq))
        v = done.version
        message = (f"{v.list_name} list version {v.version} published ({v.entries} "
                   f"entries); {done.rescreened} subject(s) re-screened, "
                   f"{done.new_matches} new match(es) flagged")
        receipt = await intent.done({
            "request_id": pub.request_id, "list_name": v.list_name, "version": v.version,
            "digest": v.digest, "entries": v.entries, "rescreened": done.rescreened,
            "new_matches": done.new_matches})
        return screening_pb2.PublishListResponse(
            version=version_proto(v), rescreened=done.rescreened,
            new_matches=done.new_matches, receipt=receipt.to_proto(), message=message)

    async def GetLists(
        self, request: screening_pb2.GetListsRequest, context: aio.ServicerContext
    ) -> screening_pb2.ListsOverview:
        session = await self.gw.authenticate(context)
        versions = await asyncio.to_thread(self.service.lists, session.user.role)
        return screening_pb2.ListsOverview(lists=[version_proto(v) for v in versions])

    async def Screen(
        self, request: screening_pb2.ScreenRequest, context: aio.ServicerContext
    ) -> screening_pb2.ScreeningResult:
        gw = self.gw
        session = await gw.authenticate(context)
        gw.audit.check()
        authorize(session.user.role, "screen")
        subject = _subject(request.subject)
        intent = await write_ahead(
            gw, event="screening.screen", actor=session.user_id,
            cert_fingerprint=session.cert_fingerprint,
            details={"client_ref": request.client_ref, **_subject_details(subject)},
            payload=None)
        result = await asyncio.to_thread(
            lambda: self.service.screen(user_id=session.user_id, role=session.user.role,
                                        subject=subject, client_ref=request.client_ref))
        receipt = await intent.done({"result_id": result.result_id,
                                     "outcome": result.outcome,
                                     "matches": [h.entry.ref for h in result.hits][:50]})
        return result_proto(result, receipt.to_proto())

    async def Watch(
        self, request: screening_pb2.WatchRequest, context: aio.ServicerContext
    ) -> screening_pb2.ScreeningResult:
        gw = self.gw
        session = await gw.authenticate(context)
        gw.audit.check()
        authorize(session.user.role, "watch")
        client_ref = check_client_ref(request.client_ref)
        subject = _subject(request.subject)
        intent = await write_ahead(
            gw, event="screening.watch", actor=session.user_id,
            cert_fingerprint=session.cert_fingerprint,
            details={"client_ref": client_ref, **_subject_details(subject)}, payload=None)
        result = await asyncio.to_thread(
            lambda: self.service.watch(user_id=session.user_id, role=session.user.role,
                                       client_ref=client_ref, subject=subject))
        receipt = await intent.done({"result_id": result.result_id,
                                     "outcome": result.outcome, "client_ref": client_ref})
        return result_proto(result, receipt.to_proto())

    async def ReadOutbox(
        self, request: screening_pb2.ReadOutboxRequest, context: aio.ServicerContext
    ) -> screening_pb2.ScreeningOutbox:
        gw = self.gw
        session = await gw.authenticate(context)
        gw.audit.check()
        authorize(session.user.role, "outbox")
        intent = await write_ahead(
            gw, event="screening.outbox_read", actor=session.user_id,
            cert_fingerprint=session.cert_fingerprint,
            details={"include_read": request.include_read}, payload=None)
        items = await asyncio.to_thread(
            lambda: self.service.outbox(user_id=session.user_id, role=session.user.role,
                                        include_read=request.include_read))
        await intent.done({"items": len(items)})
        return screening_pb2.ScreeningOutbox(items=[outbox_proto(i) for i in items])
