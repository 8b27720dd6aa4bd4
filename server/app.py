"""The gateway server: running it, the worker group, graceful shutdown.

``siogw serve`` runs :func:`serve`; tests use :func:`run_server`::

    async with run_server(config.with_port(0), gateway=gw) as port:
        channel = grpc.aio.secure_channel(f"localhost:{port}", creds)

Everything is built by the composition root, :mod:`server.assembly` (the gateway, its
listeners, the thread pool); this module starts and stops what it builds. The server is
``grpc.aio`` with TLS unless ``tls.enabled = false``; with ``tls.client_ca_file`` set it
verifies client certificates (and requires them when ``tls.require_client_cert``). Every
siogw.v1 call passes :class:`server.interceptors.GatewayInterceptor` (error mapping, size
limit, refusal records). Health checking (``grpc.health.v1``) and server reflection are
on. With ``server.workers > 1`` this process is the log host of a :class:`_WorkerGroup`
(ADR 0007, :mod:`server.workers`).

A start-up failure (the gateway, the operations domain, the port) raises a
:class:`~siogw_api.errors.SiogwError` out of :func:`run_server` before anything is served.

Shutdown (SIGTERM/SIGINT or leaving the context): health goes NOT_SERVING, the server
stops accepting calls and drains in-flight ones for ``limits.shutdown_grace_seconds``,
then the rules worker stops, the audit log is closed (flushing pending records) and the
database disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator

from grpc import aio

from server.assembly import (
    Servicers,
    build_gateway,
    close_gateway,
    install_executor,
    internal_listener,
    log_host_listener,
)
from server.config import GatewayConfig
from server.context import Gateway
from server.loghost import LogHostServer
from server.metrics import start_metrics
from server.query import original_receipt
from server.tracing import setup_tracing, shutdown_tracing
from server.workers import (
    GATEWAY_SOCKET,
    LOGHOST_SOCKET,
    TEMPORARY_RUNTIME_PREFIX,
    WorkerPool,
    runtime_dir,
)
from siogw_api.errors import ConfigError

log = logging.getLogger("siogw.server")


@contextlib.asynccontextmanager
async def run_server(
    config: GatewayConfig, *, gateway: Gateway | None = None, close_gateway_on_exit: bool = True
) -> AsyncIterator[int]:
    """Start the gateway; yields the bound port (``config.port == 0`` picks a free one).

    Without ``gateway``, :func:`server.assembly.build_gateway` builds it from ``config``.
    On exit: graceful stop, then (with ``close_gateway_on_exit``) the gateway is closed
    (:func:`server.assembly.close_gateway`).
    """
    gw = gateway or build_gateway(config)
    try:
        listener = log_host_listener(config, gw)
        port = listener.bind(config)
        if port == 0:
            raise ConfigError(f"cannot bind {config.host}:{config.port}")
    except BaseException:
        if gateway is None:
            await close_gateway(gw)
        raise
    await listener.start()
    assert listener.servicers is not None
    group = (_WorkerGroup(config.with_port(port), gw, listener.servicers)
             if config.workers > 1 else None)
    metrics = None
    try:
        if group is not None:
            await group.start()
        metrics = start_metrics(config, gw)  # [metrics] port: its own HTTP listener
        log.info("gateway listening on %s:%d (tls=%s, processes=%d)",
                 config.host, port, config.tls.enabled, config.workers)
        yield port
    finally:
        if metrics is not None:
            metrics.close()
        await listener.updater.stop()
        if group is not None:
            await group.stop_workers()
        await listener.stop(config.limits.shutdown_grace_seconds)
        if group is not None:
            await group.close()
        if close_gateway_on_exit:
            await close_gateway(gw)
        log.info("gateway stopped")


class _WorkerGroup:
    """The log host's side of ``server.workers > 1`` (:mod:`server.workers`).

    Starts the log host socket (records from the workers go through this process's audit
    sink, so the rules see them too), the internal listener for forwarded calls (the
    same servicers; the forwarded client address is believed there only) and the
    workers, in that order; stops them in the reverse order.
    """

    def __init__(self, config: GatewayConfig, gw: Gateway, servicers: Servicers) -> None:
        self.config = config
        self.gw = gw
        self.servicers = servicers
        self.runtime = runtime_dir(config)
        self.loghost: LogHostServer | None = None
        self.internal: aio.Server | None = None
        self.pool: WorkerPool | None = None

    async def start(self) -> None:
        limits = self.config.limits
        self.loghost = LogHostServer(
            self.gw.audit, self.runtime / LOGHOST_SOCKET,
            timeout=limits.loghost_timeout_seconds,
            max_connections=limits.loghost_max_connections,
            max_in_flight=limits.loghost_max_in_flight,
            receipts=lambda request_id, user_id: original_receipt(self.gw, request_id,
                                                                  user_id))
        await self.loghost.start()
        self.internal = internal_listener(self.config, self.gw, self.servicers)
        socket_path = self.runtime / GATEWAY_SOCKET
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        if self.internal.add_insecure_port(f"unix:{socket_path}") == 0:
            raise ConfigError(f"cannot listen on {socket_path}")
        await self.internal.start()
        os.chmod(socket_path, 0o600)
        self.pool = WorkerPool(self.config, self.runtime, self.config.workers - 1)
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


async def serve(config: GatewayConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    install_executor(loop, config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    provider = setup_tracing(config)
    try:
        async with run_server(config) as port:
            print(f"siogw: gateway listening on {config.host}:{port}", flush=True)
            await stop.wait()
            print("siogw: shutting down", flush=True)
    finally:
        shutdown_tracing(provider)
