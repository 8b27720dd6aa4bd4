"""Server interceptors: request ids, message-size limit, the uniform error mapping and
the audit record of every refused call.

:class:`GatewayInterceptor` wraps every unary-unary handler of the ``siogw.v1``
services (health and reflection are left alone). For each call it

1. creates a :class:`CallInfo` (request id, method, peer) in a context variable that the
   servicers enrich (user, certificate, the signed envelope, the query's request id);
2. measures the raw request bytes *before* parsing: over ``limits.max_message_bytes`` the
   call is refused with ``RESOURCE_EXHAUSTED`` (and recorded). gRPC's own
   ``max_receive_message_length`` is set to ``limits.transport_max_message_bytes``, a
   larger hard cap that protects memory; what exceeds it never reaches the application;
3. runs the handler; a :class:`~siogw_api.errors.SiogwError` becomes the status of
   :func:`server.errors.to_status`, anything else ``INTERNAL`` with the request id
   (logged with its traceback; the server keeps running);
4. records every refused call through the :class:`~server.auditsink.AuditSink`
   (``event="refusal"``) with the same neutral message the client gets
   (:func:`server.errors.message_for`: never a library's or the database's text). If
   the audit log itself is down the refusal is still returned (and logged): a refusal
   never turns into success.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from audit.record import AuditRecord
from server.auditsink import AuditSink
from server.errors import (
    MalformedRequest,
    MessageTooLarge,
    message_for,
    reason_for,
    status_code_for,
    to_status,
)
from server.forward import FORWARDED_PEER_HEADER
from siogw_api.errors import SiogwError

log = logging.getLogger("siogw.server")

SERVICE_PREFIX = "/siogw.v1."
REQUEST_ID_HEADER = "x-request-id"


@dataclass
class CallInfo:
    """What the gateway knows about the current call (filled in as checks pass)."""

    request_id: str
    method: str
    peer: str = ""
    user_id: str | None = None
    cert_fingerprint: str | None = None
    #: The signed request envelope exactly as received (DSSE JSON), for the audit record.
    payload: bytes | None = None
    details: dict[str, Any] = field(default_factory=dict)


_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("siogw_call", default=None)


#: Call ids: a random prefix per process and a counter. Unique across restarts and
#: processes, and far cheaper than a uuid4 per call (an os.urandom each); an id only
#: correlates a call with its log lines and audit record, it protects nothing.
_CALL_PREFIX = secrets.token_hex(8)
_CALL_COUNTER = itertools.count(1)


def new_call_id() -> str:
    return f"{_CALL_PREFIX}{next(_CALL_COUNTER):016x}"


def current_call() -> CallInfo:
    """The :class:`CallInfo` of the call being served (a detached one outside calls)."""
    info = _CALL.get()
    if info is None:
        info = CallInfo(request_id=new_call_id(), method="")
        _CALL.set(info)
    return info


class _Oversized:
    """Stands in for a request whose raw size is over the limit (never parsed)."""

    def __init__(self, size: int) -> None:
        self.size = size


class _Undecodable:
    """Stands in for request bytes that do not parse as the method's message."""

    def __init__(self, size: int) -> None:
        self.size = size


def _forwarded_peer(context: aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == FORWARDED_PEER_HEADER and isinstance(value, str):
            return value
    return None


def _refusal_record(info: CallInfo, exc: BaseException) -> AuditRecord:
    code = status_code_for(exc)
    details: dict[str, Any] = {
        "method": info.method,
        "call_id": info.request_id,
        "code": code.name,
        "reason": reason_for(exc),
        "message": message_for(exc),  # the client's wording: never a library's text
        "peer": info.peer,
    }
    for key, value in info.details.items():
        details.setdefault(key, value)
    return AuditRecord(
        actor=info.user_id or "anonymous",
        event="refusal",
        outcome="refused",
        cert_fingerprint=info.cert_fingerprint,
        details=details,
        payload=info.payload,
    )


class GatewayInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """See the module docstring."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        max_message_bytes: int,
        only_prefixes: tuple[str, ...] | None = None,
        trust_forwarded_peer: bool = False,
    ) -> None:
        self.sink = sink
        self.max_message_bytes = max_message_bytes
        #: A worker process (ADR 0007) wraps only the services it serves itself; the
        #: calls it forwards are wrapped by the log host's interceptor.
        self.only_prefixes = only_prefixes
        #: On the log host's internal listener, the client's address is the one the
        #: forwarding worker names (server.forward); nowhere else is that header believed.
        self.trust_forwarded_peer = trust_forwarded_peer
        #: method -> (the service's handler, our wrapper of it): built once per method,
        #: not once per call (gRPC asks the interceptor on every call).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        if handler.unary_unary is None:
            return handler
        if self.only_prefixes is not None and not method.startswith(self.only_prefixes):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapper = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapper)
        return wrapper

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        behavior = handler.unary_unary
        deserializer = handler.request_deserializer
        limit = self.max_message_bytes
        trust_forwarded = self.trust_forwarded_peer
        # "siogw.v1.QueryRequest" for the message; the method name when unknown.
        descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        type_name = getattr(descriptor, "full_name", None) or f"{method} request"

        def deserialize(raw: bytes) -> Any:
            # Runs inside grpc before any handler: an exception here would become
            # UNKNOWN with no audit record, so failures are handed to ``wrapped``.
            if len(raw) > limit:
                return _Oversized(len(raw))
            if deserializer is None:
                return raw
            try:
                return deserializer(raw)
            except Exception as exc:  # DecodeError, or anything a parser may raise
                # The parser's own words are logged here, never answered or recorded.
                log.info("undecodable %s (%d bytes): %s: %.300s", type_name, len(raw),
                         type(exc).__name__, exc)
                return _Undecodable(len(raw))

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            peer = context.peer()
            if trust_forwarded:
                peer = _forwarded_peer(context) or peer
            info = CallInfo(request_id=new_call_id(), method=method, peer=peer)
            token = _CALL.set(info)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, info.request_id),))
            try:
                if isinstance(request, _Oversized):
                    raise MessageTooLarge(
                        f"request of {request.size} bytes is over the limit of {limit} bytes"
                    )
                if isinstance(request, _Undecodable):
                    raise MalformedRequest(
                        f"the {request.size}-byte request is not a valid "
                        f"{type_name} message",
                    )
                return await behavior(request, context)
            except Exception as exc:  # every error goes through the ONE mapping
                await self._refuse(info, exc, context)
                raise AssertionError("unreachable: abort raises") from exc
            finally:
                _CALL.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )

    async def _refuse(
        self, info: CallInfo, exc: BaseException, context: aio.ServicerContext
    ) -> None:
        if isinstance(exc, aio.AbortError):  # a handler aborted on its own: pass it on
            raise exc
        if not isinstance(exc, SiogwError):
            log.error(
                "internal error in %s (request id %s)", info.method, info.request_id,
                exc_info=exc,
            )
        else:
            log.info(
                "refused %s (request id %s): %s", info.method, info.request_id,
                exc.diagnostics(),
            )
        try:
            await self.sink.record(_refusal_record(info, exc))
        except Exception as audit_exc:  # the refusal stands even when it cannot be logged
            log.error(
                "could not record refusal of %s (request id %s): %s",
                info.method, info.request_id, audit_exc,
            )
        status = to_status(exc, request_id=info.request_id)
        trailing = (*status.trailing_metadata, (REQUEST_ID_HEADER, info.request_id))
        await context.abort(status.code, status.details, trailing)
