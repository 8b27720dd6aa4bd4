"""The gateway server: assembly, TLS, health, reflection, graceful shutdown.

``siogw serve`` runs :func:`serve`; tests use :func:`run_server`::

    async with run_server(config.with_port(0), gateway=gw) as port:
        channel = grpc.aio.secure_channel(f"localhost:{port}", creds)

The server is ``grpc.aio`` with TLS unless ``tls.enabled = false``; with
``tls.client_ca_file`` set it verifies client certificates (and requires them when
``tls.require_client_cert``). Every siogw.v1 call passes
:class:`server.interceptors.GatewayInterceptor` (error mapping, size limit, refusal
records). Health checking (``grpc.health.v1``) and server reflection are on.

Shutdown (SIGTERM/SIGINT or leaving the context): health goes NOT_SERVING, the server
stops accepting calls and drains in-flight ones for ``limits.shutdown_grace_seconds``,
then the audit log is closed (flushing pending records) and the database disposed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.admin import AdminServicer
from server.audit_service import AuditServicer
from server.auditsink import AuditLogSink, AuditSink
from server.auth import AuthServicer, Gateway, TrustMaterial
from server.config import GatewayConfig
from server.interceptors import GatewayInterceptor
from server.query import QueryServicer
from server.sms import OutboxSmsSender
from server.status import ALL_SERVICES, HealthUpdater
from server.store import Store
from server.store.certificates import DbRevocationStore
from server.workers import GATEWAY_SOCKET, TEMPORARY_RUNTIME_PREFIX
from signing.api import Signer
from siogw_api.errors import ConfigError
from siogw_api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)

log = logging.getLogger("siogw.server")

AUDIT_ORIGIN = "sio-gateway/audit"


def load_gateway_signer(config: GatewayConfig) -> Signer:
    """The gateway's signing key from ``signer.uri`` (its own SoftHSM token)."""
    if not config.signer.uri:
        raise ConfigError("signer.uri is not set: the gateway needs its own signing key")
    from signing import load_signer

    return load_signer(
        config.signer.uri,
        pin_source=config.signer.pin_source,
        certificate=str(config.signer.certificate) if config.signer.certificate else None,
    )


def default_dispatcher(store: Store) -> Any:
    """The data plane over the embedded connector (the synthetic dataset in the same DB)."""
    from server.resources import Dispatcher, EmbeddedConnector

    return Dispatcher({}, EmbeddedConnector(store.engine))


def build_gateway(
    config: GatewayConfig,
    *,
    signer: Signer | None = None,
    audit: AuditSink | None = None,
    audit_log: Any = None,
    dispatcher: Any = None,
    store: Store | None = None,
    worker: bool = False,
) -> Gateway:
    """Open the store, trust material, audit log and signer named by ``config``.

    Arguments override what the config would load (tests pass SoftHSM-backed signers and
    module-scoped stores). Without ``audit``, an ``audit.AuditLog`` is opened in
    ``config.effective_audit_dir`` signed by the gateway key. A ``worker`` process (ADR
    0007) records through ``audit`` (the log host) and leaves the dataset and the SQLite
    checkpoints to the log host.
    """
    config.home.mkdir(parents=True, exist_ok=True)
    store = store or Store(config.effective_database_url).open()
    if not worker:
        store.start_checkpointer()  # SQLite: WAL checkpoints off the query path
        store.start_housekeeper(  # old request ids, sessions, login attempts
            clock_skew_seconds=config.limits.clock_skew_seconds,
            interval=config.limits.housekeeping_seconds,
        )
    if config.seed_dataset and not worker:
        from server.resources import seed_dataset

        seed_dataset(store.engine)
    signer = signer or load_gateway_signer(config)
    if audit is None:
        if audit_log is None:
            from audit import AuditLog

            audit_log = AuditLog.open(config.effective_audit_dir, signer, AUDIT_ORIGIN)
        audit = AuditLogSink(audit_log)
    trust = TrustMaterial(config.trust.anchors, config.trust.crls, DbRevocationStore(store))
    return Gateway(
        config=config,
        store=store,
        audit=audit,
        trust=trust,
        signer=signer,
        sms=OutboxSmsSender(config.effective_sms_outbox),
        dispatcher=dispatcher if dispatcher is not None else default_dispatcher(store),
        audit_log=audit_log,
    )


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


@contextlib.asynccontextmanager
async def run_server(
    config: GatewayConfig, *, gateway: Gateway | None = None, close_gateway: bool = True
) -> AsyncIterator[int]:
    """Start the gateway; yields the bound port (``config.port == 0`` picks a free one).

    On exit: graceful stop, then (with ``close_gateway``) audit log and database closed.
    """
    gw = gateway or build_gateway(config)
    limits = config.limits
    server = aio.server(
        interceptors=[GatewayInterceptor(gw.audit, max_message_bytes=limits.max_message_bytes)],
        options=_transport_options(config),
    )
    health_servicer = health.aio.HealthServicer()
    gw.health = health_servicer
    updater = HealthUpdater(gw.store, health_servicer, limits.health_poll_seconds)
    servicers = _Servicers(
        auth=AuthServicer(gw),
        query=QueryServicer(gw),
        audit=AuditServicer(gw),
        admin=AdminServicer(gw, on_maintenance=updater.refresh),
    )
    servicers.add_to(server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(service_names(), server)

    port = bind_port(server, config)
    if port == 0:
        raise ConfigError(f"cannot bind {config.host}:{config.port}")
    for name in ALL_SERVICES:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    await updater.refresh()
    updater.start()
    group = _WorkerGroup(config.with_port(port), gw, servicers) if config.workers > 1 else None
    try:
        if group is not None:
            await group.start()
        log.info("gateway listening on %s:%d (tls=%s, processes=%d)",
                 config.host, port, config.tls.enabled, config.workers)
        yield port
    finally:
        await updater.stop()
        if group is not None:
            await group.stop_workers()
        await server.stop(limits.shutdown_grace_seconds)
        if group is not None:
            await group.close()
        if close_gateway:
            wiring = getattr(gw, "ops_wiring", None)
            if wiring is not None:
                wiring.close()  # stop the rules worker before the log it reads closes
            await gw.audit.close()
            gw.store.close()
        log.info("gateway stopped")


def service_names() -> tuple[str, ...]:
    """The services a gateway process announces through server reflection."""
    return (
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
        query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )


@dataclass(frozen=True)
class _Servicers:
    """The siogw.v1 servicers of the log host (one set, on every listener it has)."""

    auth: AuthServicer
    query: QueryServicer
    audit: AuditServicer
    admin: AdminServicer

    def add_to(self, server: aio.Server) -> None:
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self.auth, server)  # type: ignore[no-untyped-call]
        query_pb2_grpc.add_QueryServiceServicer_to_server(self.query, server)  # type: ignore[no-untyped-call]
        audit_pb2_grpc.add_AuditServiceServicer_to_server(self.audit, server)  # type: ignore[no-untyped-call]
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.admin, server)  # type: ignore[no-untyped-call]


class _WorkerGroup:
    """The log host's side of ``server.workers > 1`` (:mod:`server.workers`).

    Starts the log host socket (records from the workers go through this process's audit
    sink, so the rules see them too), the internal listener for forwarded calls (the
    same servicers; the forwarded client address is believed there only) and the
    workers, in that order; stops them in the reverse order.
    """

    def __init__(self, config: GatewayConfig, gw: Gateway, servicers: _Servicers) -> None:
        from server.workers import runtime_dir

        self.config = config
        self.gw = gw
        self.servicers = servicers
        self.runtime = runtime_dir(config)
        self.loghost: Any = None
        self.internal: aio.Server | None = None
        self.pool: Any = None

    async def start(self) -> None:
        from server.loghost import LogHostServer
        from server.workers import GATEWAY_SOCKET, LOGHOST_SOCKET, WorkerPool

        limits = self.config.limits
        self.loghost = LogHostServer(self.gw.audit, self.runtime / LOGHOST_SOCKET)
        await self.loghost.start()
        self.internal = aio.server(
            interceptors=[GatewayInterceptor(self.gw.audit,
                                             max_message_bytes=limits.max_message_bytes,
                                             trust_forwarded_peer=True)],
            options=_transport_options(self.config),
        )
        self.servicers.add_to(self.internal)
        socket_path = self.runtime / GATEWAY_SOCKET
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        if self.internal.add_insecure_port(f"unix:{socket_path}") == 0:
            raise ConfigError(f"cannot listen on {socket_path}")
        await self.internal.start()
        os.chmod(socket_path, 0o600)
        self.pool = WorkerPool(
            self.config, self.runtime, self.config.workers - 1,
            read_ops_status=getattr(self.gw, "ops", None) is not None,
        )
        await self.pool.start()

    async def stop_workers(self) -> None:
        if self.pool is not None:
            await self.pool.stop(self.config.limits.shutdown_grace_seconds)

    async def close(self) -> None:
        if self.internal is not None:
            await self.internal.stop(self.config.limits.shutdown_grace_seconds)
        if self.loghost is not None:
            await self.loghost.close()
        with contextlib.suppress(FileNotFoundError):
            (self.runtime / GATEWAY_SOCKET).unlink()
        if self.runtime.name.startswith(TEMPORARY_RUNTIME_PREFIX):  # see runtime_dir
            shutil.rmtree(self.runtime, ignore_errors=True)


def _transport_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    limits = config.limits
    return [
        ("grpc.max_receive_message_length", limits.transport_max_message_bytes),
        ("grpc.max_send_message_length", limits.transport_max_message_bytes),
    ]


def worker_threads() -> int:
    """Size of the gateway process's worker-thread pool (``asyncio.to_thread``).

    The blocking parts of a call (DB, certificate checks, resource fetches, PKCS#11
    signing) run there. Under the GIL more threads than cores mostly add contention:
    ``2 x cores`` (at least 2, at most 16) unless ``SIOGW_WORKER_THREADS`` says otherwise.
    """
    raw = os.environ.get("SIOGW_WORKER_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigError(f"SIOGW_WORKER_THREADS is not an integer: {raw!r}") from exc
        if value < 1:
            raise ConfigError("SIOGW_WORKER_THREADS must be at least 1")
        return value
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


async def serve(config: GatewayConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(worker_threads(), thread_name_prefix="siogw-worker")
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_server(config) as port:
        print(f"siogw: gateway listening on {config.host}:{port}", flush=True)
        await stop.wait()
        print("siogw: shutting down", flush=True)
