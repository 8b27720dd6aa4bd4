"""OpenTelemetry tracing (issue 17, point 2): with ``[tracing] enabled``, each query is one
trace -- the gRPC server span of OpenTelemetry's interceptor, and inside it the gateway's
spans for the checks (with the replay claim), the dispatch, the signing and the audit
append -- collected here with the SDK's in-memory exporter."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.config import load_config
from server.tracing import server_interceptors
from tests.server.conftest import Harness, bearer, rpc_error

#: Read by the ``gateway`` fixture (tests/server/conftest.py).
GATEWAY_CONFIG = {"tracing": {"enabled": True}}

QUERY_SPAN = "/siogw.v1.QueryService/Query"
OWN_SPANS = {"siogw.checks", "siogw.replay_claim", "siogw.dispatch", "siogw.sign",
             "siogw.audit_append"}


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, with an in-memory exporter (set once per process:
    OpenTelemetry allows one global provider)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def traces(exporter: InMemorySpanExporter) -> dict[int, list[ReadableSpan]]:
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in exporter.get_finished_spans():
        assert span.context is not None
        by_trace[span.context.trace_id].append(span)
    return by_trace


def query_traces(exporter: InMemorySpanExporter) -> list[list[ReadableSpan]]:
    return [t for t in traces(exporter).values() if any(s.name == QUERY_SPAN for s in t)]


def by_name(trace_spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    names = [s.name for s in trace_spans]
    assert len(names) == len(set(names)), names
    return {s.name: s for s in trace_spans}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_each_query_is_one_trace_with_the_gateway_spans(
    spans: InMemorySpanExporter, gateway: Harness
) -> None:
    gateway.session("alice")
    spans.clear()
    for _ in range(2):
        gateway.send_query("alice")
    found = query_traces(spans)
    assert len(found) == 2  # one trace per query, not one shared
    for t in found:
        named = by_name(t)
        assert set(named) >= OWN_SPANS | {QUERY_SPAN}, sorted(named)
        root = named[QUERY_SPAN]
        assert root.parent is None and root.kind == trace.SpanKind.SERVER
        root_id = root.context.span_id  # type: ignore[union-attr]
        for name in ("siogw.checks", "siogw.dispatch", "siogw.sign", "siogw.audit_append"):
            assert parent_of(named[name]) == root_id, name
        assert parent_of(named["siogw.replay_claim"]) == named["siogw.checks"].context.span_id  # type: ignore[union-attr]
        # in the order of the check order: checks, dispatch, signing, then the record
        order = ["siogw.checks", "siogw.dispatch", "siogw.sign", "siogw.audit_append"]
        starts = [named[n].start_time or 0 for n in order]
        assert starts == sorted(starts)
        assert named["siogw.dispatch"].attributes["siogw.resource"] == 1  # type: ignore[index]
        # nothing of the request content or the session token in any span
        token = gateway.session("alice")
        for span in t:
            text = repr(dict(span.attributes or {}))
            assert token not in text and "iin" not in text


def test_a_refused_query_is_traced_up_to_its_refusal(
    spans: InMemorySpanExporter, gateway: Harness
) -> None:
    token = gateway.session("alice")
    req, _ = gateway.query_request(gateway.users["alice"])
    gateway.query.Query(req, metadata=bearer(token))
    spans.clear()
    code, _reason, _msg = rpc_error(lambda: gateway.query.Query(req, metadata=bearer(token)))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    # the server span ends once the refusal has gone out: wait for it (not a timing check)
    deadline = time.monotonic() + 30
    while not query_traces(spans) and time.monotonic() < deadline:
        time.sleep(0.02)
    (t,) = query_traces(spans)
    named = by_name(t)
    assert {"siogw.checks", "siogw.replay_claim", "siogw.audit_append"} <= set(named)
    assert "siogw.dispatch" not in named and "siogw.sign" not in named
    assert named["siogw.replay_claim"].status.status_code == trace.StatusCode.ERROR
    root = named[QUERY_SPAN]
    assert root.status.status_code == trace.StatusCode.ERROR
    assert root.attributes["rpc.grpc.status_code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]  # type: ignore[index]
    assert root.attributes["siogw.reason"] == _reason  # type: ignore[index]


def test_tracing_is_off_by_default(tmp_path: Any) -> None:
    config = load_config(tmp_path, env={})
    assert config.tracing.enabled is False
    assert server_interceptors(config) == []
    on = load_config(tmp_path, env={"SIOGW_TRACING": "true"})
    assert len(server_interceptors(on)) == 1


def test_setup_tracing_exports_to_the_console_without_an_endpoint(tmp_path: Any) -> None:
    """``[tracing] enabled`` with no OTLP endpoint: spans printed to standard error (run
    in a child: a process has one global tracer provider)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from server.config import load_config\n"
        "from server.tracing import setup_tracing, shutdown_tracing, span\n"
        f"config = load_config({str(tmp_path)!r}, env={{'SIOGW_TRACING': 'true'}})\n"
        "provider = setup_tracing(config)\n"
        "with span('siogw.checks'):\n"
        "    pass\n"
        "shutdown_tracing(provider)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"name": "siogw.checks"' in proc.stderr and '"siogw"' in proc.stderr
    assert "siogw.checks" not in proc.stdout
    off = subprocess.run([sys.executable, "-c", code.replace("'true'", "'false'")],
                         capture_output=True, text=True, timeout=120)
    assert off.returncode == 0 and "siogw.checks" not in off.stderr
