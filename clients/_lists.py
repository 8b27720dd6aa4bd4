"""The List and the Lists in the client core (issue 16, point 6): each
``siogw.v1.ScreeningService`` method described once (:class:`clients._core.Rpc`) and
its operations as I/O-free plans, run by :class:`~clients.GatewayClient` and
:class:`~clients.AsyncGatewayClient` (their ``publish_list``, ``lists``, ``screen``,
``watch`` and ``screening_outbox``).

Publishing signs a ``ListPublication`` (the file's bytes, its format, the list's name)
on the user's token as a DSSE envelope of type
:data:`signing.dsse.PAYLOAD_LIST_PUBLICATION`; the other calls carry the session only.
Results are the response messages (``siogw.v1.ScreeningResult`` ...).
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path
from typing import Any

from clients._core import Call, ClientCore, Plan, Rpc, Service, Session, TokenWork
from clients.errors import ClientUsageError
from signing import dsse
from signing.api import Signer
from signing.wire import envelope_to_proto
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import screening_pb2


def _same(msg: Any) -> Any:
    return msg


PUBLISH_LIST: Rpc[screening_pb2.PublishListResponse] = Rpc(
    Service.SCREENING, "PublishList", Session.REQUIRED, _same)
GET_LISTS: Rpc[screening_pb2.ListsOverview] = Rpc(
    Service.SCREENING, "GetLists", Session.REQUIRED, _same)
SCREEN: Rpc[screening_pb2.ScreeningResult] = Rpc(
    Service.SCREENING, "Screen", Session.REQUIRED, _same)
WATCH: Rpc[screening_pb2.ScreeningResult] = Rpc(
    Service.SCREENING, "Watch", Session.REQUIRED, _same)
READ_OUTBOX: Rpc[screening_pb2.ScreeningOutbox] = Rpc(
    Service.SCREENING, "ReadOutbox", Session.REQUIRED, _same)

#: File name suffix -> list file format.
FORMAT_BY_SUFFIX = {".csv": "csv", ".xml": "xml"}


def list_format(path: str | Path, fmt: str | None = None) -> str:
    """The format named, or the one of the file's suffix (``.csv`` / ``.xml``)."""
    if fmt:
        return fmt
    found = FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
    if found is None:
        raise ClientUsageError(f"cannot tell the format of {path}: name it (csv or xml)")
    return found


def sign_publication(publication: screening_pb2.ListPublication,
                     signer: Signer) -> screening_pb2.PublishListRequest:
    payload = publication.SerializeToString(deterministic=True)
    envelope = dsse.sign_envelope(dsse.PAYLOAD_LIST_PUBLICATION, payload, signer)
    return screening_pb2.PublishListRequest(envelope=envelope_to_proto(envelope))


def publish_list(client: ClientCore, list_name: str, content: bytes, fmt: str,
                 source_reference: str, signer: Signer | None
                 ) -> Plan[screening_pb2.PublishListResponse]:
    """Sign and publish a new version of ``list_name`` from a file's ``content``."""
    publication = screening_pb2.ListPublication(
        request_id=str(uuid.uuid4()), created_at=astana_iso(), list_name=list_name,
        format=fmt, content=content, source_reference=source_reference)
    request: screening_pb2.PublishListRequest = yield TokenWork(
        functools.partial(sign_publication, publication, client._signer(signer)))
    response: screening_pb2.PublishListResponse = yield Call(PUBLISH_LIST, request)
    return response


def lists(client: ClientCore) -> Plan[screening_pb2.ListsOverview]:
    overview: screening_pb2.ListsOverview = yield Call(GET_LISTS, screening_pb2.GetListsRequest())
    return overview


def _subject(iin_bin: str, name: str, birth_date: str) -> screening_pb2.ScreeningSubject:
    return screening_pb2.ScreeningSubject(iin_bin=iin_bin, name=name, birth_date=birth_date)


def screen(client: ClientCore, iin_bin: str, name: str, birth_date: str,
           client_ref: str) -> Plan[screening_pb2.ScreeningResult]:
    result: screening_pb2.ScreeningResult = yield Call(SCREEN, screening_pb2.ScreenRequest(
        subject=_subject(iin_bin, name, birth_date), client_ref=client_ref))
    return result


def watch(client: ClientCore, client_ref: str, iin_bin: str, name: str,
          birth_date: str) -> Plan[screening_pb2.ScreeningResult]:
    result: screening_pb2.ScreeningResult = yield Call(WATCH, screening_pb2.WatchRequest(
        client_ref=client_ref, subject=_subject(iin_bin, name, birth_date)))
    return result


def read_outbox(client: ClientCore, include_read: bool
                ) -> Plan[screening_pb2.ScreeningOutbox]:
    outbox: screening_pb2.ScreeningOutbox = yield Call(
        READ_OUTBOX, screening_pb2.ReadOutboxRequest(include_read=include_read))
    return outbox
