"""server.loghost: the log host's Unix-socket server and the workers' RemoteAuditSink.

In-process (no gRPC): a real ``audit.AuditLog`` signed on a SoftHSM token, or a
``JsonlAuditSink``, behind :class:`LogHostServer` on a socket in a short private
directory under /tmp (Unix socket paths are limited to 108 bytes). The death of the log
host is a real ``kill -9`` of a small log host process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit import AuditLog, verify_archive
from audit.archive import iter_archive_records
from audit.errors import AuditUnavailable
from audit.record import AuditRecord
from server import loghost
from server.auditsink import AuditLogSink, JsonlAuditSink, Receipt
from server.loghost import (
    MAX_FRAME_BYTES,
    LogHostServer,
    ProtocolError,
    RemoteAuditSink,
    decode_record,
    encode_record,
)
from signing.merkle import leaf_hash

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.siogw/loghost"
FP = "0f" * 32


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short private directory for the socket (sun_path is at most 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="lh-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fast_probes(monkeypatch: pytest.MonkeyPatch) -> float:
    """Health probes every 50 ms instead of 0.5 s (the tests wait for them)."""
    monkeypatch.setattr(RemoteAuditSink, "HEALTH_INTERVAL", 0.05)
    return 0.05


def rec(actor: str, i: int = 0, **details: Any) -> AuditRecord:
    return AuditRecord(
        actor=actor, event="query", outcome="success", cert_fingerprint=FP,
        details={"i": i, **details}, payload=b"env-%d" % i,
    )


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --- raw frames (the wire format of the module docstring, built by hand) --------------------
def frame(call_id: int, op: bytes, data: bytes) -> bytes:
    body = struct.pack(">IB", call_id, op[0]) + data
    return struct.pack(">I", len(body)) + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    (length,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    call_id, status = struct.unpack_from(">IB", body)
    return call_id, bytes([status]), body[5:]


async def dropped(reader: asyncio.StreamReader) -> bool:
    """True when the server closed this connection (end of stream, nothing sent)."""
    return await asyncio.wait_for(reader.read(), 5) == b""


# --- the wire encoding of a record ---------------------------------------------------------
def test_encode_decode_round_trip_keeps_every_field() -> None:
    for record in (
        AuditRecord(actor="Әлия Жанқожа", event="consent", outcome="success",
                     cert_fingerprint=FP,
                     details={"text": "Заявка №7 — «проверка» 🔐\x00\u2028", "n": -(2**52),
                              "ok": True, "none": None, "list": [1, "два", {"x": False}]},
                     payload=bytes(range(256))),
        AuditRecord(actor="a", event="refusal", outcome="refused"),  # no cert, no payload
        AuditRecord(actor="a", event="login", outcome="success", payload=b""),
    ):
        data = encode_record(record)
        assert decode_record(data) == record
        obj = json.loads(data)
        assert obj["payload"] == (
            None if record.payload is None else base64.b64encode(record.payload).decode()
        )
    # UTF-8 on the wire, not \u escapes
    assert "Әлия".encode() in encode_record(AuditRecord(actor="Әлия", event="x", outcome="y"))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda o: o["details"].update(amount=1.5), "float"),
        (lambda o: o["details"].update(amount=float("nan")), "float"),
        (lambda o: o.update(payload="not base64!"), "not a record"),
        (lambda o: o.update(payload="QUJ"), "not a record"),  # bad padding
        (lambda o: o.update(payload=12), "not a record"),
        (lambda o: o.pop("actor"), "actor"),
        (lambda o: o.update(actor=""), "actor"),
        (lambda o: o.update(event="Not An Event"), "event"),
        (lambda o: o.update(cert="ABC"), "cert_fingerprint"),
        (lambda o: o.update(details=[1, 2]), "details"),
    ],
)
def test_decode_record_rejects_what_a_record_may_not_hold(mutate: Any, needle: str) -> None:
    obj = json.loads(encode_record(rec("w", 1)))
    assert decode_record(json.dumps(obj).encode()) == rec("w", 1)  # the unmutated one is fine
    mutate(obj)
    with pytest.raises(ProtocolError) as ei:
        decode_record(json.dumps(obj, allow_nan=True).encode())
    assert needle in str(ei.value)


@pytest.mark.parametrize("data", [b"", b"{not json", b"[1,2]", b'"actor"', b"\xff{}", b"null"])
def test_decode_record_rejects_non_objects(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="not a record"):
        decode_record(data)


# --- many records from two workers, into the real audit log --------------------------------
def test_concurrent_records_from_two_workers_land_in_the_log_intact(
    sock_dir: Path, tmp_path: Path, ec_token_key: Any
) -> None:
    log_dir = tmp_path / "log"
    audit_log = AuditLog.open(log_dir, ec_token_key.signer, ORIGIN)
    sink = AuditLogSink(audit_log)
    per_client = 60
    sent: dict[tuple[str, int], AuditRecord] = {}
    for worker in ("w1", "w2"):
        for i in range(per_client):
            sent[(worker, i)] = AuditRecord(
                actor=f"аналитик-{worker}",
                event="query" if i % 3 else "refusal",
                outcome="success" if i % 3 else "refused",
                cert_fingerprint=FP if i % 2 else None,
                details={"worker": worker, "i": i, "request_id": f"{worker}-{i}",
                         "note": f"запрос {i} «ИИН» 🔎", "flags": [i % 2 == 0, None],
                         "nested": {"k": "ü" * (i % 5)}},
                payload=None if i % 10 == 0 else os.urandom(1 + i * 37),
            )

    async def scenario() -> dict[tuple[str, int], Receipt]:
        server = LogHostServer(sink, sock_dir / "loghost.sock")
        await server.start()
        assert (sock_dir / "loghost.sock").stat().st_mode & 0o777 == 0o600
        assert sock_dir.stat().st_mode & 0o777 == 0o700
        clients = {w: RemoteAuditSink(sock_dir / "loghost.sock") for w in ("w1", "w2")}
        for c in clients.values():
            await c.connect()
        try:
            keys = list(sent)
            receipts = await asyncio.gather(
                *(clients[w].record(sent[(w, i)]) for w, i in keys)
            )
            for c in clients.values():
                c.check()  # still healthy
            assert server.records == len(sent)
        finally:
            for c in clients.values():
                await c.close()
            await server.close()
        assert not (sock_dir / "loghost.sock").exists()
        return dict(zip(keys, receipts, strict=True))

    try:
        receipts = asyncio.run(scenario())
    finally:
        audit_log.close()

    seqs = [r.seq for r in receipts.values()]
    assert len(set(seqs)) == len(sent)
    assert all(r.tree_size > r.seq for r in receipts.values())
    stored = {rec.seq: (body, rec) for body, rec in iter_archive_records(log_dir)}
    for key, receipt in receipts.items():
        body, got = stored[receipt.seq]
        want = sent[key]
        assert leaf_hash(body) == receipt.leaf_hash
        assert (got.actor, got.event, got.outcome, got.cert_fingerprint) == (
            want.actor, want.event, want.outcome, want.cert_fingerprint)
        assert got.details == want.details
        assert got.payload == want.payload
    # nothing else but the log's own records (audit.opened) is there, and it verifies
    others = [r for s, (_b, r) in stored.items() if s not in set(seqs)]
    assert all(r.event.startswith("audit.") for r in others)
    report = verify_archive(log_dir, audit_log.trusted_keys(), origin=ORIGIN, strict=True)
    assert report.tree_size == len(stored) == len(sent) + len(others)


def test_a_waiter_that_gives_up_does_not_stop_the_log(
    sock_dir: Path, tmp_path: Path, ec_token_key: Any
) -> None:
    """In the log host, a call whose client goes away is cancelled while its record is
    being written (asyncio.wrap_future then cancels the log's future): the record is
    written all the same, and the log goes on acknowledging everyone else's records."""
    log_dir = tmp_path / "log"
    audit_log = AuditLog.open(log_dir, ec_token_key.signer, ORIGIN)
    sink = AuditLogSink(audit_log)

    async def scenario() -> list[Receipt]:
        server = LogHostServer(sink, sock_dir / "lh.sock")
        await server.start()
        worker = RemoteAuditSink(sock_dir / "lh.sock")
        await worker.connect()
        try:
            local = [asyncio.create_task(sink.record(rec("host", i))) for i in range(200)]
            remote = [asyncio.create_task(worker.record(rec("worker", i))) for i in range(50)]
            await asyncio.sleep(0)  # every local record is queued
            for task in local[::2]:
                task.cancel()
            done = await asyncio.wait_for(asyncio.gather(*local[1::2], *remote), 10)
            later = await asyncio.wait_for(worker.record(rec("worker", 999)), 10)
            return [*done, later]
        finally:
            await worker.close()
            await asyncio.wait_for(server.close(), 10)  # it waits for the appends it has

    try:
        receipts = asyncio.run(scenario())
    finally:
        audit_log.close()
    stored = [r for _b, r in iter_archive_records(log_dir) if r.event == "query"]
    # the cancelled waiters' records were written too: all 200 + 50 + 1
    assert len(stored) == 251
    assert len({r.seq for r in receipts}) == len(receipts) == 100 + 50 + 1
    verify_archive(log_dir, audit_log.trusted_keys(), origin=ORIGIN)


# --- the sink fails: the worker is told why and fails closed --------------------------------
class SwitchableSink(JsonlAuditSink):
    """A JSONL sink whose disk can be made to fail and recover (an outage, then repair)."""

    outage: str | None = None

    def check(self) -> None:
        if self.outage is not None:
            raise AuditUnavailable(self.outage)
        super().check()

    async def record(self, record: AuditRecord) -> Receipt:
        if self.outage is not None:
            raise AuditUnavailable(self.outage)
        return await super().record(record)


def test_failed_sink_is_reported_with_its_reason(
    sock_dir: Path, tmp_path: Path, fast_probes: float
) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")

    async def scenario() -> None:
        server = LogHostServer(sink, sock_dir / "lh.sock")
        await server.start()
        writer = RemoteAuditSink(sock_dir / "lh.sock")  # records, sees the refusal
        idle = RemoteAuditSink(sock_dir / "lh.sock")  # never records: learns by probes
        await writer.connect()
        await idle.connect()
        try:
            first = await writer.record(rec("w", 0))
            assert first.seq == 0
            await asyncio.sleep(fast_probes * 4)
            writer.check()
            idle.check()

            sink.fail("disk full")
            with pytest.raises(AuditUnavailable) as ei:
                await writer.record(rec("w", 1))
            assert ei.value.reason == "disk full"
            with pytest.raises(AuditUnavailable, match="disk full"):
                writer.check()  # at once, without waiting for a probe

            def idle_down() -> bool:
                try:
                    idle.check()
                except AuditUnavailable:
                    return True
                return False

            await eventually(idle_down)
            with pytest.raises(AuditUnavailable) as ei:
                await idle.record(rec("idle", 2))
            assert ei.value.reason == "disk full"
            assert server.records == 1
        finally:
            await writer.close()
            await idle.close()
            await server.close()

    asyncio.run(scenario())
    assert [r["details"]["i"] for r in sink.records()] == [0]


def test_worker_recovers_when_the_sink_does(
    sock_dir: Path, tmp_path: Path, fast_probes: float
) -> None:
    sink = SwitchableSink(tmp_path / "audit.jsonl")

    async def scenario() -> None:
        server = LogHostServer(sink, sock_dir / "lh.sock")
        await server.start()
        lost: list[str] = []
        client = RemoteAuditSink(sock_dir / "lh.sock", on_lost=lost.append)
        await client.connect()
        try:
            await client.record(rec("w", 0))
            sink.outage = "audit disk is read-only"
            with pytest.raises(AuditUnavailable, match="audit disk is read-only"):
                await client.record(rec("w", 1))
            await asyncio.sleep(fast_probes * 4)
            with pytest.raises(AuditUnavailable, match="read-only"):
                client.check()  # the probes keep reporting the outage
            with pytest.raises(AuditUnavailable, match="read-only"):
                await client.record(rec("w", 2))

            sink.outage = None

            def healthy() -> bool:
                try:
                    client.check()
                except AuditUnavailable:
                    return False
                return True

            await eventually(healthy)
            receipt = await client.record(rec("w", 3))
            assert receipt.seq == 1  # the refused ones took no place in the log
            assert lost == []  # an unhealthy log host is not a lost one
        finally:
            await client.close()
            await server.close()

    asyncio.run(scenario())
    assert [r["details"]["i"] for r in sink.records()] == [0, 3]


def test_closed_sink_is_unavailable_to_the_worker(sock_dir: Path, tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")

    async def scenario() -> None:
        server = LogHostServer(sink, sock_dir / "lh.sock")
        await server.start()
        client = RemoteAuditSink(sock_dir / "lh.sock")
        await client.connect()
        try:
            await client.record(rec("w", 0))
            await sink.close()
            with pytest.raises(AuditUnavailable, match="closed"):
                await client.record(rec("w", 1))
        finally:
            await client.close()
            await server.close()

    asyncio.run(scenario())


def test_receipt_lookup_answers_what_the_log_host_finds(sock_dir: Path, tmp_path: Path) -> None:
    """Issue 14: a worker asks the log host for the original receipt of a replayed
    query; the log host's lookup answers, ``None`` when it finds nothing; a lookup that
    is malformed or too long finds nothing and leaves the connection and the log
    healthy."""
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    asked: list[tuple[str, str]] = []

    def receipts(request_id: str, user_id: str) -> tuple[int, bytes, int] | None:
        asked.append((request_id, user_id))
        return (7, b"\x01" * 32, 8) if (request_id, user_id) == ("q-1", "anna") else None

    async def scenario() -> list[Any]:
        server = LogHostServer(sink, sock_dir / "lh.sock", receipts=receipts)
        await server.start()
        client = RemoteAuditSink(sock_dir / "lh.sock")
        await client.connect()
        try:
            got = [await client.original_receipt("q-1", "anna"),
                   await client.original_receipt("q-1", "boris"),
                   await client.original_receipt("q" * 300, "anna"),
                   await client._call(loghost.OP_RECEIPT, b"[1, 2]")]
            client.check()  # still healthy
            got.append(await client.record(rec("w", 0)))
            return got
        finally:
            await client.close()
            await server.close()

    found, other_user, too_long, malformed, appended = asyncio.run(scenario())
    assert found == (7, b"\x01" * 32, 8)
    assert other_user is None and too_long is None
    assert malformed == (loghost.ST_MALFORMED, b"not a receipt lookup")
    assert asked == [("q-1", "anna"), ("q-1", "boris")]  # the long id never reached it
    assert appended.seq == 0


# --- the log host dies ----------------------------------------------------------------------
_LOGHOST_PROCESS = r"""
import asyncio, sys
from pathlib import Path
from server.auditsink import JsonlAuditSink
from server.loghost import LogHostServer

class Stalling(JsonlAuditSink):
    async def record(self, record):
        if record.actor == "stall":  # never durable: its worker waits
            await asyncio.Event().wait()
        return await super().record(record)

async def main():
    server = LogHostServer(Stalling(sys.argv[2]), Path(sys.argv[1]))
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_log_host_death_fails_pending_and_later_records(
    sock_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No health probe during the test: the broken connection alone must be noticed.
    monkeypatch.setattr(RemoteAuditSink, "HEALTH_INTERVAL", 3600.0)
    path = sock_dir / "lh.sock"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOGHOST_PROCESS, str(path), str(tmp_path / "a.jsonl")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        async def scenario() -> None:
            lost_a: list[str] = []
            lost_b: list[str] = []
            waiting = RemoteAuditSink(path, on_lost=lost_a.append)  # records in flight
            writing = RemoteAuditSink(path, on_lost=lost_b.append)  # writes into the dead socket
            await waiting.connect()
            await writing.connect()
            assert (await waiting.record(rec("fine", 0))).seq == 0
            assert (await writing.record(rec("fine", 1))).seq == 1
            pending = [asyncio.create_task(waiting.record(rec("stall", i))) for i in range(5)]
            await asyncio.sleep(0.3)
            assert not any(t.done() for t in pending)
            waiting.check()
            proc.kill()
            proc.wait(5)  # dead, its sockets closed; this loop has not noticed yet
            with pytest.raises(AuditUnavailable, match="log host"):
                await asyncio.wait_for(writing.record(rec("fine", 2)), 2)
            results = await asyncio.wait_for(
                asyncio.gather(*pending, return_exceptions=True), 2
            )
            assert all(isinstance(r, AuditUnavailable) for r in results), results
            assert all("log host" in r.reason for r in results), results
            await asyncio.sleep(0.1)  # both the writer and the reader of `writing` saw it
            assert len(lost_a) == 1 and "log host" in lost_a[0]
            assert len(lost_b) == 1 and "log host" in lost_b[0]
            for client in (waiting, writing):
                with pytest.raises(AuditUnavailable, match="log host"):
                    client.check()
                for i in range(3):
                    with pytest.raises(AuditUnavailable, match="log host"):
                        await asyncio.wait_for(client.record(rec("fine", 10 + i)), 1)
                await client.close()
            assert len(lost_a) == 1 and len(lost_b) == 1

        asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait(10)
    assert [r["actor"] for r in JsonlAuditSink(tmp_path / "a.jsonl").records()] == [
        "fine", "fine"]


def test_no_log_host_no_connection(sock_dir: Path) -> None:
    async def scenario() -> None:
        client = RemoteAuditSink(sock_dir / "nobody.sock")
        with pytest.raises(AuditUnavailable, match="not connected"):
            client.check()
        with pytest.raises(AuditUnavailable, match="cannot reach the log host"):
            await client.connect(timeout=0.2)
        with pytest.raises(AuditUnavailable):
            await client.record(rec("w", 0))

    asyncio.run(scenario())


def test_peer_of_another_user_is_refused(
    sock_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")

    async def scenario() -> None:
        server = LogHostServer(sink, sock_dir / "lh.sock")
        await server.start()
        real_uid = os.getuid()
        # The server now believes it runs as another user: every peer is a stranger.
        monkeypatch.setattr(loghost.os, "getuid", lambda: real_uid + 4242)
        lost: list[str] = []
        client = RemoteAuditSink(sock_dir / "lh.sock", on_lost=lost.append)
        try:
            # Both sides check (issue 14, finding 12): the worker refuses this log host
            # before the log host gets the chance to refuse the worker.
            with pytest.raises(AuditUnavailable, match="not as this user"):
                await client.connect(timeout=1)
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(client.record(rec("w", 0)), 5)
            assert lost == []  # never connected: nothing was lost
            # and the log host refuses a peer of another user (a raw connection)
            reader, writer = await asyncio.open_unix_connection(str(sock_dir / "lh.sock"))
            with contextlib.suppress(ConnectionError):  # closed before or after our write
                writer.write(frame(1, b"A", encode_record(rec("w", 1))))
                await writer.drain()
                assert await dropped(reader)
            writer.close()
        finally:
            monkeypatch.undo()
            await client.close()
            await server.close()

    asyncio.run(scenario())
    assert sink.records() == []


# --- malformed frames: answered "M" or dropped; other workers are not disturbed ----------
def test_malformed_frames_do_not_disturb_other_workers(sock_dir: Path, tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    path = sock_dir / "lh.sock"
    good = encode_record(rec("raw", 100))

    async def scenario() -> list[int]:
        server = LogHostServer(sink, path)
        await server.start()
        worker = RemoteAuditSink(path)
        await worker.connect()
        seqs = [(await worker.record(rec("worker", 0))).seq]
        try:
            # 1. answered "M", the connection stays usable
            r, w = await asyncio.open_unix_connection(str(path))
            bad_appends = {
                7: b"{not json",
                8: b"[]",
                9: json.dumps({**json.loads(good), "details": {"x": 0.5}}).encode(),
                10: json.dumps({**json.loads(good), "payload": "***"}).encode(),
                11: json.dumps({**json.loads(good), "event": "BAD EVENT"}).encode(),
                12: b"\xff" * 10,
            }
            for call_id, data in bad_appends.items():
                w.write(frame(call_id, b"A", data))
            w.write(frame(13, b"Z", b""))  # no such operation
            await w.drain()
            answers = {}
            for _ in range(len(bad_appends) + 1):
                call_id, status, data = await read_answer(r)
                answers[call_id] = (status, data.decode())
            assert set(answers) == {*bad_appends, 13}
            assert all(status == b"M" for status, _ in answers.values()), answers
            assert "not a record" in answers[7][1]
            assert "float" in answers[9][1]
            assert "unknown operation" in answers[13][1]
            w.write(frame(14, b"H", b""))
            w.write(frame(15, b"A", good))
            await w.drain()
            got = dict([(a[0], a[1:]) for a in [await read_answer(r), await read_answer(r)]])
            assert got[14] == (b"0", b"")
            assert got[15][0] == b"0"
            seqs.append(json.loads(got[15][1])["seq"])

            # 2. dropped: an oversize length, a length too short for a header, a torn frame
            for bad, then_eof in (
                (struct.pack(">I", MAX_FRAME_BYTES + 1), False),
                (struct.pack(">I", 0xFFFFFFFF), False),
                (struct.pack(">I", 2) + b"\x00\x00", False),
                (frame(16, b"A", good)[:-5], True),  # the stream ends inside the frame
                (b"\x00\x00", True),  # ... inside the header
            ):
                r2, w2 = await asyncio.open_unix_connection(str(path))
                w2.write(bad)
                await w2.drain()
                if then_eof:
                    w2.write_eof()
                assert await dropped(r2), bad[:8]
                w2.close()
                # the other worker still appends, on its old connection
                seqs.append((await worker.record(rec("worker", len(seqs)))).seq)
                worker.check()
            # and the first raw connection is still served
            w.write(frame(17, b"A", good))
            await w.drain()
            call_id, status, data = await read_answer(r)
            assert (call_id, status) == (17, b"0")
            seqs.append(json.loads(data)["seq"])
            w.close()
            # a new connection is accepted as before
            r3, w3 = await asyncio.open_unix_connection(str(path))
            w3.write(frame(1, b"A", good))
            await w3.drain()
            call_id, status, data = await read_answer(r3)
            assert (call_id, status) == (1, b"0")
            seqs.append(json.loads(data)["seq"])
            w3.close()
        finally:
            await worker.close()
            await server.close()
        return seqs

    seqs = asyncio.run(scenario())
    stored = sink.records()
    # exactly the well-formed appends were recorded, in the order of their receipts
    assert seqs == list(range(len(seqs))) == [r["seq"] for r in stored]
    assert [r["actor"] for r in stored] == ["worker", "raw", *["worker"] * 5, "raw", "raw"]
