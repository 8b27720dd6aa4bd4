"""Gateway worker processes on one port (ADR 0007): the pool and the worker itself.

``server.workers = N`` (N > 1) makes ``siogw serve`` the *log host* plus N - 1 workers:

* the log host (this process) opens the audit log, the rules and the operations domain,
  serves every service on the public port, and also listens, in a private runtime
  directory, on two Unix sockets: ``loghost.sock`` (records appended by the workers,
  :mod:`server.loghost`) and ``gateway.sock`` (gRPC calls the workers forward,
  :mod:`server.forward`);
* each worker is a **spawned** interpreter (never forked: PKCS#11 state must not cross
  ``fork()``) that binds the same address (gRPC sets ``SO_REUSEPORT``; the kernel spreads
  connections over the processes), opens its own database pool and its own session on
  the gateway's token, serves ``QueryService`` itself, records through the log host and
  forwards every other ``siogw.v1`` call to it. It is built by the composition root
  (:mod:`server.assembly`: ``build_gateway(worker=True)``, ``worker_listener``) like the
  log host; its gateway has no operations domain (``Gateway.ops_wiring`` is None) and,
  when the log host has one, reads the operations status of users through the store.

Failure handling:

* a worker that dies is started again by :class:`WorkerPool` (after a pause that grows
  with repeated failures, 0.5 s to 60 s; one that ran less than
  :attr:`WorkerPool.STABLE_SECONDS` counts as a failure, so a worker that crashes right
  after start is not restarted every 0.5 s for ever); its in-flight calls fail on the
  client's side, and nothing it acknowledged is lost: it answers a query only after
  the log host made the record durable;
* a worker that loses the log host (it died) fails closed at once: every call that needs
  a record gets ``UNAVAILABLE``, health goes ``NOT_SERVING``, and the worker stops (it
  also gets SIGTERM from the kernel when its parent dies). A supervisor (systemd)
  restarts the group;
* a worker whose log host *stalls* (alive, not answering) gets no answer to an append or
  health probe within ``limits.loghost_timeout_seconds``: the call fails ``UNAVAILABLE``
  and health goes ``NOT_SERVING`` until the log host answers a probe again
  (:class:`~server.loghost.RemoteAuditSink`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from grpc import aio

from server.assembly import (
    build_gateway,
    close_gateway,
    install_executor,
    transport_options,
    worker_listener,
)
from server.config import GatewayConfig
from server.files import private_dir
from server.logformat import configure_logging
from server.loghost import RemoteAuditSink
from server.metrics import process_exited
from server.tracing import setup_tracing, shutdown_tracing
from siogw_api.errors import ConfigError

log = logging.getLogger("siogw.workers")

LOGHOST_SOCKET = "loghost.sock"
GATEWAY_SOCKET = "gateway.sock"
#: A runtime directory made in the temporary directory (removed at shutdown).
TEMPORARY_RUNTIME_PREFIX = "siogw-run-"
#: Unix socket paths are limited to 108 bytes on Linux.
_SUN_PATH_MAX = 100

#: How long a worker that lost its log host goes on refusing before it stops.
LOST_LINGER_SECONDS = 1.0

#: Exit status of a worker that stopped because it lost the log host.
EXIT_LOG_HOST_LOST = 75


def runtime_dir(config: GatewayConfig) -> Path:
    """The private directory of the sockets: ``$SIOGW_HOME/run``, or a temporary one when
    that path would be too long for a Unix socket.

    ``$SIOGW_HOME/run`` is never a symbolic link, is owned by this user and 0700, and
    its parent is not writable by others (:func:`server.files.private_dir` with
    ``follow_links=False``). Temporary ones left by a log host that was killed
    (SIGKILL: no clean-up ran) are removed first (:func:`clean_stale_runtime_dirs`)."""
    path = config.home / "run"
    if len(str(path / LOGHOST_SOCKET)) > _SUN_PATH_MAX:
        clean_stale_runtime_dirs()
        return Path(tempfile.mkdtemp(prefix=TEMPORARY_RUNTIME_PREFIX))
    return private_dir(path, follow_links=False)


def clean_stale_runtime_dirs(base: Path | None = None) -> list[Path]:
    """Remove this user's temporary runtime directories whose log host is gone (nobody
    accepts on their ``loghost.sock``); the ones removed."""
    base = Path(tempfile.gettempdir()) if base is None else base
    removed: list[Path] = []
    for entry in base.glob(TEMPORARY_RUNTIME_PREFIX + "*"):
        try:
            st = entry.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue  # not ours (or a link): leave it alone
        if _listening(entry / LOGHOST_SOCKET):
            continue  # a running log host
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed:
        log.info("removed %d runtime directories left by killed log hosts", len(removed))
    return removed


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class WorkerSpec:
    """What a spawned worker needs (pickled to the child)."""

    config: GatewayConfig  # with the port the log host bound
    runtime: str
    index: int
    log_level: int


class WorkerPool:
    """Starts, watches and stops the worker processes of a log host."""

    RESTART_PAUSE: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # s, by failures
    #: A worker that ran less than this long before it exited counts as a failed start:
    #: the pause before the next start keeps growing (a worker that crashes right after
    #: it said "ready" is not restarted every 0.5 s for ever).
    STABLE_SECONDS = 30.0

    def __init__(
        self, config: GatewayConfig, runtime: Path, count: int
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.count = count
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, Any] = {}
        self._failures: dict[int, int] = {}
        self._started: dict[int, float] = {}
        #: The pauses taken before restarts (tests and logs).
        self.pauses: list[float] = []
        self._monitor: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.pid is not None]

    def _spec(self, index: int) -> WorkerSpec:
        return WorkerSpec(self.config, str(self.runtime), index,
                          logging.getLogger().getEffectiveLevel())

    async def _spawn(self, index: int, *, timeout: float = 120.0) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=worker_main, args=(self._spec(index), child_end),
            name=f"siogw-worker-{index}", daemon=False,
        )
        proc.start()
        child_end.close()
        self._procs[index] = proc
        self._started[index] = time.monotonic()
        message = await asyncio.to_thread(_wait_ready, parent_end, proc, timeout)
        parent_end.close()
        if message != "ready":
            with contextlib.suppress(Exception):
                proc.kill()
            await asyncio.to_thread(proc.join, 5)
            raise ConfigError(f"gateway worker {index} did not start", detail=message)
        log.info("gateway worker %d ready (pid %d)", index, proc.pid)

    async def start(self) -> None:
        """Spawn every worker and wait until each serves the port."""
        try:
            await asyncio.gather(*(self._spawn(i) for i in range(1, self.count + 1)))
        except BaseException:
            await self.stop(grace=0)
            raise
        self._monitor = asyncio.create_task(self._watch(), name="siogw-worker-pool")

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            for index, proc in list(self._procs.items()):
                if self._stopping or proc.is_alive():
                    continue
                if time.monotonic() - self._started.get(index, 0.0) >= self.STABLE_SECONDS:
                    self._failures[index] = 0  # it had been serving: start over
                failures = self._failures.get(index, 0)
                pause = self.RESTART_PAUSE[min(failures, len(self.RESTART_PAUSE) - 1)]
                self.pauses.append(pause)
                log.error("gateway worker %d (pid %s) exited with status %s; starting it again",
                          index, proc.pid, proc.exitcode)
                process_exited(proc.pid)  # its live metric gauges stop counting
                await asyncio.sleep(pause)
                if self._stopping:
                    return
                self._failures[index] = failures + 1  # reset once it has run STABLE_SECONDS
                try:
                    await self._spawn(index)
                    self.restarts += 1
                except Exception as exc:
                    log.error("gateway worker %d could not be started again: %s", index, exc)

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker (they drain their calls for ``grace`` s), then reap them."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        procs = list(self._procs.values())
        for proc in procs:
            if proc.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + grace + 10.0
        for proc in procs:
            await asyncio.to_thread(proc.join, max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.error("gateway worker pid %d did not stop; killing it", proc.pid)
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
        self._procs.clear()


def _wait_ready(conn: Connection, proc: Any, timeout: float) -> str:
    """The worker's first word, or why there is none.

    Waits on the pipe and the process's sentinel: it never reaps the process (only
    :class:`WorkerPool` does, from the event loop), so two threads never race in
    ``waitpid`` for one child.
    """
    ready = multiprocessing.connection.wait([conn, proc.sentinel], timeout)
    if conn in ready:
        try:
            return str(conn.recv())
        except EOFError:
            pass
    if not ready:
        return f"no word from the worker within {timeout:.0f} s"
    return "the worker exited before it was ready (see its log above)"


# --- the worker process ---------------------------------------------------------------------
def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the log host (our parent) dies, however it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def worker_main(spec: WorkerSpec, ready: Connection) -> None:
    """Entry point of a spawned worker (see the module docstring)."""
    _die_with_parent()
    configure_logging(spec.config.logging, level=spec.log_level,
                      process=f"siogw-worker-{spec.index}")
    provider = setup_tracing(spec.config)
    try:
        code = asyncio.run(_serve_worker(spec, ready))
    except Exception as exc:
        log.error("gateway worker %d failed: %s", spec.index, exc, exc_info=exc)
        with contextlib.suppress(Exception):
            ready.send(f"{type(exc).__name__}: {exc}")
        code = 1
    with contextlib.suppress(Exception):
        shutdown_tracing(provider)
    os._exit(code)  # not sys.exit: no multiprocessing clean-up dance on the way out


async def _serve_worker(spec: WorkerSpec, ready: Connection) -> int:
    """Build the worker through the composition root, serve until told to stop."""
    config = spec.config
    limits = config.limits
    runtime = Path(spec.runtime)
    loop = asyncio.get_running_loop()
    install_executor(loop, config)
    stop = asyncio.Event()
    lost: list[str] = []

    def on_lost(reason: str) -> None:
        lost.append(reason)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    sink = RemoteAuditSink(runtime / LOGHOST_SOCKET, on_lost=on_lost,
                           timeout=limits.loghost_timeout_seconds,
                           max_in_flight=limits.loghost_max_in_flight)
    await sink.connect()
    gw = await asyncio.to_thread(build_gateway, config, audit=sink, worker=True,
                                 receipts=sink.original_receipt)
    channel = aio.insecure_channel(f"unix:{runtime / GATEWAY_SOCKET}",
                                   options=transport_options(config))
    listener = worker_listener(config, gw, channel, sink.check)
    port = listener.bind(config)
    if port != config.port:
        raise ConfigError(f"worker {spec.index} cannot share {config.host}:{config.port} "
                          f"(bound {port})")
    await listener.start()
    ready.send("ready")
    ready.close()
    await stop.wait()
    if lost:
        # No record can be made any more: refuse for a moment (UNAVAILABLE, health
        # NOT_SERVING) so that calls in flight and clients get the reason, then go.
        await listener.updater.refresh()
        await asyncio.sleep(LOST_LINGER_SECONDS)
    await listener.stop(min(1.0, limits.shutdown_grace_seconds) if lost
                        else limits.shutdown_grace_seconds)
    await channel.close()
    await close_gateway(gw)
    return EXIT_LOG_HOST_LOST if lost else 0
