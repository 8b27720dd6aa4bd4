"""``server.workers > 1``: a log host and worker processes on one port (ADR 0007).

The slow tests run the real ``siogw serve`` (``siogw.demo.gateway_process``) with
``SIOGW_WORKERS=2`` on the demo world (CA, SoftHSM tokens, TLS) and talk to it over many
TLS connections: the kernel hands each new connection to one of the two processes.

Which process holds a connection is found out for real: the worker is stopped
(``SIGSTOP``) for a moment and a health check is sent over every connection; the ones the
worker holds do not answer until it continues. That the worker runs the queries on its
connections itself (and does not pass them on) shows while the log host is stopped: the
worker still checks a query and claims its request id in the database, and answers only
once the log host has the record.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from audit.archive import iter_archive_records, load_trusted_keys, verify_archive
from clients import _common as c
from server.config import MAX_WORKERS, load_config
from server.errors import error_info
from signing.merkle import leaf_hash
from siogw import demo
from siogw_api.errors import ConfigError
from siogw_api.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    query_pb2,
    query_pb2_grpc,
)

ANALYST = ("analyst", "Aigerim Analyst", "agency_user", "+77011234567")
TASK = "CASE-2026-0777"


# --- the world: built once for the module -------------------------------------------------
@pytest.fixture(scope="module")
def world(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory) -> demo.World:
    from server.admin import execute
    from server.store import Store
    from siogw_api.v1 import admin_pb2

    home = tmp_path_factory.mktemp("wk")
    world = demo.build_world(home, people=(ANALYST,), token_store=softhsm_store,
                             label_prefix=f"wk{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    store = Store(load_config(home, env={}).effective_database_url).open()
    analyst = world.people["analyst"]
    try:
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=analyst.user_id, full_name=analyst.full_name, role=analyst.role,
            phone=analyst.phone, certificate_der=demo._der(analyst.certificate()),
        )))
    finally:
        store.close()
    return world


# --- processes, from /proc -------------------------------------------------------------------
def children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def claimed(home: Path, request_id: str) -> bool:
    """Whether a gateway process claimed ``request_id`` (the replay guard, in the database)."""
    import sqlalchemy as sa

    from server.store.schema import seen_requests

    engine = sa.create_engine(load_config(home, env={}).effective_database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(seen_requests.c.request_id).where(
                seen_requests.c.request_id == request_id)).first() is not None
    finally:
        engine.dispose()


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` has a listening TCP socket on ``port``."""
    return bool(_sockets(pid, port, state="0A"))


def client_ports(pid: int, port: int) -> set[int]:
    """Client ports of the TCP connections to ``port`` that process ``pid`` holds."""
    return _sockets(pid, port, state="01")


def _sockets(pid: int, port: int, *, state: str) -> set[int]:
    """Remote ports of ``pid``'s TCP sockets on local ``port`` in ``state`` (/proc/net/tcp)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    found = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                local, remote, st, inode = cols[1], cols[2], cols[3], int(cols[9])
                if st == state and inode in inodes and int(local.rsplit(":", 1)[1], 16) == port:
                    found.add(int(remote.rsplit(":", 1)[1], 16))
    return found


def processes_of(home: Path) -> list[int]:
    """Live processes started for the gateway in ``home`` (its environment names it)."""
    marker = f"SIOGW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in env and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


@dataclass
class Gateway:
    """A running ``siogw serve``: the log host process and its workers."""

    world: demo.World
    port: int
    proc: subprocess.Popen[str]
    log_name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def workers(self) -> list[int]:
        """The worker processes (spawned interpreters; not multiprocessing's tracker)."""
        return [p for p in children(self.pid) if b"spawn_main" in cmdline(p) and alive(p)]

    def log_text(self) -> str:
        return (self.world.home / self.log_name).read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serve(world: demo.World, log_name: str) -> Iterator[Gateway]:
    started: list[subprocess.Popen[str]] = []
    with demo.gateway_process(world, log_name=log_name, started=started) as port:
        gw = Gateway(world, port, started[0], log_name)
        assert len(gw.workers()) == 1, gw.log_text()[-2000:]
        yield gw


@pytest.fixture
def two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIOGW_WORKERS", "2")


# --- the log ---------------------------------------------------------------------------------
def verified_log(home: Path) -> dict[int, tuple[bytes, Any]]:
    """Every record of the (stopped) gateway's log by seq, after verifying the archive."""
    audit_dir = home / "audit"
    keys = load_trusted_keys([audit_dir / "archive" / "keys.json"])
    report = verify_archive(audit_dir, keys, origin=c.AUDIT_ORIGIN, strict=True)
    records = {rec.seq: (body, rec) for body, rec in iter_archive_records(audit_dir)}
    assert report.tree_size == len(records) == max(records) + 1
    return records


def assert_logged_once(records: dict[int, tuple[bytes, Any]], answered: list[Any]) -> None:
    """Each answered query has exactly one ``query`` record: the one its receipt names."""
    by_id = collections.Counter(
        rec.details.get("request_id") for _b, rec in records.values() if rec.event == "query"
    )
    for outcome in answered:
        assert by_id[outcome.request_id] == 1, outcome.request_id
        body, rec = records[outcome.receipt.seq]
        assert rec.event == "query" and rec.details["request_id"] == outcome.request_id
        assert leaf_hash(body) == outcome.receipt.leaf_hash


def wait_for_no_process(home: Path) -> None:
    wait_for(lambda: processes_of(home) == [], 5, "every gateway process exits")


def assert_all_gone_and_logged(home: Path, answered: list[Any]) -> None:
    """The gateway's processes are all gone, and its log holds each answer once."""
    wait_for_no_process(home)
    assert_logged_once(verified_log(home), answered)


# --- a client with many connections ----------------------------------------------------------
def refusal(err: aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    """(status code, ErrorInfo reason, the gateway's call id) of a refused call."""
    reason = call_id = ""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            info = error_info(status_pb2.Status.FromString(value))
            reason = info.reason if info is not None else ""
        elif key == "x-request-id":
            call_id = value
    return err.code(), reason, call_id


class Client:
    """The analyst, over as many separate TCP connections as asked for."""

    _ids = itertools.count()

    def __init__(self, world: demo.World, port: int) -> None:
        self.world = world
        self.port = port
        self.analyst = world.people["analyst"]
        self.signer = self.analyst.signer()
        self.verifier = c.PinnedGatewayVerifier(c.load_certificates(world.gateway_cert))
        self.creds = grpc.ssl_channel_credentials(root_certificates=world.ca_file.read_bytes())
        self.channels: list[aio.Channel] = []
        self.token = ""
        self._subjects = itertools.cycle(dataset_iins(world.home))

    def open(self, n: int) -> list[aio.Channel]:
        # A distinct option value per channel: gRPC does not share one connection.
        new = [
            aio.secure_channel(
                f"127.0.0.1:{self.port}", self.creds,
                options=[*c.channel_options(demo.TLS_NAME),
                         ("siogw.test.connection", next(self._ids))],
            )
            for _ in range(n)
        ]
        self.channels += new
        return new

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close()

    async def connect(self, channels: list[aio.Channel]) -> None:
        await asyncio.gather(*(
            health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True)
            for ch in channels
        ))

    async def held_by_worker(self, channels: list[aio.Channel], worker: int) -> list[bool]:
        """For each (connected) channel: is its connection held by process ``worker``?"""
        await self.connect(channels)
        os.kill(worker, signal.SIGSTOP)
        try:
            answers = await asyncio.gather(
                *(health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                       timeout=1.5) for ch in channels),
                return_exceptions=True,
            )
        finally:
            os.kill(worker, signal.SIGCONT)
        held = []
        for answer in answers:
            if isinstance(answer, aio.AioRpcError):
                assert answer.code() == grpc.StatusCode.DEADLINE_EXCEEDED, answer
                held.append(True)
            else:
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
                held.append(False)
        return held

    async def split(self, worker: int, n: int = 12, least: int = 2) -> tuple[list[Any], list[Any]]:
        """Open connections until each process holds ``least``; (worker's, log host's)."""
        mine: list[Any] = []
        host: list[Any] = []
        while len(mine) < least or len(host) < least:
            assert len(self.channels) < 64, "the kernel gave every connection to one process"
            new = self.open(n if not self.channels else 4)
            for ch, by_worker in zip(new, await self.held_by_worker(new, worker), strict=True):
                (mine if by_worker else host).append(ch)
        return mine, host

    async def login(self, channel: aio.Channel) -> None:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        sms_code = demo.sms_reader(self.world, self.analyst.user_id)  # codes from now on
        begun = await stub.BeginLogin(auth_pb2.BeginLoginRequest(
            user_id=self.analyst.user_id,
            certificate_der=c.certificate_der(self.signer, None)), timeout=30)
        signed = await asyncio.to_thread(c.sign_login_challenge, bytes(begun.challenge),
                                         self.signer)
        proved = await stub.ProveLogin(auth_pb2.ProveLoginRequest(
            login_id=begun.login_id, signed_challenge=signed,
            factor=c.factor_value("sms")), timeout=30)
        code = await asyncio.to_thread(sms_code, proved.sms_destination)
        done = await stub.CompleteLogin(
            auth_pb2.CompleteLoginRequest(login_id=begun.login_id, sms_code=code), timeout=30)
        self.token = done.session_token

    async def consent(self, channel: aio.Channel) -> None:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        text = c.consent_from_proto(await stub.GetConsent(auth_pb2.GetConsentRequest(),
                                                          timeout=30))
        env = await asyncio.to_thread(c.sign_consent, text, self.analyst.user_id, self.signer)
        await stub.SignConsent(auth_pb2.SignConsentRequest(consent=env),
                               metadata=self.metadata, timeout=30)

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    async def prepare(self, n: int, **overrides: Any) -> list[c.PreparedQuery]:
        queries = [
            c.build_query(1, overrides.get("parameters") or {"iin": next(self._subjects)},
                          demo.BASIS, TASK, "test of the gateway's worker processes")
            for _ in range(n)
        ]
        return list(await asyncio.gather(
            *(asyncio.to_thread(c.prepare_query, q, self.signer) for q in queries)))

    async def query(self, channel: aio.Channel, prepared: c.PreparedQuery,
                    timeout: float = 30) -> c.QueryOutcome:
        response = await query_pb2_grpc.QueryServiceStub(channel).Query(
            prepared.request(), metadata=self.metadata, timeout=timeout)
        outcome = c.verify_result(response, prepared, self.verifier)
        assert outcome.receipt is not None
        return outcome


async def _drain(call: Any) -> list[Any]:
    return [message async for message in call]


def dataset_iins(home: Path) -> list[str]:
    """IINs of the synthetic dataset (distinct subjects: no burst alerts)."""
    import sqlalchemy as sa

    from server.resources.dataset import res_person

    engine = sa.create_engine(load_config(home, env={}).effective_database_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(res_person.c.iin).order_by("iin"))]
    finally:
        engine.dispose()


@dataclass
class Load:
    """Signed queries sent continuously over ``channels`` until stopped."""

    client: Client
    channels: list[aio.Channel]
    ok: list[c.QueryOutcome] = field(default_factory=list)
    failed: list[grpc.StatusCode] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, tasks: int = 6) -> None:
        async def one(k: int) -> None:
            for i in itertools.count(k, tasks):
                if self.stop.is_set():
                    return
                (prepared,) = await self.client.prepare(1)
                try:
                    self.ok.append(await self.client.query(
                        self.channels[i % len(self.channels)], prepared, timeout=10))
                except aio.AioRpcError as exc:
                    self.failed.append(exc.code())
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(one(k) for k in range(tasks)))

    async def until(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ok) < n:
            assert time.monotonic() < deadline, f"only {len(self.ok)} answers: {self.failed}"
            await asyncio.sleep(0.05)


# --- the tests -------------------------------------------------------------------------------
@pytest.mark.slow
def test_both_processes_serve_queries_and_every_answer_is_logged(
    world: demo.World, two_processes: None
) -> None:
    answered: list[c.QueryOutcome] = []
    with serve(world, "gw-spread.log") as gw:
        # the sockets are in $SIOGW_HOME/run (short enough), private to the user
        run = world.home / "run"
        assert run.stat().st_mode & 0o777 == 0o700
        assert {p.name for p in run.iterdir()} >= {"loghost.sock", "gateway.sock"}
        (worker,) = gw.workers()

        async def frozen_host(
            client: Client, channel: aio.Channel, wait: float
        ) -> tuple[bool, Any]:
            """Send a query while the log host is stopped: was its request id claimed (the
            query's checks ran) before the log host continued? And the answer."""
            (prepared,) = await client.prepare(1)
            os.kill(gw.pid, signal.SIGSTOP)
            try:
                call = asyncio.create_task(client.query(channel, prepared))
                deadline = time.monotonic() + wait
                while not (was_claimed := claimed(world.home, prepared.request_id)):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                # no answer before the log host has the record
                assert not call.done()
            finally:
                os.kill(gw.pid, signal.SIGCONT)
            return was_claimed, await call

        async def scenario() -> tuple[bool, bool, int]:
            client = Client(world, gw.port)
            try:
                by_worker, by_host = await client.split(worker)
                # AuthService is forwarded from the worker to the log host
                await client.login(by_worker[0])
                await client.consent(by_worker[-1])
                # The worker runs the queries on its connections itself: with the log host
                # stopped it still checks them (and claims their request ids), and answers
                # once the log host has the record. A query on the log host's connection
                # waits for the log host from the start.
                claimed_by_worker, outcome = await frozen_host(client, by_worker[0], 10)
                answered.append(outcome)
                claimed_by_host, outcome = await frozen_host(client, by_host[0], 1.5)
                answered.append(outcome)
                # and many queries over every connection at once
                plan = [(ch, p) for ch in client.channels for p in await client.prepare(4)]
                answered.extend(await asyncio.gather(*(client.query(ch, p) for ch, p in plan)))
                return claimed_by_worker, claimed_by_host, len(by_worker)
            finally:
                await client.close()

        claimed_by_worker, claimed_by_host, worker_connections = asyncio.run(scenario())
        assert claimed_by_worker and not claimed_by_host
        assert worker_connections >= 2
        assert len({o.receipt.seq for o in answered}) == len(answered)
    assert_all_gone_and_logged(world.home, answered)


@pytest.mark.slow
def test_refusals_through_a_worker_keep_their_status_and_are_recorded(
    world: demo.World, two_processes: None
) -> None:
    with serve(world, "gw-refusals.log") as gw:
        (worker,) = gw.workers()

        async def scenario() -> tuple[list[dict[str, Any]], set[int], str, str]:
            client = Client(world, gw.port)
            try:
                by_worker, _by_host = await client.split(worker)
                await client.login(by_worker[0])
                await client.consent(by_worker[0])
                (first,) = await client.prepare(1)
                await client.query(by_worker[0], first)
                (bad_iin,) = await client.prepare(1, parameters={"iin": "123456789012"})
                (clean,) = await client.prepare(1)
                # issue 12: a valid query with one extra signature whose keyid is 200,000
                # bytes of \x01 is refused before anything reads it, on either process
                evil = query_pb2.QueryRequest()
                evil.CopyFrom(clean.request())
                evil.envelope.signatures.append(
                    common_pb2.Signature(keyid="\x01" * 200_000, sig=b"\x01" * 64))

                def evil_query(ch: aio.Channel) -> Any:
                    return query_pb2_grpc.QueryServiceStub(ch).Query(
                        evil, metadata=client.metadata, timeout=30)

                calls = {
                    "replay": lambda ch: client.query(ch, first),
                    "bad_iin": lambda ch: client.query(ch, bad_iin),
                    "evil": evil_query,
                    # refused by the log host, to which the worker forwards AuthService
                    "login": lambda ch: auth_pb2_grpc.AuthServiceStub(ch).BeginLogin(
                        auth_pb2.BeginLoginRequest(user_id="nobody",
                                                   certificate_der=b"not a certificate"),
                        timeout=30),
                    # issue 15: a server-streaming call, forwarded by the worker as a
                    # stream; an analyst may not read Reports
                    "stream": lambda ch: _drain(audit_pb2_grpc.AuditServiceStub(
                        ch).StreamQueriesCsv(audit_pb2.ListQueriesRequest(),
                                             metadata=client.metadata, timeout=30)),
                }
                got = []
                for ch in client.channels:
                    row: dict[str, Any] = {"worker": ch in by_worker}
                    for name, call in calls.items():
                        with pytest.raises(aio.AioRpcError) as ei:
                            await call(ch)
                        row[name] = refusal(ei.value)
                    got.append(row)
                held = client_ports(worker, gw.port)
                # nothing was claimed or dispatched: the clean request is served once
                await client.query(by_worker[0], clean)
                return got, held, first.request_id, bad_iin.request_id
            finally:
                await client.close()

        got, held_by_worker, replayed, bad_id = asyncio.run(scenario())
    # the same precise status over every connection, whichever process holds it
    assert {row["replay"][:2] for row in got} == {(grpc.StatusCode.ALREADY_EXISTS, "REPLAY")}
    assert {row["bad_iin"][:2] for row in got} == {
        (grpc.StatusCode.INVALID_ARGUMENT, got[0]["bad_iin"][1])}
    assert got[0]["bad_iin"][1]
    assert {row["evil"][:2] for row in got} == {
        (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_TOO_LARGE")}
    ((stream_code, stream_reason),) = {row["stream"][:2] for row in got}
    assert stream_code == grpc.StatusCode.PERMISSION_DENIED and stream_reason
    ((login_code, login_reason),) = {row["login"][:2] for row in got}
    assert login_code == grpc.StatusCode.INVALID_ARGUMENT and login_reason
    assert any(row["worker"] for row in got) and not all(row["worker"] for row in got)

    records = verified_log(world.home)
    by_call = collections.defaultdict(list)
    for _b, rec in records.values():
        if rec.event == "refusal":
            by_call[rec.details["call_id"]].append(rec)
    for row in got:
        peers = set()
        for name, request_id in (("replay", replayed), ("bad_iin", bad_id), ("login", None),
                                 ("evil", None), ("stream", None)):
            code, reason, call_id = row[name]
            assert len(by_call[call_id]) == 1, (name, row)
            rec = by_call[call_id][0]
            assert (rec.details["code"], rec.details["reason"]) == (code.name, reason)
            assert rec.details.get("request_id") == request_id
            assert "request_claimed" not in rec.details
            peers.add(rec.details["peer"])
        # one connection, one client address: the worker names it when it forwards a call
        assert len(peers) == 1, (peers, row)
        peer = peers.pop()
        assert peer.startswith("ipv4:127.0.0.1:")
        assert (int(peer.rsplit(":", 1)[1]) in held_by_worker) == row["worker"]


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_nothing_acknowledged_is_lost(
    world: demo.World, two_processes: None
) -> None:
    answered: list[c.QueryOutcome] = []
    with serve(world, "gw-kill-worker.log") as gw:
        (old,) = gw.workers()

        async def scenario() -> tuple[int, float, float]:
            client = Client(world, gw.port)
            load = Load(client, [])
            running: asyncio.Task[None] | None = None
            try:
                by_worker, _by_host = await client.split(old)
                await client.login(by_worker[0])
                await client.consent(by_worker[0])
                load.channels = list(client.channels)
                running = asyncio.create_task(load.run())
                await load.until(30)
                before = len(load.ok)
                os.kill(old, signal.SIGKILL)
                killed_at = time.monotonic()
                new = 0
                while not (new and listening(new, gw.port)):
                    assert time.monotonic() - killed_at < 20, "no new worker on the port"
                    await asyncio.sleep(0.05)
                    new = next(iter(set(gw.workers()) - {old}), 0)
                serving = time.monotonic() - killed_at
                # the new worker takes connections (new ones: the kernel spreads them again)
                fresh = Client(world, gw.port)
                fresh.token = client.token
                try:
                    new_by_worker, _ = await fresh.split(new, n=8, least=1)
                    held = time.monotonic() - killed_at
                    for p in await fresh.prepare(6):
                        load.ok.append(await fresh.query(new_by_worker[0], p))
                finally:
                    await fresh.close()
                await load.until(len(load.ok) + 20)  # the old connections go on as well
                load.stop.set()
                await running
                assert len(load.ok) > before + 20
                assert set(load.failed) <= {grpc.StatusCode.UNAVAILABLE}, load.failed
                return new, serving, held
            finally:
                answered.extend(load.ok)
                load.stop.set()
                if running is not None:
                    await asyncio.gather(running, return_exceptions=True)
                await client.close()

        new, serving, held = asyncio.run(scenario())
        assert new != old and not alive(old)
        assert serving < 10 and held < 15, (serving, held)
        assert f"gateway worker 1 (pid {old}) exited with status -9" in gw.log_text()
    assert_all_gone_and_logged(world.home, answered)


@pytest.mark.slow
def test_workers_exit_when_the_log_host_dies_and_acknowledged_records_survive(
    world: demo.World, two_processes: None
) -> None:
    from audit import AuditLog
    from server.assembly import AUDIT_ORIGIN, load_audit_signer

    answered: list[c.QueryOutcome] = []
    with serve(world, "gw-kill-host.log") as gw:
        (worker,) = gw.workers()
        helpers = children(gw.pid)  # the worker and multiprocessing's resource tracker
        assert worker in helpers
        assert sorted(processes_of(world.home)) == sorted([gw.pid, *helpers])

        async def scenario() -> tuple[float, list[grpc.StatusCode]]:
            client = Client(world, gw.port)
            load = Load(client, [])
            running: asyncio.Task[None] | None = None
            try:
                by_worker, by_host = await client.split(worker)
                await client.login(by_worker[0])
                await client.consent(by_worker[0])
                load.channels = [*by_worker, *by_host]
                running = asyncio.create_task(load.run())
                await load.until(30)
                os.kill(gw.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                await asyncio.to_thread(
                    wait_for, lambda: not any(alive(p) for p in helpers), 10,
                    "the workers of a dead log host exit")
                gone = time.monotonic() - killed_at
                await asyncio.sleep(0.5)
                load.stop.set()
                await running
                return gone, load.failed
            finally:
                answered.extend(load.ok)
                load.stop.set()
                if running is not None:
                    await asyncio.gather(running, return_exceptions=True)
                await client.close()

        gone, failed = asyncio.run(scenario())
        assert gone < 5
        assert gw.proc.wait(5) == -signal.SIGKILL
        # refused from then on (UNAVAILABLE while the worker lingers); a call that races
        # the worker's own server shutdown at the end may be CANCELLED by gRPC core (seen
        # now and then, as for any server shutdown): never OK without a durable record
        assert grpc.StatusCode.UNAVAILABLE in failed
        assert set(failed) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, failed
    wait_for_no_process(world.home)
    # the log is opened again (recovery of the torn tail), then verified
    config = load_config(world.home, env={})
    AuditLog.open(config.effective_audit_dir, load_audit_signer(config), AUDIT_ORIGIN).close()
    assert_logged_once(verified_log(world.home), answered)


# --- configuration -----------------------------------------------------------------------------
def test_workers_setting_is_checked(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).workers == 1
    for good in ("1", "2", str(MAX_WORKERS)):
        assert load_config(tmp_path, env={"SIOGW_WORKERS": good}).workers == int(good)
    for bad in ("0", "-1", str(MAX_WORKERS + 1), "two"):
        with pytest.raises(ConfigError, match=r"server\.workers"):
            load_config(tmp_path, env={"SIOGW_WORKERS": bad})
    (tmp_path / "siogw.toml").write_text("[server]\nworkers = 0\n")
    with pytest.raises(ConfigError, match="between 1 and 64"):
        load_config(tmp_path, env={})
    assert load_config(tmp_path, env={"SIOGW_WORKERS": "3"}).workers == 3  # env wins


@pytest.mark.parametrize("value", ["0", "65"])
def test_serve_refuses_a_bad_worker_count(tmp_path: Path, value: str) -> None:
    env = {**os.environ, "SIOGW_HOME": str(tmp_path), "SIOGW_WORKERS": value}
    proc = subprocess.run([sys.executable, "-m", "siogw", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == ConfigError.exit_code, proc.stderr
    assert f"server.workers must be between 1 and 64: {value}" in proc.stderr
    assert "listening" not in proc.stdout


def burst_alerts(home: Path, user_id: str) -> list[dict[str, Any]]:
    """The ``subject_burst`` alerts of ``user_id`` (the operations domain's table)."""
    import json

    import sqlalchemy as sa

    from server.ops.schema import alerts

    engine = sa.create_engine(load_config(home, env={}).effective_database_url)
    try:
        if not sa.inspect(engine).has_table(alerts.name):
            return []  # no gateway has attached the operations domain to it yet
        with engine.connect() as conn:
            rows = conn.execute(sa.select(alerts.c.details_json, alerts.c.record_seq).where(
                alerts.c.rule == "subject_burst", alerts.c.user_id == user_id)).all()
    finally:
        engine.dispose()
    return [{**json.loads(r.details_json), "record_seq": r.record_seq} for r in rows]


@pytest.mark.slow
def test_the_rules_count_a_burst_spread_over_both_processes(
    world: demo.World, two_processes: None
) -> None:
    # Ten queries by one user about one entity within the hour make a burst (ADR 0006).
    # They are sent alternately over a worker's and the log host's connections: the log
    # host's rules must see the worker's records too. The entity (a BIN, resource 2) is
    # one no other test here asks about.
    subject = demo.demo_parameters(2)
    before = len(burst_alerts(world.home, "analyst"))
    with serve(world, "gw-burst.log") as gw:
        (worker,) = gw.workers()

        async def scenario() -> tuple[int, list[Any]]:
            client = Client(world, gw.port)
            try:
                by_worker, by_host = await client.split(worker)
                await client.login(by_host[0])
                await client.consent(by_host[0])
                outcomes = []
                for i in range(9):
                    query = c.build_query(2, subject, demo.BASIS, TASK, "burst across processes")
                    prepared = await asyncio.to_thread(c.prepare_query, query, client.signer)
                    channel = (by_worker if i % 2 == 0 else by_host)[0]
                    outcomes.append(await client.query(channel, prepared))
                await asyncio.sleep(0.5)  # the rules thread lingers a few ms per batch
                after_nine = len(burst_alerts(world.home, "analyst"))
                query = c.build_query(2, subject, demo.BASIS, TASK, "burst across processes")
                prepared = await asyncio.to_thread(c.prepare_query, query, client.signer)
                outcomes.append(await client.query(by_worker[0], prepared))
                return after_nine, outcomes
            finally:
                await client.close()

        after_nine, outcomes = asyncio.run(scenario())
        tenth = outcomes[-1].receipt.seq
        wait_for(lambda: len(burst_alerts(world.home, "analyst")) > before, 10,
                 "a burst alert for the tenth query")
    assert after_nine == before  # nine (five by the worker) are not a burst yet
    new = burst_alerts(world.home, "analyst")[before:]
    assert len(new) == 1 and new[0]["count"] == 10 and new[0]["record_seq"] == tenth, new


def test_a_home_too_deep_for_a_unix_socket_gets_a_private_temporary_runtime(
    tmp_path: Path,
) -> None:
    from server.app import _WorkerGroup
    from server.workers import LOGHOST_SOCKET, runtime_dir

    short = load_config(tmp_path / "h", env={})
    assert runtime_dir(short) == tmp_path / "h" / "run"
    deep = load_config(tmp_path / ("d" * 120), env={})
    group = _WorkerGroup(deep, gw=None, servicers=None)  # type: ignore[arg-type]
    runtime = group.runtime
    assert runtime.parent == Path(tempfile.gettempdir())
    assert len(str(runtime / LOGHOST_SOCKET)) < 100
    assert runtime.stat().st_mode & 0o777 == 0o700
    asyncio.run(group.close())  # nothing started: the directory goes all the same
    assert not runtime.exists()


@pytest.mark.slow
def test_a_stalled_log_host_makes_the_worker_not_serving_and_queries_fail_fast(
    world: demo.World, two_processes: None
) -> None:
    """Issue 14, finding 11: with the log host stopped (SIGSTOP: alive, answering
    nothing) the worker's health goes NOT_SERVING and its queries end UNAVAILABLE within
    ``limits.loghost_timeout_seconds`` instead of hanging; it serves again after
    SIGCONT."""
    with serve(world, "gw-stall-host.log") as gw:
        (worker,) = gw.workers()

        async def scenario() -> tuple[grpc.StatusCode, int, c.QueryOutcome]:
            client = Client(world, gw.port)
            try:
                by_worker, _by_host = await client.split(worker)
                await client.login(by_worker[0])
                await client.consent(by_worker[0])
                first, stalled, after = await client.prepare(3)
                await client.query(by_worker[0], first)
                os.kill(gw.pid, signal.SIGSTOP)
                try:
                    with pytest.raises(aio.AioRpcError) as info:
                        await client.query(by_worker[0], stalled, timeout=60)
                    code = info.value.code()
                    status = 0
                    deadline = time.monotonic() + 30
                    while status != health_pb2.HealthCheckResponse.NOT_SERVING:
                        assert time.monotonic() < deadline, "the worker stayed SERVING"
                        answer = await health_pb2_grpc.HealthStub(by_worker[0]).Check(
                            health_pb2.HealthCheckRequest(), timeout=10)
                        status = answer.status
                        await asyncio.sleep(0.2)
                finally:
                    os.kill(gw.pid, signal.SIGCONT)
                deadline = time.monotonic() + 30
                while True:
                    answer = await health_pb2_grpc.HealthStub(by_worker[0]).Check(
                        health_pb2.HealthCheckRequest(), timeout=10)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    assert time.monotonic() < deadline, "the worker did not serve again"
                    await asyncio.sleep(0.2)
                return code, status, await client.query(by_worker[0], after)
            finally:
                await client.close()

        code, status, outcome = asyncio.run(scenario())
        assert code == grpc.StatusCode.UNAVAILABLE  # not DEADLINE_EXCEEDED: it did not hang
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert outcome.receipt is not None
        assert "did not answer within" in gw.log_text()


def _replay_receipt(err: aio.AioRpcError) -> tuple[dict[str, str], list[common_pb2.AuditReceipt]]:
    """The ErrorInfo metadata and the ``AuditReceipt`` details of a refusal."""
    from google.rpc import error_details_pb2

    meta: dict[str, str] = {}
    receipts = []
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                meta = dict(info.metadata)
            elif detail.Is(common_pb2.AuditReceipt.DESCRIPTOR):
                receipt = common_pb2.AuditReceipt()
                detail.Unpack(receipt)
                receipts.append(receipt)
    return meta, receipts


@pytest.mark.slow
def test_a_replay_refused_by_a_worker_carries_the_original_receipt(
    world: demo.World, two_processes: None
) -> None:
    """Issue 14, finding 6: a worker (no audit index) refuses the resend of an answered
    query ``ALREADY_EXISTS`` with the receipt of the first answer, as the log host does:
    it asks the log host. Whichever process answered first and whichever refuses."""
    with serve(world, "gw-replay-receipt.log") as gw:
        (worker,) = gw.workers()

        async def scenario() -> list[tuple[Any, bool, Any]]:
            client = Client(world, gw.port)
            try:
                by_worker, by_host = await client.split(worker)
                await client.login(by_worker[0])
                await client.consent(by_worker[0])
                got = []
                for first_by_worker in (True, False):
                    (prepared,) = await client.prepare(1)
                    first_ch = (by_worker if first_by_worker else by_host)[0]
                    outcome = await client.query(first_ch, prepared)
                    for ch in (by_worker[0], by_host[0]):
                        with pytest.raises(aio.AioRpcError) as ei:
                            await client.query(ch, prepared)
                        got.append((outcome, ch is by_worker[0], ei.value))
                return got
            finally:
                await client.close()

        got = asyncio.run(scenario())
    assert {by_worker for _o, by_worker, _e in got} == {True, False}
    for outcome, by_worker, err in got:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS, (by_worker, err)
        meta, receipts = _replay_receipt(err)
        assert meta.get("seq") == str(outcome.receipt.seq), (by_worker, meta)
        assert meta.get("leaf_hash") == outcome.receipt.leaf_hash.hex()
        assert [(r.seq, r.leaf_hash) for r in receipts] == [
            (outcome.receipt.seq, outcome.receipt.leaf_hash)], by_worker
