"""OpenTelemetry tracing of the gateway (issue 17, point 2). Off by default.

With ``[tracing] enabled = true``, ``siogw serve`` installs an SDK tracer provider
(:func:`setup_tracing`; service name ``siogw``) that exports over OTLP/gRPC to
``[tracing] otlp_endpoint`` when it is set, else prints the spans (console exporter), and
every gRPC server of the process gets OpenTelemetry's interceptor
(``opentelemetry-instrumentation-grpc``, :func:`server_interceptors`): one trace per call,
continuing the caller's ``traceparent`` when it sends one. Inside a query the gateway
adds its own spans (:data:`tracer`, :mod:`server.query`):

``siogw.checks`` (steps 1-12 of the query's check order) containing
``siogw.replay_claim``; then ``siogw.dispatch``, ``siogw.sign`` and
``siogw.audit_append``.

Spans carry no request content: the resource number and the request id at most (never a
parameter, token or key material). Without a provider (tracing off) the API's no-op
tracer makes each span a few attribute-less calls.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from opentelemetry import trace

from server.config import GatewayConfig

log = logging.getLogger("siogw.tracing")

#: The tracer of the gateway's own spans (the global provider's, no-op until one is set).
tracer = trace.get_tracer("siogw.server")

SERVICE_NAME = "siogw"

#: What :func:`span` gives while tracing is off: no span, nothing attached to the context
#: (an OpenTelemetry no-op span still costs ~10 us; this costs a method call).
_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)
_active = False


def span(name: str) -> Any:
    """``with span("siogw.x") as s:`` a span of the gateway's own, current while the block
    runs; nothing at all while tracing is off in this process."""
    return tracer.start_as_current_span(name) if _active else _NO_SPAN


def activate() -> None:
    """Make :func:`span` record (tracing is on in this process)."""
    global _active
    _active = True


def setup_tracing(config: GatewayConfig) -> Any | None:
    """Install the SDK provider of ``[tracing]`` (None when tracing is off)."""
    if not config.tracing.enabled:
        return None
    # Deferred: the SDK and the exporters are loaded only when tracing is on.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if config.tracing.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=config.tracing.otlp_endpoint)
    else:
        exporter = ConsoleSpanExporter(out=sys.stderr)  # stdout is the CLI's
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    activate()
    log.info("tracing on (%s)", config.tracing.otlp_endpoint or "console")
    return provider


def server_interceptors(config: GatewayConfig) -> list[Any]:
    """OpenTelemetry's gRPC server interceptor when tracing is on (else none)."""
    if not config.tracing.enabled:
        return []
    # Deferred: the instrumentation is loaded only when tracing is on.
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    activate()  # a traced server: the gateway's spans too
    return [aio_server_interceptor()]  # type: ignore[no-untyped-call]


def mark_refused(code: Any, reason: str) -> None:
    """Mark the current span (the call's server span) as refused: status ERROR, the gRPC
    status code and the ErrorInfo reason (OpenTelemetry's interceptor does not see an
    ``abort``). Nothing when no span is recording."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("rpc.grpc.status_code", int(code.value[0]))
    span.set_attribute("siogw.reason", reason)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{code.name}: {reason}"))


def shutdown_tracing(provider: Any | None) -> None:
    """Flush and stop the provider :func:`setup_tracing` installed."""
    if provider is not None:
        provider.shutdown()
