"""Server interceptors: request ids, message-size limit, the uniform error mapping and
the audit record of every refused call.

:class:`GatewayInterceptor` wraps every unary-unary handler of the ``siogw.v1``
services (health and reflection are left alone). For each call it

1. creates a :class:`CallInfo` (request id, method, peer) in a context variable that the
   servicers enrich (user, certificate, the signed envelope, the query's request id);
2. measures the raw request bytes *before* parsing: over ``limits.max_message_bytes`` the
   call is refused with ``RESOURCE_EXHAUSTED`` (and recorded). gRPC's own
   ``max_receive_message_length`` is ``Limits.transport_receive_bytes`` (the limit plus
   the framing overhead), a hard cap that protects memory; what exceeds it never reaches
   the application;
3. runs the handler; a :class:`~siogw_api.errors.SiogwError` becomes the status of
   :func:`server.errors.to_status`, anything else ``INTERNAL`` with the request id
   (logged with its traceback; the server keeps running);
4. records every refused call through the :class:`~server.auditsink.AuditSink`
   (``event="refusal"``) with the same neutral message the client gets
   (:func:`server.errors.message_for`: never a library's or the database's text). If
   the audit log itself is down the refusal is still returned (and logged): a refusal
   never turns into success.

Before the handler reads anything, every client-chosen field of the request (and of the
query or admin command inside a signed envelope) is checked against its cap
(:func:`server.bounds.check_request`, ``INVALID_ARGUMENT``).

A refusal is always recordable. Its ``actor`` is the authenticated user or
``anonymous`` -- never an id the caller only claimed (that is ``claimed_user`` in the
details). The envelope is kept as its protobuf bytes, whole up to the message limit,
else as a digest and its first bytes (:func:`audit.record.keep_bytes`); the message is
clipped; ``signer_certs`` names the certificates the envelope's signatures carry (the
violation rules count a signature failure against a user only when it is theirs). If
the log still refuses the record (``MalformedRecord``), a minimal one is written.

Unauthenticated refusals are rate-limited per peer address (:class:`RefusalLimiter`):
the first ``limits.anonymous_refusal_burst`` (20) of each peer in each
``limits.anonymous_refusal_window_seconds`` (60 s) window are recorded one by one;
the rest are counted by reason and written as one ``refusal.summary`` record per peer
and window, when the window is over (at the next refusal from anyone, or at
:meth:`GatewayInterceptor.flush_summaries`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import itertools
import logging
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc import aio

from audit.errors import MalformedRecord
from audit.record import AuditRecord, clip_text, keep_bytes
from server import metrics
from server.auditsink import AuditSink
from server.bounds import check_request
from server.config import GatewayConfig
from server.errors import (
    MalformedRequest,
    MessageTooLarge,
    message_for,
    reason_for,
    status_code_for,
    to_status,
)
from server.forward import FORWARDED_PEER_HEADER
from server.tracing import mark_refused, span
from siogw_api.errors import SiogwError
from siogw_api.timeutil import astana_iso, now_utc

log = logging.getLogger("siogw.server")

SERVICE_PREFIX = "/siogw.v1."
REQUEST_ID_HEADER = "x-request-id"


@dataclass
class CallInfo:
    """What the gateway knows about the current call (filled in as checks pass)."""

    request_id: str
    method: str
    peer: str = ""
    #: The *authenticated* user (a claimed id goes in ``details["claimed_user"]``).
    user_id: str | None = None
    cert_fingerprint: str | None = None
    #: The signed request envelope as received (its ``siogw.v1.Envelope`` protobuf
    #: bytes, or a signed document's bytes), for the audit record.
    payload: bytes | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: The status code name a refusal answered (metrics); None while the call succeeds.
    code: str | None = None


_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("siogw_call", default=None)


#: Call ids: a random prefix per process and a counter. Unique across restarts and
#: processes, and far cheaper than a uuid4 per call (an os.urandom each); an id only
#: correlates a call with its log lines and audit record, it protects nothing.
_CALL_PREFIX = secrets.token_hex(8)
_CALL_COUNTER = itertools.count(1)


def new_call_id() -> str:
    return f"{_CALL_PREFIX}{next(_CALL_COUNTER):016x}"


def active_call() -> CallInfo | None:
    """The :class:`CallInfo` of the call being served, or None outside calls (logs)."""
    return _CALL.get()


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


#: Longest refusal message kept in a record.
MAX_MESSAGE_CHARS = 1000
#: What the minimal fallback record keeps of the envelope.
FALLBACK_PAYLOAD_BYTES = 4096
#: Unauthenticated refusals recorded one by one per peer and window (then summarised).
REFUSAL_BURST = 20
REFUSAL_WINDOW_SECONDS = 60.0
#: Peers tracked at once; beyond, new peers share one bucket ("*").
REFUSAL_MAX_PEERS = 4096


def refusal_limiter(config: GatewayConfig) -> RefusalLimiter:
    """The limiter of a gateway process, from ``limits.anonymous_refusal_*``."""
    return RefusalLimiter(burst=config.limits.anonymous_refusal_burst,
                          window=config.limits.anonymous_refusal_window_seconds)


def _envelopes(request: object) -> list[Message]:
    """The ``siogw.v1.Envelope`` fields at the top level of a request message."""
    if not isinstance(request, Message):
        return []
    return [
        value for fd, value in request.ListFields()
        if fd.message_type is not None and fd.message_type.full_name == "siogw.v1.Envelope"
        and isinstance(value, Message)
    ]


def _refusal_record(
    info: CallInfo, exc: BaseException, request: object = None, *, payload_limit: int
) -> AuditRecord:
    code = status_code_for(exc)
    details: dict[str, Any] = {
        "method": info.method,
        "call_id": info.request_id,
        "code": code.name,
        "reason": reason_for(exc),
        "message": clip_text(message_for(exc), MAX_MESSAGE_CHARS),  # never a library's text
        "peer": info.peer,
    }
    envelopes = _envelopes(request)
    certs = sorted({
        hashlib.sha256(bytes(sig.cert_der)).hexdigest()
        for env in envelopes for sig in list(getattr(env, "signatures", ()))[:16]
        if sig.cert_der
    })
    if certs:
        details["signer_certs"] = certs
    for key, value in info.details.items():
        details.setdefault(key, value)
    raw = info.payload
    if raw is None and envelopes and "request_seq" not in info.details:
        # refused before the servicer kept it (a cap); once a write-ahead request record
        # holds the envelope, the refusal names it by request_seq instead
        raw = envelopes[0].SerializeToString(deterministic=True)
    payload = None
    if raw is not None:
        payload, kept = keep_bytes(raw, payload_limit)
        details.update(kept)
    return AuditRecord(
        actor=info.user_id or "anonymous",
        event="refusal",
        outcome="refused",
        cert_fingerprint=info.cert_fingerprint,
        details=details,
        payload=payload,
    )


def _minimal_record(record: AuditRecord) -> AuditRecord:
    """The fallback when the log refuses a refusal record: the fixed fields, the digest
    and first bytes of the envelope."""
    d = record.details
    details: dict[str, Any] = {
        k: d[k] for k in ("method", "call_id", "code", "reason", "peer") if k in d
    }
    details["record_refused"] = True
    payload = None
    if record.payload is not None:
        payload, kept = keep_bytes(record.payload, FALLBACK_PAYLOAD_BYTES)
        details.update(kept)
        if "payload_sha256" in d:  # the digest of the original, not of the kept prefix
            for k in ("payload_sha256", "payload_bytes"):
                details[k] = d[k]
    return AuditRecord(
        actor=record.actor, event=record.event, outcome=record.outcome,
        cert_fingerprint=record.cert_fingerprint, details=details, payload=payload,
    )


def peer_address(peer: str) -> str:
    """The address of a gRPC peer string, without the port (``ipv4:1.2.3.4:5`` ->
    ``1.2.3.4``; ``ipv6:[::1]:5`` -> ``::1``; anything else as is)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        if rest.startswith("["):
            return rest[1:].partition("]")[0]
        return rest
    return peer


@dataclass
class _PeerWindow:
    start: float
    started_at: str
    recorded: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)


class RefusalLimiter:
    """Per-peer burst and window for unauthenticated refusals (see the module docstring).

    :meth:`admit` says whether a refusal is recorded on its own and returns the summaries
    of windows that are over. Pure bookkeeping: no I/O; ``clock`` is monotonic seconds.
    """

    def __init__(
        self, *, burst: int = REFUSAL_BURST, window: float = REFUSAL_WINDOW_SECONDS,
        max_peers: int = REFUSAL_MAX_PEERS, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.window, self.max_peers, self.clock = burst, window, max_peers, clock
        self._peers: OrderedDict[str, _PeerWindow] = OrderedDict()

    def admit(self, peer: str, reason: str) -> tuple[bool, list[AuditRecord]]:
        now = self.clock()
        summaries = self._expire(now)
        key = peer_address(peer)
        if key not in self._peers and len(self._peers) >= self.max_peers:
            key = "*"
        win = self._peers.get(key)
        if win is None:
            win = self._peers[key] = _PeerWindow(start=now, started_at=astana_iso(now_utc()))
        if win.recorded < self.burst:
            win.recorded += 1
            return True, summaries
        win.suppressed[reason] += 1
        return False, summaries

    def flush(self) -> list[AuditRecord]:
        """Summaries of every window with suppressed refusals, over or not."""
        return self._expire(None)

    def _expire(self, now: float | None) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        while self._peers:
            key, win = next(iter(self._peers.items()))
            if now is not None and now - win.start < self.window:
                break  # insertion order is start order
            del self._peers[key]
            if win.suppressed:
                out.append(self._summary(key, win))
        return out

    def _summary(self, key: str, win: _PeerWindow) -> AuditRecord:
        by_reason = dict(sorted(win.suppressed.items()))
        return AuditRecord(
            actor="anonymous", event="refusal.summary", outcome="refused",
            details={
                "peer": key, "window_started_at": win.started_at,
                "window_seconds": int(self.window), "recorded": win.recorded,
                "suppressed": sum(by_reason.values()), "by_reason": by_reason,
            },
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
        limiter: RefusalLimiter | None = None,
    ) -> None:
        self.sink = sink
        self.max_message_bytes = max_message_bytes
        #: A worker process (ADR 0007) wraps only the services it serves itself; the
        #: calls it forwards are wrapped by the log host's interceptor.
        self.only_prefixes = only_prefixes
        #: On the log host's internal listener, the client's address is the one the
        #: forwarding worker names (server.forward); nowhere else is that header believed.
        self.trust_forwarded_peer = trust_forwarded_peer
        #: Unauthenticated refusals: burst and summaries per peer (module docstring).
        self.limiter = limiter if limiter is not None else RefusalLimiter()
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
        if handler.unary_unary is None and handler.unary_stream is None:
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
        streaming = handler.unary_unary is None  # a server-streaming method (issue 15)
        behavior = handler.unary_stream if streaming else handler.unary_unary
        deserializer = handler.request_deserializer
        limit = self.max_message_bytes
        trust_forwarded = self.trust_forwarded_peer
        # "siogw.v1.QueryRequest" for the message; the method name when unknown.
        descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        type_name = getattr(descriptor, "full_name", None) or f"{method} request"
        # Metrics (server.metrics): the children of this method bound once.
        service_name, method_name = metrics.split_method(method)
        latency = metrics.CALL_SECONDS.labels(service_name, method_name)
        calls_ok = metrics.CALLS.labels(service_name, method_name, "OK")

        def observe(info: CallInfo, started: float) -> None:
            latency.observe(time.perf_counter() - started)
            if info.code is None:
                calls_ok.inc()
            else:
                metrics.CALLS.labels(service_name, method_name, info.code).inc()

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

        def begin(request: Any, context: aio.ServicerContext) -> tuple[CallInfo, Any]:
            peer = context.peer()
            if trust_forwarded:
                peer = _forwarded_peer(context) or peer
            info = CallInfo(request_id=new_call_id(), method=method, peer=peer)
            token = _CALL.set(info)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, info.request_id),))
            return info, token

        def admit(request: Any) -> None:
            if isinstance(request, _Oversized):
                raise MessageTooLarge(
                    f"request of {request.size} bytes is over the limit of {limit} bytes"
                )
            if isinstance(request, _Undecodable):
                raise MalformedRequest(
                    f"the {request.size}-byte request is not a valid {type_name} message",
                )
            check_request(request)  # every client-chosen field bounded, first

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            info, token = begin(request, context)
            started = time.perf_counter()
            try:
                admit(request)
                return await behavior(request, context)
            except Exception as exc:  # every error goes through the ONE mapping
                await self._refuse(info, exc, context, request)
                raise AssertionError("unreachable: abort raises") from exc
            finally:
                observe(info, started)
                _CALL.reset(token)

        async def wrapped_stream(request: Any, context: aio.ServicerContext) -> Any:
            # The same checks and the same mapping for a server-streaming method: an
            # error before or between its messages is refused (and recorded) as above.
            info, token = begin(request, context)
            started = time.perf_counter()
            try:
                admit(request)
                async for message in behavior(request, context):
                    yield message
            except Exception as exc:  # every error goes through the ONE mapping
                await self._refuse(info, exc, context, request)
                raise AssertionError("unreachable: abort raises") from exc
            finally:
                observe(info, started)
                with contextlib.suppress(ValueError):  # reset from another context
                    _CALL.reset(token)

        if streaming:
            return grpc.unary_stream_rpc_method_handler(
                wrapped_stream,
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )

    async def flush_summaries(self) -> None:
        """Write the summaries of every open window (at a clean stop)."""
        for summary in self.limiter.flush():
            await self._write(summary, info=None)

    async def _write(self, record: AuditRecord, info: CallInfo | None) -> None:
        """Record; on the log's refusal of this one record, record a minimal one.

        Shielded: a call cancelled meanwhile (its deadline, the client gone) still leaves
        its refusal record (e.g. of a request id given back, ``request_released``)."""
        try:
            try:
                with span("siogw.audit_append"):
                    await asyncio.shield(self.sink.record(record))
            except MalformedRecord:
                await self.sink.record(_minimal_record(record))
        except Exception as audit_exc:  # the refusal stands even when it cannot be logged
            log.error(
                "could not record refusal of %s (request id %s): %s",
                info.method if info else "-", info.request_id if info else "-", audit_exc,
            )

    async def _refuse(
        self, info: CallInfo, exc: BaseException, context: aio.ServicerContext,
        request: object = None,
    ) -> None:
        if isinstance(exc, aio.AbortError):  # a handler aborted on its own: pass it on
            code = context.code() if callable(getattr(context, "code", None)) else None
            info.code = getattr(code, "name", None) or "UNKNOWN"
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
        record_it = True
        summaries: list[AuditRecord] = []
        if info.user_id is None:
            record_it, summaries = self.limiter.admit(info.peer, reason_for(exc))
        for summary in summaries:
            await self._write(summary, info)
        if record_it:
            await self._write(
                _refusal_record(info, exc, request, payload_limit=self.max_message_bytes),
                info,
            )
        status = to_status(exc, request_id=info.request_id)
        info.code = status.code.name
        metrics.REFUSALS.labels(reason_for(exc)).inc()
        mark_refused(status.code, reason_for(exc))  # the call's span (tracing on)
        trailing = (*status.trailing_metadata, (REQUEST_ID_HEADER, info.request_id))
        await context.abort(status.code, status.details, trailing)
