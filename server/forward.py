"""Forwarding of siogw.v1 calls from a worker process to the log host (ADR 0007).

A worker serves ``QueryService`` itself. Every other ``siogw.v1`` method (login, consent,
the audit and administration services) reads or writes the audit log or the operations
domain, which live in the log host: the worker passes such calls on, unparsed, over a
Unix socket to the log host's internal gRPC listener, and passes the answer back as it
came (message, status, ``google.rpc.Status`` details, metadata).

The client's address travels in the :data:`FORWARDED_PEER_HEADER` metadata; the log host
believes that header only on its internal listener (see
:class:`server.interceptors.GatewayInterceptor`), and a worker always replaces whatever
a client sent under that name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import grpc
from grpc import aio

log = logging.getLogger("siogw.forward")

FORWARDED_PEER_HEADER = "x-siogw-forwarded-peer"

#: The server-streaming methods (the forwarder must know: the wire carries no type).
STREAMING_METHODS = frozenset({"/siogw.v1.AuditService/StreamQueriesCsv"})

#: Metadata a client must not be able to pass through, and gRPC's own headers.
_DROPPED = frozenset({FORWARDED_PEER_HEADER, "user-agent", "te", "content-type",
                      "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"})


def _passable(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[tuple[str, str | bytes]]:
    return [(k, v) for k, v in metadata or () if k not in _DROPPED and not k.startswith(":")]


class ForwardingHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers ``method`` names matching ``prefix`` (and not served locally) by forwarding.

    ``channel`` is an ``aio`` channel to the log host's internal listener. Methods the
    worker serves itself are registered before this handler, so gRPC never asks it
    about them.
    """

    def __init__(self, channel: aio.Channel, *, prefix: str = "/siogw.v1.") -> None:
        self.channel = channel
        self.prefix = prefix
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        if not method.startswith(self.prefix):
            return None
        handler = self._handlers.get(method)
        if handler is None:
            if method in STREAMING_METHODS:
                handler = grpc.unary_stream_rpc_method_handler(self._stream_forwarder(method))
            else:
                handler = grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            self._handlers[method] = handler
        return handler

    def _forwarder(self, method: str):  # type: ignore[no-untyped-def]
        call_upstream = self.channel.unary_unary(method)  # bytes in, bytes out

        async def forward(request: bytes, context: aio.ServicerContext) -> bytes:
            metadata = _passable(context.invocation_metadata())
            metadata.append((FORWARDED_PEER_HEADER, context.peer()))
            remaining = context.time_remaining()
            call = call_upstream(request, metadata=metadata, timeout=remaining)
            try:
                response: bytes = await call
            except aio.AioRpcError as exc:
                trailing = _passable(exc.trailing_metadata())
                if exc.code() == grpc.StatusCode.UNAVAILABLE and not trailing:
                    # No answer from the log host at all (it is down or restarting).
                    log.error("cannot forward %s to the log host: %s", method, exc.details())
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "the gateway's log host is unreachable; try again shortly",
                    )
                await context.abort(exc.code(), exc.details() or "", tuple(trailing))
            initial = _passable(await call.initial_metadata())
            if initial:
                await context.send_initial_metadata(tuple(initial))
            context.set_trailing_metadata(tuple(_passable(await call.trailing_metadata())))
            return response

        return forward

    def _stream_forwarder(self, method: str):  # type: ignore[no-untyped-def]
        """As :meth:`_forwarder`, for a server-streaming method: each message is passed
        on as it arrives; an error (before or between messages) as it came."""
        call_upstream = self.channel.unary_stream(method)  # bytes in, bytes out

        async def forward(request: bytes, context: aio.ServicerContext) -> Any:
            metadata = _passable(context.invocation_metadata())
            metadata.append((FORWARDED_PEER_HEADER, context.peer()))
            call = call_upstream(request, metadata=metadata, timeout=context.time_remaining())
            try:
                async for message in call:
                    yield message
            except aio.AioRpcError as exc:
                trailing = _passable(exc.trailing_metadata())
                if exc.code() == grpc.StatusCode.UNAVAILABLE and not trailing:
                    log.error("cannot forward %s to the log host: %s", method, exc.details())
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "the gateway's log host is unreachable; try again shortly",
                    )
                await context.abort(exc.code(), exc.details() or "", tuple(trailing))
            context.set_trailing_metadata(tuple(_passable(await call.trailing_metadata())))

        return forward
