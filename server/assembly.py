"""The composition root: the one place a gateway process is built.

Every process of a gateway is assembled here and nowhere else -- the single process and
the log host (:func:`server.app.run_server`) and each worker process
(:mod:`server.workers`, ADR 0007):

1. :func:`check_can_serve` then :func:`build_gateway`: a configuration that cannot serve
   safely refuses to start -- no trust anchors (every login would fail), no signer, a
   configured CRL file that cannot be read (a missing CRL would mean "no revocation
   check"); unreadable TLS files are refused at :func:`bind_port` -- with one
   :class:`~siogw_api.errors.ConfigError`. Then the shared state
   (:class:`server.context.Gateway`), every field set once: the control-plane store
   (with its checkpointer and housekeeper, except on a worker), the gateway's signer,
   trust material, the audit log (signed by an audit key of its own, ``[audit]
   signer_uri``; each checkpoint also kept in the store), and -- where the log is an
   ``audit.AuditLog`` -- the operations domain (:func:`server.ops_wiring.open_operations`)
   with the audit sink built around the log *with the violation rules as its observer*
   (:class:`ObservedSink`). A failure of any of it is raised here, before a port is
   bound: the CLI prints it in one line and exits. Nothing is attached later.
2. :func:`log_host_listener` (the public listener of the single process / log host: all
   four ``siogw.v1`` services), :func:`internal_listener` (the log host's Unix socket for
   calls forwarded by workers) and :func:`worker_listener` (a worker: ``QueryService``
   itself, every other call forwarded): interceptors, servicers, health, reflection and
   the transport options of each.
3. :func:`install_executor`: the bounded worker-thread pool of the event loop
   (``server.worker_threads``).

Dependency direction: this module imports the servicers, the context and the wiring;
none of them imports it. :mod:`server.workers` and :mod:`server.app` call it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.engine import Connection, Engine

from audit import AuditConfig, AuditLog, SignedCheckpoint
from audit.record import AuditRecord
from server.admin import AdminServicer
from server.audit_service import AuditServicer
from server.auditsink import AuditLogSink, AuditSink, Receipt
from server.auth import AuthServicer
from server.batcher import ResultBatcher
from server.certcheck import TrustMaterial
from server.config import GatewayConfig
from server.context import Gateway, ReceiptSource
from server.crlfetch import CRLFetcher
from server.emergency_watch import EmergencyWatch
from server.files import private_dir
from server.forward import ForwardingHandler
from server.interceptors import GatewayInterceptor, refusal_limiter
from server.metrics import observe_commit, session_reopened
from server.ops.base import audit_log_recorder
from server.ops_wiring import OpsWiring, open_operations
from server.query import QueryServicer
from server.reporting.service import ReportingServicer
from server.reporting.store import iter_parties, mark_list_match
from server.resources import Dispatcher, EmbeddedConnector, seed_dataset
from server.resources.dispatch import remote_connectors
from server.screening import ScreeningService
from server.screening.match import Subject, Thresholds
from server.screening.service import SourcedSubject
from server.screening.servicer import ScreeningServicer
from server.sessioncache import SessionCache
from server.sms import OutboxSmsSender
from server.status import ALL_SERVICES, QUERY_SERVICE, HealthUpdater
from server.store import Store
from server.store.base import pool_size_for
from server.store.certificates import DbRevocationStore
from server.tracing import server_interceptors
from signing import load_signer
from signing.api import Signer
from signing.pkcs11_session import add_reopen_listener
from siogw_api.errors import ConfigError, SiogwError
from siogw_api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    screening_pb2,
    screening_pb2_grpc,
)

#: The origin line of the gateway's audit log checkpoints.
AUDIT_ORIGIN = "sio-gateway/audit"

#: The methods a worker process serves itself (every other one it forwards).
QUERY_PREFIX = f"/{QUERY_SERVICE}/"

#: An observer of the audit sink: called with each record and its seq once it is durable.
Observer = Callable[[AuditRecord, int | None], None]


# --- the shared state ----------------------------------------------------------------------
def load_gateway_signer(config: GatewayConfig) -> Signer:
    """The gateway's signing key from ``signer.uri`` (its own SoftHSM token), its PKCS#11
    session pool bounded by ``signer.sessions`` (0: the signing layer's default)."""
    if not config.signer.uri:
        raise ConfigError("signer.uri is not set: the gateway needs its own signing key")
    return load_signer(
        config.signer.uri,
        pin_source=config.signer.pin_source,
        certificate=str(config.signer.certificate) if config.signer.certificate else None,
        sessions=config.signer.sessions or None,
    )


def check_can_serve(
    config: GatewayConfig, *, signer_given: bool = False, audit_key_needed: bool = False
) -> None:
    """:class:`ConfigError` if ``config`` cannot serve safely (module docstring, 1).

    The trust anchors and CRL files themselves are read (and refused when unreadable) by
    :class:`~server.certcheck.TrustMaterial`; the signer by :func:`load_gateway_signer`.
    Checked here: that there are anchors and a signer at all, before the database or the
    audit log is touched. TLS files that are not set or cannot be read are refused when
    the listener binds (:func:`bind_port`), before anything is served.
    """
    if not config.trust.anchors:
        raise ConfigError("no trust anchors configured (trust.anchors): no login could "
                          "succeed")
    if not signer_given and not config.signer.uri:
        raise ConfigError("signer.uri is not set: the gateway needs its own signing key")
    if audit_key_needed and not config.audit.signer_uri:
        raise ConfigError("audit.signer_uri is not set: the audit log's checkpoints and "
                          "seals need an audit key of their own (not the result key)")


def load_audit_signer(config: GatewayConfig, gateway_signer: Signer | None = None) -> Signer:
    """The audit key from ``[audit] signer_uri``: signs the log's checkpoints and seals.

    Refuses (:class:`~siogw_api.errors.ConfigError`) when it is not set, and when it is
    the gateway's result key (``gateway_signer``): the key that signs query results
    answers every call online, the audit key only checkpoints; they are rotated apart.
    """
    if not config.audit.signer_uri:
        raise ConfigError("audit.signer_uri is not set: the audit log's checkpoints and "
                          "seals need an audit key of their own (not the result key)")
    signer = load_signer(config.audit.signer_uri, pin_source=config.audit.pin_source,
                         sessions=config.signer.sessions or None)
    check_audit_signer(signer, gateway_signer)
    return signer


def check_audit_signer(audit_signer: Signer, gateway_signer: Signer | None) -> None:
    """ConfigError when the audit key is the gateway's result key."""
    if gateway_signer is not None and audit_signer.key_id == gateway_signer.key_id:
        raise ConfigError("audit.signer_uri names the gateway's result key: the audit log "
                          "needs a key of its own", detail=audit_signer.key_id)


def audit_log_config(config: GatewayConfig) -> AuditConfig:
    """The audit log's settings from ``[audit]`` (the log's defaults where unset)."""
    audit = config.audit
    base = AuditConfig()
    return dataclasses.replace(
        base,
        segment_max_records=audit.segment_max_records or base.segment_max_records,
        checkpoint_interval=audit.checkpoint_interval,
        seal_max_age=audit.seal_max_age,
        immutable_seals=audit.immutable_seals,
    )


def keep_checkpoints(store: Store) -> Callable[[SignedCheckpoint], None]:
    """The audit log's ``on_checkpoint``: each signed checkpoint into ``store``'s
    ``audit_checkpoints`` table (outside the log directory)."""

    def keep(signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        store.save_checkpoint(cp.origin, cp.size, cp.root_hash, signed.note)

    return keep


def default_dispatcher(store: Store, config: GatewayConfig | None = None) -> Dispatcher:
    """The data plane: the resources of ``config.upstreams`` (``[upstreams.N]``) from their
    remote upstreams, every other one from the embedded connector (the synthetic dataset
    in the same DB). An upstream's secret or CA that cannot be read is ConfigError."""
    remote = remote_connectors(config.upstreams) if config is not None else {}
    return Dispatcher(remote, EmbeddedConnector(store.engine))


class ObservedSink:
    """An :class:`~server.auditsink.AuditSink` that tells its observers of each record.

    Built by :func:`build_gateway` around the audit log's sink with the operations
    domain's :meth:`~server.ops_wiring.OpsWiring.observe` (the violation rules): every
    holder of ``Gateway.audit`` -- the servicers, the interceptor's refusals, the log host
    socket of the workers -- records through this one object, so the rules see every
    record. An observer is called after the record is durable and must not raise (the
    rules only queue it).
    """

    def __init__(self, inner: AuditSink, observers: Sequence[Observer]) -> None:
        self.inner = inner
        self.observers = tuple(observers)

    async def record(self, record: AuditRecord) -> Receipt:
        receipt = await self.inner.record(record)
        for observe in self.observers:
            observe(record, receipt.seq)
        return receipt

    def check(self) -> None:
        self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


def build_gateway(
    config: GatewayConfig,
    *,
    signer: Signer | None = None,
    audit_signer: Signer | None = None,
    audit: AuditSink | None = None,
    audit_log: AuditLog | None = None,
    dispatcher: Dispatcher | None = None,
    store: Store | None = None,
    worker: bool = False,
    clock: Callable[[], Any] | None = None,
    receipts: ReceiptSource | None = None,
) -> Gateway:
    """The :class:`Gateway` named by ``config``, every field set (module docstring, 1).

    Arguments replace what the config would load (tests pass SoftHSM-backed signers,
    module-scoped stores, an opened ``audit_log``). Without ``audit`` or ``audit_log``,
    an ``audit.AuditLog`` is opened in ``config.effective_audit_dir`` signed by the
    audit key (``audit_signer``, else ``[audit] signer_uri``; never the gateway's result
    key), each checkpoint it signs kept in the store (:func:`keep_checkpoints`). With an
    ``AuditLog`` (and no ``audit``), the operations domain is opened over it and the sink
    is an :class:`ObservedSink` feeding its rules; with only ``audit`` (a development
    sink, or a worker's link to the log host) the gateway has no operations domain. A
    ``worker`` process (ADR 0007) leaves the dataset, the SQLite checkpoints and
    housekeeping to the log host; it reads user status, certificates and maintenance
    from the same tables as the log host (one home for each fact, ADR 0008). ``clock``
    replaces the wall clock of the operations services (tests).

    Raises :class:`~siogw_api.errors.ConfigError` (or another
    :class:`~siogw_api.errors.SiogwError`) when something cannot be opened; what this
    call opened itself is closed again first.
    """
    if audit is not None and audit_log is not None:
        raise ConfigError("build_gateway takes the audit log or a sink, not both")
    check_can_serve(config, signer_given=signer is not None,
                    audit_key_needed=audit is None and audit_log is None and audit_signer is None)
    # [upstreams]: their secrets and CAs are read before anything is opened or created
    upstreams = remote_connectors(config.upstreams) if dispatcher is None else {}
    private_dir(config.home)
    add_reopen_listener(session_reopened)  # siogw_pkcs11_session_reopens_total
    own_store = store is None
    store = store or Store(config.effective_database_url,
                           pool_size=pool_size_for(config.effective_worker_threads)).open()
    own_log = False
    trust: TrustMaterial | None = None
    try:
        # the trust anchors and CRL files are read first: a file that cannot be read
        # refuses the start before any token is opened
        trust = TrustMaterial(config.trust.anchors, config.trust.crls, DbRevocationStore(store),
                              **crl_fetching(config))
        if not worker:
            store.start_checkpointer()  # SQLite: WAL checkpoints off the query path
            store.start_housekeeper(  # old request ids, sessions, login attempts
                clock_skew_seconds=config.limits.clock_skew_seconds,
                interval=config.limits.housekeeping_seconds,
            )
            if config.seed_dataset:
                seed_dataset(store.engine)
        signer = signer or load_gateway_signer(config)
        if audit is None and audit_log is None:
            if audit_signer is None:
                audit_signer = load_audit_signer(config, signer)
            check_audit_signer(audit_signer, signer)
            audit_log = AuditLog.open(config.effective_audit_dir, audit_signer, AUDIT_ORIGIN,
                                      audit_log_config(config),
                                      witness_dir=config.audit.witness_dir,
                                      on_checkpoint=keep_checkpoints(store),
                                      on_commit=observe_commit)
            own_log = True
        if dispatcher is None:
            dispatcher = Dispatcher(upstreams, EmbeddedConnector(store.engine))
        wiring: OpsWiring | None = None
        if audit is None:
            assert audit_log is not None
            wiring = _open_operations(config, store, trust, audit_log, clock)
            audit = ObservedSink(AuditLogSink(audit_log), observers=(wiring.observe,))
        if trust.crl_fetcher is not None and audit_log is not None:
            # record first: a CRL update is in the audit log before it applies
            trust.crl_fetcher.on_event = _crl_recorder(audit_log)
        trust.start()  # refresh the CRLs of distribution points in the background
    except BaseException:
        if trust is not None:
            trust.close()
        if own_log and audit_log is not None:
            audit_log.close()
        if own_store:
            store.close()
        raise
    dispatcher = dispatcher if dispatcher is not None else default_dispatcher(store)
    assert trust is not None
    return Gateway(
        config=config,
        store=store,
        audit=audit,
        trust=trust,
        signer=signer,
        sms=OutboxSmsSender(config.effective_sms_outbox),
        dispatcher=dispatcher,
        audit_log=audit_log,
        ops_wiring=wiring,
        screening=None if worker else screening_service(config, store, audit_log),
        emergencies=_watch_emergencies(config, wiring, audit_log, dispatcher, trust),
        receipts=receipts,
        result_batcher=result_batcher(config, signer),
        session_cache=(SessionCache(config.limits.session_cache_entries)
                       if config.limits.session_cache_entries > 0 else None),
    )


def result_batcher(config: GatewayConfig, signer: Signer | None) -> ResultBatcher | None:
    """The batch signer of results when ``[signer] batch_window_ms`` is above 0 (ADR
    0011), else None (one token signature per result)."""
    if signer is None or config.signer.batch_window_ms <= 0:
        return None
    return ResultBatcher(signer, window_ms=config.signer.batch_window_ms,
                         max_batch=config.signer.batch_max,
                         idle_sign=config.signer.batch_idle_sign)


def _crl_recorder(audit_log: AuditLog) -> Callable[[str, dict[str, object]], None]:
    """The CRL fetcher's ``on_event``: ``crl.updated`` / ``crl.refused`` records appended
    (blocking, from the fetching thread) to the audit log, actor ``system:crl``."""
    def record(event: str, details: dict[str, object]) -> None:
        audit_log.append_sync(AuditRecord(
            actor="system:crl", event=event,
            outcome="success" if event == "crl.updated" else "refused",
            details=dict(details)))

    return record


def crl_fetching(config: GatewayConfig) -> dict[str, Any]:
    """The :class:`TrustMaterial` arguments of ``[crl]``: a fetcher of the CRLs named by
    distribution points (:mod:`server.crlfetch`; None when ``enabled = false``) and the
    grace past nextUpdate."""
    crl = config.crl
    grace = datetime.timedelta(seconds=crl.grace)
    if not crl.enabled:
        return {"crl_fetcher": None, "crl_grace": grace}
    fetcher = CRLFetcher(config.effective_crl_cache_dir, timeout=crl.timeout,
                         attempts=crl.attempts, refresh_margin=crl.refresh_margin,
                         retry_seconds=crl.retry_seconds, grace=crl.grace,
                         max_bytes=crl.max_bytes)
    return {"crl_fetcher": fetcher, "crl_grace": grace}


def screening_service(config: GatewayConfig, store: Store,
                      audit_log: AuditLog | None) -> ScreeningService:
    """The List and the Lists (issue 16, point 6) over the store, its thresholds and
    retention from ``[screening]``, its effects recorded in ``audit_log`` (if any)."""
    settings = config.screening
    service = ScreeningService(
        store.engine,
        thresholds=Thresholds(match=settings.match_threshold,
                              possible=settings.possible_threshold),
        retention_years=settings.retention_years,
        record=audit_log_recorder(audit_log) if audit_log is not None else None,
    )
    service.register_subject_source(lambda: fm1_parties(store.engine))
    return service


def fm1_parties(engine: Engine) -> Iterator[SourcedSubject]:
    """Every party of every stored FM-1 message as a subject to re-screen when a list
    changes (S§30); a new match flags its message (``list_match``) for the analysts."""
    for provider_bin, party in iter_parties(engine):
        def flag(conn: Connection, provider_bin: str = provider_bin,
                 message_id: str = party.message_id) -> bool:
            return mark_list_match(conn, provider_bin, message_id)

        yield SourcedSubject(
            provider=provider_bin, client_ref=f"fm1:{party.message_id}:{party.role}",
            subject=Subject(iin_bin=party.idn or "", name=party.name,
                            birth_date=party.birth_date.isoformat() if party.birth_date
                            else ""),
            on_match=flag, registered_by=party.submitted_by)


def _watch_emergencies(
    config: GatewayConfig, wiring: OpsWiring | None, audit_log: AuditLog | None,
    dispatcher: Dispatcher, trust: TrustMaterial | None = None,
) -> EmergencyWatch | None:
    """The Journal of emergencies' own entries (§14, :mod:`server.emergency_watch`):
    the audit log polled, the upstreams' breakers hooked; started here, stopped by
    :func:`close_gateway`. Only with the operations domain (its database holds them)."""
    if wiring is None:
        return None
    watch = EmergencyWatch(wiring.ops.auto_journal,
                           audit_health=audit_log.health if audit_log is not None else None,
                           poll_seconds=config.limits.health_poll_seconds)
    if trust is not None and trust.crl_fetcher is not None:
        trust.crl_fetcher.on_stale = watch.crl_changed
    breakers = getattr(dispatcher, "breakers", None)  # a test's stand-in may have none
    for breaker in breakers() if callable(breakers) else ():
        breaker.on_state_change = watch.breaker_changed
    watch.start()
    return watch


def _open_operations(
    config: GatewayConfig,
    store: Store,
    trust: TrustMaterial,
    audit_log: AuditLog,
    clock: Callable[[], Any] | None,
) -> OpsWiring:
    try:
        return open_operations(store, trust, audit_log,
                               clock_skew_seconds=config.limits.clock_skew_seconds,
                               clock=clock,
                               maintenance_notice_hours=config.limits.maintenance_notice_hours)
    except SiogwError as exc:
        raise ConfigError(f"the operations domain cannot start: {exc.diagnostics()}") from exc


async def close_gateway(gw: Gateway) -> None:
    """Close what :func:`build_gateway` opened: the rules worker first (it reads the
    log), then the audit sink (flushing pending records), then the database."""
    if gw.emergencies is not None:
        await asyncio.to_thread(gw.emergencies.stop)
    close_trust = getattr(gw.trust, "close", None)  # a test may have put in a stand-in
    if close_trust is not None:
        await asyncio.to_thread(close_trust)  # the CRL refresher
    if gw.ops_wiring is not None:
        gw.ops_wiring.close()
    aclose = getattr(gw.dispatcher, "aclose", None)  # a test may have put in a stand-in
    if aclose is not None:
        await aclose()  # the upstreams' connection pools
    if gw.result_batcher is not None:
        await gw.result_batcher.aclose()  # after the listener's grace: nothing waits on it
    await gw.audit.close()
    gw.store.close()


# --- listeners -----------------------------------------------------------------------------
def transport_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """The gRPC options of the forwarding channel (worker -> log host): it sends requests
    of at most the servers' receive limit and receives answers up to
    ``limits.transport_max_message_bytes``."""
    limits = config.limits
    return [
        ("grpc.max_receive_message_length", limits.transport_max_message_bytes),
        ("grpc.max_send_message_length", limits.transport_receive_bytes),
    ]


def server_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """The gRPC options of every server: requests capped at the application's limit plus
    the framing overhead (``Limits.transport_receive_bytes``), answers at
    ``limits.transport_max_message_bytes``."""
    limits = config.limits
    return [
        ("grpc.max_receive_message_length", limits.transport_receive_bytes),
        ("grpc.max_send_message_length", limits.transport_max_message_bytes),
    ]


def grpc_server(config: GatewayConfig, interceptor: GatewayInterceptor) -> aio.Server:
    """A gRPC server with the transport limits and the concurrency cap of ``config``
    (``limits.max_concurrent_rpcs``: calls beyond it get RESOURCE_EXHAUSTED from gRPC
    before anything is read)."""
    return aio.server(interceptors=[*server_interceptors(config), interceptor],
                      options=server_options(config),
                      maximum_concurrent_rpcs=config.limits.max_concurrent_rpcs)


def bind_port(server: aio.Server, config: GatewayConfig) -> int:
    """Add the configured address to ``server`` (TLS unless off); the port bound, 0 if
    none (gRPC sets ``SO_REUSEPORT``, so worker processes bind the same one)."""
    address = f"{config.host}:{config.port}"
    if config.tls.enabled:
        return int(server.add_secure_port(address, _server_credentials(config)))
    return int(server.add_insecure_port(address))


def _server_credentials(config: GatewayConfig) -> grpc.ServerCredentials:
    tls = config.tls
    if tls.cert_file is None or tls.key_file is None:
        raise ConfigError("TLS is on but tls.cert_file / tls.key_file are not set")
    try:
        cert = tls.cert_file.read_bytes()
        key = tls.key_file.read_bytes()
        client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    except OSError as exc:
        raise ConfigError("cannot read TLS files", detail=str(exc)) from exc
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=bool(client_ca) and tls.require_client_cert,
    )


def service_names() -> tuple[str, ...]:
    """The services a gateway process announces through server reflection."""
    return (
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
        query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
        reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name,
        screening_pb2.DESCRIPTOR.services_by_name["ScreeningService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )


@dataclass(frozen=True)
class Servicers:
    """The siogw.v1 servicers of the log host (one set, on every listener it has)."""

    auth: AuthServicer
    query: QueryServicer
    audit: AuditServicer
    admin: AdminServicer
    reporting: ReportingServicer | None = None
    #: The List and the Lists (None where the gateway has no screening service).
    screening: ScreeningServicer | None = None

    def add_to(self, server: aio.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self.auth, server)  # type: ignore[no-untyped-call]
        query_pb2_grpc.add_QueryServiceServicer_to_server(self.query, server)  # type: ignore[no-untyped-call]
        audit_pb2_grpc.add_AuditServiceServicer_to_server(self.audit, server)  # type: ignore[no-untyped-call]
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.admin, server)  # type: ignore[no-untyped-call]
        if self.reporting is not None:
            reporting_pb2_grpc.add_ReportingServiceServicer_to_server(  # type: ignore[no-untyped-call]
                self.reporting, server)
        if self.screening is not None:
            screening_pb2_grpc.add_ScreeningServiceServicer_to_server(  # type: ignore[no-untyped-call]
                self.screening, server)


@dataclass(frozen=True)
class Listener:
    """A public gRPC server of one process, with its health service kept in step with
    the maintenance windows (and, on a worker, with its link to the log host)."""

    server: aio.Server
    health: health.aio.HealthServicer
    updater: HealthUpdater
    #: The siogw.v1 servicers (the log host's); None on a worker.
    servicers: Servicers | None
    #: The interceptor of every siogw.v1 call (its refusal summaries are flushed at stop).
    interceptor: GatewayInterceptor

    async def stop(self, grace: float) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds), then record the summaries
        of unauthenticated refusals of windows still open."""
        await self.updater.stop()
        await self.server.stop(grace)
        await self.interceptor.flush_summaries()

    def bind(self, config: GatewayConfig) -> int:
        """Bind the configured address; the port bound (0: none)."""
        return bind_port(self.server, config)

    async def start(self) -> None:
        """Report SERVING, start serving, then follow the maintenance windows."""
        for name in ALL_SERVICES:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        await self.updater.refresh()
        self.updater.start()


def _with_health(
    server: aio.Server,
    config: GatewayConfig,
    gw: Gateway,
    audit_check: Callable[[], None] | None = None,
) -> tuple[health.aio.HealthServicer, HealthUpdater]:
    health_servicer = health.aio.HealthServicer()
    updater = HealthUpdater(gw.store, health_servicer, config.limits.health_poll_seconds,
                            audit_check=audit_check, trust_check=gw.trust.check_crls_current,
                            upstream_check=_health_of(
                                # siogw.upstream.N (a stand-in dispatcher may have none)
                                getattr(gw.dispatcher, "upstream_health", None),
                                # siogw.crl.<issuer>: each issuer whose CRL is fetched
                                getattr(gw.trust, "crl_health", None)))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(service_names(), server)
    return health_servicer, updater


def _health_of(
    *checks: Callable[[], Mapping[str, bool]] | None,
) -> Callable[[], Mapping[str, bool]]:
    """One ``{health service: serving}`` check of several (those that are not None)."""
    present = [c for c in checks if c is not None]

    def merged() -> Mapping[str, bool]:
        out: dict[str, bool] = {}
        for check in present:
            out.update(check())
        return out

    return merged


def log_host_listener(config: GatewayConfig, gw: Gateway) -> Listener:
    """The public listener of the single process or the log host: every service."""
    interceptor = GatewayInterceptor(gw.audit, max_message_bytes=config.limits.max_message_bytes,
                                     limiter=refusal_limiter(config))
    server = grpc_server(config, interceptor)
    health_servicer, updater = _with_health(server, config, gw)
    audit = AuditServicer(gw)
    servicers = Servicers(
        auth=AuthServicer(gw),
        query=QueryServicer(gw),
        audit=audit,
        admin=AdminServicer(gw, on_maintenance=updater.refresh),
        reporting=ReportingServicer(gw, audit),
        screening=(ScreeningServicer(gw, gw.screening) if gw.screening is not None
                   else None),
    )
    servicers.add_to(server)
    return Listener(server, health_servicer, updater, servicers, interceptor)


def internal_listener(config: GatewayConfig, gw: Gateway, servicers: Servicers) -> aio.Server:
    """The log host's listener for calls the workers forward (the same servicers; the
    forwarded client address is believed here only). The caller adds the socket."""
    server = grpc_server(config, GatewayInterceptor(
        gw.audit, max_message_bytes=config.limits.max_message_bytes,
        trust_forwarded_peer=True, limiter=refusal_limiter(config)))
    servicers.add_to(server)
    return server


def worker_listener(
    config: GatewayConfig, gw: Gateway, forward_to: aio.Channel,
    audit_check: Callable[[], None],
) -> Listener:
    """A worker's public listener: ``QueryService`` served here, every other siogw.v1
    call forwarded over ``forward_to`` (the log host's internal listener)."""
    interceptor = GatewayInterceptor(gw.audit, max_message_bytes=config.limits.max_message_bytes,
                                     only_prefixes=(QUERY_PREFIX,),
                                     limiter=refusal_limiter(config))
    server = grpc_server(config, interceptor)
    query_pb2_grpc.add_QueryServiceServicer_to_server(  # type: ignore[no-untyped-call]
        QueryServicer(gw), server
    )
    health_servicer, updater = _with_health(server, config, gw, audit_check)
    server.add_generic_rpc_handlers((ForwardingHandler(forward_to),))
    return Listener(server, health_servicer, updater, None, interceptor)


# --- threads -------------------------------------------------------------------------------
def install_executor(loop: asyncio.AbstractEventLoop, config: GatewayConfig) -> None:
    """Bound the loop's default executor (``asyncio.to_thread``) to
    ``config.effective_worker_threads`` threads: the blocking parts of a call (DB,
    certificate checks, resource fetches, PKCS#11 signing) run there."""
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
        config.effective_worker_threads, thread_name_prefix="siogw-worker"))
