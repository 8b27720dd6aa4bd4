"""Prometheus metrics of the gateway (issue 17, point 1): ``prometheus-client``.

Off by default. With ``[metrics] port`` set, ``siogw serve`` serves
``http://HOST:PORT/metrics`` (``[metrics] host``, default 127.0.0.1) on a listener of its
own -- an HTTP server thread of the log host, never the gRPC port.

**Several processes** (``--workers N``, ADR 0007). prometheus-client's multi-process mode:
``siogw serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a private directory
(``$SIOGW_HOME/run/metrics``, 0700, emptied at every start;
:func:`server.cli.prepare_metrics_dir`) *before* the library is imported, and the
spawned workers inherit it. Each process writes its samples into its
own memory-mapped files there; the log host's ``/metrics`` adds them up
(``MultiProcessCollector``). A worker that exits is marked dead
(:func:`process_exited`), so its live gauges stop counting.

**What is measured, and where** (every name begins ``siogw_``):

* per call, in :class:`server.interceptors.GatewayInterceptor` (every process):
  ``grpc_calls_total{service,method,code}``, ``grpc_call_seconds{service,method}``,
  ``refusals_total{reason}`` (the ErrorInfo reason);
* the query path (:mod:`server.query`, every process): ``replay_claims_total{outcome}``,
  ``upstream_calls_total{resource,outcome}``, ``upstream_breaker_state{resource}``
  (0 closed, 1 half-open, 2 open; the worst of the processes),
  ``signer_operations_total{key,outcome}``, ``signer_seconds{key}``,
  ``signer_errors_total{key}``;
* the PKCS#11 layer: ``pkcs11_session_reopens_total{token}``
  (:func:`signing.pkcs11_session.add_reopen_listener`);
* the audit log (the log host; :class:`audit.log.AuditLog`'s ``on_commit``):
  ``audit_records_appended_total``, ``audit_group_commit_records``,
  ``audit_fsync_seconds``; and read when scraped (:class:`Refresher`):
  ``audit_queue_depth``, ``audit_checkpoint_age_seconds``, ``audit_seal_age_seconds``,
  ``audit_log_state{state}`` (1 for the current one of ok, degraded, failed, closed);
  ``sessions_live``; ``crl_age_seconds{issuer}``, ``crl_next_update_seconds{issuer}``
  (seconds until nextUpdate; negative: stale); ``upstream_breaker_state`` again;
* the violation rules (:mod:`server.ops.rules`): ``rule_alerts_total{rule}``.

The instruments are module-level objects; a call touches a counter child bound once per
method (no allocation per call beyond the library's lock and float add).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from server.config import GatewayConfig
from siogw_api.errors import ConfigError
from siogw_api.timeutil import now_utc

log = logging.getLogger("siogw.metrics")

#: The environment variable of prometheus-client's multi-process mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0)

# --- calls ---------------------------------------------------------------------------------
CALLS = Counter("siogw_grpc_calls", "gRPC calls served, by service, method and status code",
                ["service", "method", "code"])
CALL_SECONDS = Histogram("siogw_grpc_call_seconds", "gRPC call latency (seconds)",
                         ["service", "method"], buckets=_LATENCY_BUCKETS)
REFUSALS = Counter("siogw_refusals", "refused calls by ErrorInfo reason", ["reason"])
SESSIONS_LIVE = Gauge("siogw_sessions_live", "sessions neither ended nor expired",
                      multiprocess_mode="livemax")

# --- audit log -----------------------------------------------------------------------------
AUDIT_RECORDS = Counter("siogw_audit_records_appended", "records appended (durable)")
AUDIT_BATCH = Histogram("siogw_audit_group_commit_records", "records per write + fsync",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
AUDIT_FSYNC = Histogram("siogw_audit_fsync_seconds", "fsync of a group commit (seconds)",
                        buckets=_LATENCY_BUCKETS)
AUDIT_QUEUE = Gauge("siogw_audit_queue_depth", "appends waiting for the writer",
                    multiprocess_mode="livemax")
AUDIT_CHECKPOINT_AGE = Gauge("siogw_audit_checkpoint_age_seconds",
                             "seconds since the last signed checkpoint",
                             multiprocess_mode="livemax")
AUDIT_SEAL_AGE = Gauge("siogw_audit_seal_age_seconds", "seconds since the last seal "
                       "(since the start when none was made by this process)",
                       multiprocess_mode="livemax")
AUDIT_STATE = Gauge("siogw_audit_log_state", "1 for the audit log's current state "
                    "(ok, degraded, failed = failed closed, closed)", ["state"],
                    multiprocess_mode="livemax")
AUDIT_STATES = ("ok", "degraded", "failed", "closed")

# --- signing -------------------------------------------------------------------------------
SIGNER_OPS = Counter("siogw_signer_operations", "signatures by key and outcome",
                     ["key", "outcome"])
SIGNER_SECONDS = Histogram("siogw_signer_seconds", "signature latency (seconds)", ["key"],
                           buckets=_LATENCY_BUCKETS)
SIGNER_ERRORS = Counter("siogw_signer_errors", "failed signatures by key", ["key"])
PKCS11_REOPENS = Counter("siogw_pkcs11_session_reopens", "PKCS#11 sessions re-opened after "
                         "a failure, by token", ["token"])

# --- data plane ----------------------------------------------------------------------------
UPSTREAM_CALLS = Counter("siogw_upstream_calls", "resource fetches by resource and outcome "
                         "(ok, unavailable, error)", ["resource", "outcome"])
BREAKER_STATE = Gauge("siogw_upstream_breaker_state", "circuit breaker of a remote upstream: "
                      "0 closed, 1 half-open, 2 open", ["resource"],
                      multiprocess_mode="livemax")
BREAKER_VALUES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# --- trust, replay, rules ------------------------------------------------------------------
CRL_AGE = Gauge("siogw_crl_age_seconds", "seconds since a CRL's thisUpdate", ["issuer"],
                multiprocess_mode="livemax")
CRL_NEXT_UPDATE = Gauge("siogw_crl_next_update_seconds", "seconds until a CRL's nextUpdate "
                        "(negative: stale)", ["issuer"], multiprocess_mode="livemin")
REPLAY_CLAIMS = Counter("siogw_replay_claims", "request ids claimed (claimed) or refused as "
                        "replays (replayed)", ["outcome"])
REPLAY_CLAIMED = REPLAY_CLAIMS.labels("claimed")
REPLAY_REFUSED = REPLAY_CLAIMS.labels("replayed")
RULE_ALERTS = Counter("siogw_rule_alerts", "violation alerts raised, by rule", ["rule"])

_STARTED = time.time()


def split_method(method: str) -> tuple[str, str]:
    """``/siogw.v1.QueryService/Query`` -> ``("siogw.v1.QueryService", "Query")``."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def observe_commit(records: int, fsync_seconds: float) -> None:
    """The audit log's ``on_commit``: one group commit made durable."""
    AUDIT_RECORDS.inc(records)
    AUDIT_BATCH.observe(records)
    AUDIT_FSYNC.observe(fsync_seconds)


def session_reopened(token: str) -> None:
    """A PKCS#11 session pool healed (its sessions re-opened)."""
    PKCS11_REOPENS.labels(token).inc()


_upstream: dict[tuple[int, str], Any] = {}


def upstream_call(resource: int, outcome: str) -> None:
    """One fetch of ``resource`` ended with ``outcome`` (ok, unavailable, error)."""
    child = _upstream.get((resource, outcome))
    if child is None:
        child = _upstream.setdefault((resource, outcome),
                                     UPSTREAM_CALLS.labels(str(resource), outcome))
    child.inc()


def breaker_state(resource: int, state: Any) -> None:
    """Set the breaker gauge of ``resource`` from a :class:`BreakerState` (or name)."""
    value = BREAKER_VALUES.get(str(getattr(state, "value", state)).lower())
    if value is not None:
        BREAKER_STATE.labels(str(resource)).set(value)


class _Signing:
    """Counts and times the signatures of one key (see :func:`signing`)."""

    __slots__ = ("error", "errors", "ok", "seconds", "started")

    def __init__(self, key: str) -> None:
        self.ok = SIGNER_OPS.labels(key, "ok")
        self.error = SIGNER_OPS.labels(key, "error")
        self.errors = SIGNER_ERRORS.labels(key)
        self.seconds = SIGNER_SECONDS.labels(key)
        self.started = 0.0


_signers: dict[str, _Signing] = {}


class signing:
    """``with signing(key_id):`` counts and times one signature by the key (an error
    counts and propagates). The key's children are bound once."""

    __slots__ = ("_of", "_started")

    def __init__(self, key: str) -> None:
        of = _signers.get(key)
        if of is None:
            of = _signers.setdefault(key, _Signing(key))
        self._of = of
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        of = self._of
        if kind is not None:
            of.error.inc()
            of.errors.inc()
            return
        of.seconds.observe(time.perf_counter() - self._started)
        of.ok.inc()


# --- what is read when scraped -------------------------------------------------------------
class Refresher(Collector):
    """Registered first on the scrape registry: sets the gauges read from the live
    gateway (log host) before the samples are collected; yields nothing itself."""

    def __init__(self, gateway: Any) -> None:
        self.gw = gateway
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            try:
                refresh(self.gw)
            except Exception as exc:  # a scrape never breaks the gateway
                log.warning("metrics: could not read the gateway's state: %s", exc)
        return []


def refresh(gw: Any) -> None:
    """Set the read-when-scraped gauges from ``gw`` (a :class:`server.context.Gateway`)."""
    now = time.time()
    audit_log = getattr(gw, "audit_log", None)
    if audit_log is not None:
        health = audit_log.health()
        for state in AUDIT_STATES:
            AUDIT_STATE.labels(state).set(1 if health.state == state else 0)
        AUDIT_QUEUE.set(audit_log.queue_depth)
        times = audit_log.publication_times
        AUDIT_CHECKPOINT_AGE.set(now - (times[0] or _STARTED))
        AUDIT_SEAL_AGE.set(now - (times[1] or _STARTED))
    SESSIONS_LIVE.set(gw.store.live_sessions(now_utc()))
    for issuer, this_update, next_update in gw.trust.crl_validity():
        CRL_AGE.labels(issuer).set(now - this_update.timestamp())
        CRL_NEXT_UPDATE.labels(issuer).set(
            (next_update.timestamp() - now) if next_update is not None else 0.0)
    states = getattr(gw.dispatcher, "breaker_states", None)  # a test's stand-in: none
    for number, state in (states() if callable(states) else {}).items():
        breaker_state(number, state)


# --- the listener ----------------------------------------------------------------------------
def process_exited(pid: int) -> None:
    """A worker process is gone: its live gauges no longer count."""
    if os.environ.get(MULTIPROC_ENV):
        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Delegate(Collector):
    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Metric]:
        return self.inner.collect()


def scrape_registry(gw: Any) -> CollectorRegistry:
    """The registry ``/metrics`` serves: the refresher first, then every process's samples
    (multi-process mode) or this process's registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Refresher(gw))
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Delegate(REGISTRY))
    return registry


class MetricsServer:
    """The ``/metrics`` HTTP listener (a daemon thread of this process)."""

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self.httpd = httpd
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def start_metrics(config: GatewayConfig, gw: Any,
                  listen: Callable[..., Any] = start_http_server) -> MetricsServer | None:
    """Serve ``/metrics`` on ``[metrics] host:port`` (None when metrics are off)."""
    if not config.metrics.port:
        return None
    try:
        httpd, thread = listen(config.metrics.port, addr=config.metrics.host,
                               registry=scrape_registry(gw))
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {config.metrics.host}:"
                          f"{config.metrics.port}", detail=str(exc)) from exc
    server = MetricsServer(httpd, thread)
    log.info("metrics on http://%s:%d/metrics", config.metrics.host, server.port)
    return server
