"""Issue 14, findings 9, 11 and 12: bounded concurrency, timeouts between the processes,
safe runtime directories.

Real components: a real gRPC server built by :func:`server.assembly.grpc_server`, a real
:class:`~server.loghost.LogHostServer` (in-process, or a separate process that is
stopped with SIGSTOP), real spawned processes for the restart backoff, a real file size
limit (``RLIMIT_FSIZE``) for the interrupted export.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from audit.errors import AuditUnavailable
from audit.record import AuditRecord
from server.assembly import grpc_server, server_options
from server.auditsink import JsonlAuditSink, Receipt
from server.config import TRANSPORT_OVERHEAD_BYTES, Limits, load_config
from server.interceptors import GatewayInterceptor, refusal_limiter
from server.loghost import LogHostServer, RemoteAuditSink
from server.workers import (
    LOGHOST_SOCKET,
    TEMPORARY_RUNTIME_PREFIX,
    WorkerPool,
    clean_stale_runtime_dirs,
    runtime_dir,
)
from siogw_api.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def rec(actor: str, i: int = 0) -> AuditRecord:
    return AuditRecord(actor=actor, event="query", outcome="success", details={"i": i})


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- finding 9: concurrency and transport limits -------------------------------------------
def test_transport_receive_limit_is_the_application_limit_plus_overhead(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={})
    limits = config.limits
    assert limits.transport_receive_bytes == limits.max_message_bytes + TRANSPORT_OVERHEAD_BYTES
    assert ("grpc.max_receive_message_length", limits.transport_receive_bytes) in \
        server_options(config)
    assert Limits().max_concurrent_rpcs > 0


def test_many_concurrent_large_calls_are_refused_beyond_the_cap(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={})
    config = dataclasses.replace(
        config, limits=dataclasses.replace(config.limits, max_concurrent_rpcs=4))
    held = 0
    release = asyncio.Event()

    async def hold(request: bytes, context: aio.ServicerContext) -> bytes:
        nonlocal held
        held += 1
        await release.wait()
        return b""

    async def scenario() -> None:
        interceptor = GatewayInterceptor(
            JsonlAuditSink(tmp_path / "a.jsonl"),
            max_message_bytes=config.limits.max_message_bytes,
            limiter=refusal_limiter(config))
        server = grpc_server(config, interceptor)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "test.Slow", {"Hold": grpc.unary_unary_rpc_method_handler(hold)}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        rss_before = _rss_kib()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary("/test.Slow/Hold")
                body = b"\x00" * (250 * 1024)
                calls = [asyncio.ensure_future(call(body, timeout=30)) for _ in range(120)]
                deadline = time.monotonic() + 20
                while sum(c.done() for c in calls) < len(calls) - 4:
                    assert time.monotonic() < deadline, "calls beyond the cap were not refused"
                    await asyncio.sleep(0.05)
                assert held <= 4
                growth_mib = (_rss_kib() - rss_before) / 1024
                release.set()
                results = await asyncio.gather(*calls, return_exceptions=True)
                codes = [r.code() if isinstance(r, aio.AioRpcError) else grpc.StatusCode.OK
                         for r in results]
                assert codes.count(grpc.StatusCode.OK) == held
                assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == len(calls) - held
                # the process stays up and serves again once the held calls are done
                assert await call(b"x", timeout=10) == b""
                # over the application's limit plus the framing overhead: the transport
                # refuses it without the application ever holding it
                too_big = b"\x00" * (config.limits.transport_receive_bytes + 1)
                with pytest.raises(aio.AioRpcError) as info:
                    await call(too_big, timeout=10)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # loose bound: 120 calls of 250 KiB are 30 MiB on the client side alone; the
            # refused ones are not kept by the server (the issue measured 1.4 GiB growth)
            assert growth_mib < 200, growth_mib
        finally:
            await server.stop(0)

    asyncio.run(scenario())


# --- finding 11 / 12: the log-host link -----------------------------------------------------
_LOGHOST_PROCESS = r"""
import asyncio, sys
from pathlib import Path
from server.auditsink import JsonlAuditSink
from server.loghost import LogHostServer

async def main():
    server = LogHostServer(JsonlAuditSink(sys.argv[2]), Path(sys.argv[1]))
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_stalled_log_host_times_out_and_reports_unavailable(
    sock_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RemoteAuditSink, "HEALTH_INTERVAL", 0.05)
    path = sock_dir / "lh.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOGHOST_PROCESS, str(path), str(tmp_path / "a.jsonl")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        async def scenario() -> None:
            lost: list[str] = []
            sink = RemoteAuditSink(path, timeout=0.5, on_lost=lost.append)
            await sink.connect()
            assert (await sink.record(rec("before"))).seq == 0
            sink.check()
            os.kill(proc.pid, signal.SIGSTOP)  # alive, answers nothing
            # the append fails within the timeout instead of hanging
            with pytest.raises(AuditUnavailable, match="did not answer"):
                await asyncio.wait_for(sink.record(rec("stalled")), 10)
            # and the sink reports itself unavailable (health NOT_SERVING, queries refused)
            with pytest.raises(AuditUnavailable, match="did not answer"):
                sink.check()
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(sink.record(rec("refused")), 10)
            os.kill(proc.pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            while True:  # a health probe is answered again: serving again
                try:
                    sink.check()
                    break
                except AuditUnavailable:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            assert isinstance(await sink.record(rec("after")), Receipt)
            assert lost == []  # a stall is not a lost link
            await sink.close()

        asyncio.run(scenario())
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)


class _Stalling(JsonlAuditSink):
    """Records of actor "stall" never become durable (their worker waits)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = 0

    async def record(self, record: AuditRecord) -> Receipt:
        self.entered += 1
        if record.actor == "stall":
            await asyncio.Event().wait()
        return await super().record(record)


def _frame(call_id: int, op: bytes, data: bytes) -> bytes:
    body = struct.pack(">IB", call_id, op[0]) + data
    return struct.pack(">I", len(body)) + body


def test_log_host_bounds_connections_frames_in_flight_and_partial_frames(
    sock_dir: Path, tmp_path: Path
) -> None:
    from server.loghost import encode_record

    async def scenario() -> None:
        sink = _Stalling(tmp_path / "a.jsonl")
        server = LogHostServer(sink, sock_dir / "lh.sock", timeout=0.3,
                               max_connections=2, max_in_flight=3)
        await server.start()
        path = str(sock_dir / "lh.sock")
        try:
            _r1, w1 = await asyncio.open_unix_connection(path)
            # frames in flight: 10 stalled appends sent, only 3 taken in
            for i in range(10):
                w1.write(_frame(i + 1, b"A", encode_record(rec("stall", i))))
            await w1.drain()
            await asyncio.sleep(0.5)
            assert sink.entered == 3
            # a partial frame is dropped after the read timeout
            r2, w2 = await asyncio.open_unix_connection(path)
            w2.write(struct.pack(">I", 1000) + b"\x00" * 10)
            await w2.drain()
            assert await asyncio.wait_for(r2.read(), 5) == b""
            # the connection cap: two open, the third is closed at once
            r3, w3 = await asyncio.open_unix_connection(path)
            r4, w4 = await asyncio.open_unix_connection(path)
            assert await asyncio.wait_for(r4.read(), 5) == b""
            w3.write(_frame(1, b"H", b""))
            await w3.drain()
            head = await asyncio.wait_for(r3.readexactly(9), 5)
            assert head[8:9] == b"0"
            for w in (w1, w2, w3, w4):
                w.close()
        finally:
            server._tasks.clear()  # the stalled appends never end
            await server.close()

    asyncio.run(scenario())


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to listen as another user")
def test_worker_refuses_a_log_host_of_another_user(sock_dir: Path) -> None:
    os.chmod(sock_dir, 0o777)
    path = sock_dir / "lh.sock"
    code = ("import os,socket,sys,time; os.setgid(65534); os.setuid(65534);"
            "s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]);"
            "s.listen(); print('ready',flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        async def scenario() -> None:
            sink = RemoteAuditSink(path)
            with pytest.raises(AuditUnavailable, match="runs as uid 65534"):
                await sink.connect(timeout=2)
            with pytest.raises(AuditUnavailable):
                sink.check()

        asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait(10)


# --- finding 12: the runtime directory -------------------------------------------------------
def test_runtime_dir_refuses_a_planted_symlink(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "run").symlink_to(elsewhere)
    config = load_config(home, env={})
    with pytest.raises(ConfigError, match="symbolic link"):
        runtime_dir(config)


def test_runtime_dir_refuses_a_home_others_can_write(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    config = load_config(home, env={})
    home.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        runtime_dir(config)
    home.chmod(0o700)
    run = runtime_dir(config)
    assert run == home / "run" and (run.stat().st_mode & 0o777) == 0o700


def test_stale_temporary_runtime_dirs_are_removed_live_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / (TEMPORARY_RUNTIME_PREFIX + "stale")
    stale.mkdir()
    (stale / LOGHOST_SOCKET).touch()  # a socket file nobody listens on any more
    live = Path(tempfile.mkdtemp(prefix=TEMPORARY_RUNTIME_PREFIX, dir=tmp_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(live / LOGHOST_SOCKET))
    listener.listen()
    other = tmp_path / "unrelated"
    other.mkdir()
    try:
        assert clean_stale_runtime_dirs(tmp_path) == [stale]
    finally:
        listener.close()
    assert not stale.exists() and live.exists() and other.exists()


# --- finding 12: restart backoff -------------------------------------------------------------
def _exit_at_once() -> None:
    os._exit(3)


class _CrashingPool(WorkerPool):
    """A pool whose workers say nothing and exit right away (a real spawned process):
    what a worker that crashes right after it said "ready" looks like to the watcher."""

    RESTART_PAUSE = (0.01, 0.02, 0.04, 0.08, 0.16)

    async def _spawn(self, index: int, *, timeout: float = 120.0) -> None:
        proc = self._ctx.Process(target=_exit_at_once, name=f"crash-{index}")
        proc.start()
        self._procs[index] = proc
        self._started[index] = time.monotonic()
        await asyncio.to_thread(proc.join, 30)


def test_a_worker_that_crashes_after_start_is_restarted_with_growing_pauses(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[float]:
        pool = _CrashingPool(load_config(tmp_path, env={}), tmp_path, 1)
        await pool._spawn(1)
        watcher = asyncio.create_task(pool._watch())
        deadline = time.monotonic() + 60
        while len(pool.pauses) < 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await pool.stop(grace=0)
        watcher.cancel()
        return pool.pauses

    pauses = asyncio.run(scenario())
    assert pauses[:5] == [0.01, 0.02, 0.04, 0.08, 0.16]


# --- finding 12: an interrupted export leaves no partial file --------------------------------
_EXPORT_UNDER_LIMIT = r"""
import resource, signal, sys
from clients.cli import _write_export
from siogw_api.errors import InputError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    _write_export(sys.argv[1], b"result-data " * 10000)
except InputError as exc:
    print("refused", exc.public_message() if hasattr(exc, "public_message") else exc)
else:
    print("written")
"""


def test_an_export_interrupted_by_a_write_error_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir(mode=0o700)
    target = out / "result.json"
    done = subprocess.run([sys.executable, "-c", _EXPORT_UNDER_LIMIT, str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("refused"), (done.stdout, done.stderr)
    assert list(out.iterdir()) == []  # neither the target nor a temporary file
