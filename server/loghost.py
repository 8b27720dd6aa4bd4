"""The log host: one process owns the audit log; worker processes append over a socket.

With ``server.workers > 1`` (ADR 0007) several gateway processes serve one port. The
audit log must stay single (one writer, one Merkle tree, seals chained in order) and the
violation rules must see every record, so the first process (the *log host*) keeps the
log, the rules and every service that reads the log, and the others append their records
to it through :class:`LogHostServer` on a Unix socket:

* :class:`LogHostServer` (in the log host) accepts connections from processes of the
  same user only (``SO_PEERCRED``), in a directory only that user can enter. Each record
  goes through the log host's own :class:`~server.auditsink.AuditSink`, so it gets the
  same group commit (fsync before the answer) and reaches the rules as if the log host
  had served the call.
* :class:`RemoteAuditSink` (in a worker) is an ``AuditSink``: ``record()`` returns the
  :class:`~server.auditsink.Receipt` only once the log host has made the record durable,
  and raises :class:`~audit.errors.AuditUnavailable` otherwise. A worker whose
  connection breaks fails closed at once: every later record is refused and
  :meth:`RemoteAuditSink.check` raises, so queries get ``UNAVAILABLE``. One record the
  log refuses (``MalformedRecord``: oversized, not encodable) is answered "M" and raised
  as that record's failure; neither side takes it for the log being unavailable.

The wire format is length-prefixed frames, pipelined (many records in flight on one
connection, answered in any order)::

    frame    = length:u32 body                       (big-endian, length of body)
    request  = call_id:u32 op:u8 data                op "A" append, "H" health,
                                                     "R" receipt lookup
    response = call_id:u32 status:u8 data            status "0" ok, "U" unavailable,
                                                     "C" closed, "M" malformed
    append data = canonical JSON {actor, event, outcome, cert, details, payload(base64)}
    lookup data = JSON {request_id, user_id}
    ok data     = JSON {seq, leaf_hash(hex), tree_size}   (append; lookup: or ``null``
                  when no answer was found) or b"" (health)
    error data  = UTF-8 reason

The receipt lookup (issue 14): a worker has no audit index, so when it refuses a query as
a ``REPLAY`` it asks the log host for the receipt of the record that answered that
request id to that user (:func:`server.query.original_receipt` over the log host's
index), and the refusal carries it as on a single process. A lookup that fails or times
out leaves the refusal without a receipt; it never fails the refusal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from audit.errors import AuditClosed, AuditUnavailable, MalformedRecord
from audit.record import AuditRecord
from server.auditsink import AuditSink, Receipt
from server.files import private_dir
from siogw_api.errors import SiogwError

log = logging.getLogger("siogw.loghost")

_LEN = struct.Struct(">I")
_HEAD = struct.Struct(">IB")  # call id, op or status
OP_APPEND = ord("A")
OP_HEALTH = ord("H")
OP_RECEIPT = ord("R")
ST_OK = ord("0")
ST_UNAVAILABLE = ord("U")
ST_CLOSED = ord("C")
ST_MALFORMED = ord("M")

#: The largest frame either side accepts. A record is at most the audit log's record
#: limit (1 MiB: one request envelope of at most ``MAX_RECORDABLE_MESSAGE_BYTES`` in
#: base64 plus capped details); twice that leaves room for the JSON around it.
MAX_FRAME_BYTES = 2 * 1024 * 1024

#: ``(seq, leaf_hash, tree_size)`` of the record that answered a request id sent by a
#: user, or None (see the receipt lookup in the module docstring).
ReceiptLookup = Callable[[str, str], tuple[int, bytes, int] | None]

#: The longest request id or user id a lookup carries (longer ones find nothing).
MAX_LOOKUP_ID_CHARS = 256

#: Defaults of the bounds below (``limits.loghost_*`` in the configuration).
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_MAX_IN_FLIGHT = 256


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def encode_record(record: AuditRecord) -> bytes:
    """What a worker sends for one record (see the module docstring)."""
    return json.dumps(
        {
            "actor": record.actor,
            "event": str(record.event),
            "outcome": str(record.outcome),
            "cert": record.cert_fingerprint,
            "details": dict(record.details),
            "payload": (
                base64.b64encode(record.payload).decode("ascii")
                if record.payload is not None else None
            ),
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")


def decode_record(data: bytes) -> AuditRecord:
    """The inverse of :func:`encode_record`; the record's own checks run again here."""
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        payload = obj.get("payload")
        return AuditRecord(
            actor=obj["actor"],
            event=obj["event"],
            outcome=obj["outcome"],
            cert_fingerprint=obj.get("cert"),
            details=obj.get("details") or {},
            payload=base64.b64decode(payload, validate=True) if payload is not None else None,
        )
    except KeyError as exc:  # one of the three names above: our own words
        raise ProtocolError(f"not a record: no {exc.args[0]!r} field") from exc
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        log.info("log host: not a record: %s: %s", type(exc).__name__, exc)
        raise ProtocolError("not a record") from exc
    except SiogwError as exc:  # the record's own validation (MalformedRecord)
        raise ProtocolError(exc.public_message()) from exc


def _frame(call_id: int, code: int, data: bytes) -> bytes:
    return _LEN.pack(_HEAD.size + len(data)) + _HEAD.pack(call_id, code) + data


async def _read_frame(
    reader: asyncio.StreamReader, body_timeout: float | None = None
) -> tuple[int, int, bytes] | None:
    """One frame, or None at a clean end of stream. Once its header arrived, the rest of
    the frame must follow within ``body_timeout`` seconds (a peer cannot hold a partial
    frame open for ever)."""
    try:
        head = await reader.readexactly(_LEN.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("stream ended inside a frame header") from exc
        return None
    (length,) = _LEN.unpack(head)
    if length < _HEAD.size or length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes (limit {MAX_FRAME_BYTES})")
    try:
        body = await asyncio.wait_for(reader.readexactly(length), body_timeout)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("stream ended inside a frame") from exc
    except TimeoutError as exc:
        raise ProtocolError(f"the rest of a frame did not come within {body_timeout} s") from exc
    call_id, code = _HEAD.unpack_from(body)
    return call_id, code, body[_HEAD.size:]


class LogHostServer:
    """Serves :data:`OP_APPEND` and :data:`OP_HEALTH` for ``sink`` on a Unix socket.

    Bounded (issue 14, findings 9 and 12): at most ``max_connections`` connections (more
    are closed at once), at most ``max_in_flight`` frames being answered per connection
    (the connection is not read further until one is answered: backpressure on the
    worker, not a task per frame), and a frame whose header arrived must be complete
    within ``timeout`` seconds.
    """

    def __init__(
        self, sink: AuditSink, path: Path, *, timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        receipts: ReceiptLookup | None = None,
    ) -> None:
        self.sink = sink
        self.receipts = receipts  # the receipt lookup (blocking: run in a thread)
        self.path = path
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.records = 0  # appended for workers (tests and logs)

    async def start(self) -> None:
        private_dir(self.path.parent, follow_links=False)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a process that died
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=2**16
        )
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        """Stop accepting; finish the appends already received (their workers wait)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
        except OSError as exc:
            log.error("log host: cannot read the peer's credentials: %s", exc)
            writer.close()
            return
        if uid != os.getuid():
            log.error("log host: refused a connection from uid %d (pid %d)", uid, pid)
            writer.close()
            return
        if self.connections >= self.max_connections:
            log.error("log host: refused a connection from pid %d: %d connections open",
                      pid, self.connections)
            writer.close()
            return
        self.connections += 1
        slots = asyncio.Semaphore(self.max_in_flight)
        try:
            while True:
                await slots.acquire()  # backpressure: stop reading while the cap is reached
                frame = await _read_frame(reader, self.timeout)
                if frame is None:
                    break
                call_id, op, data = frame
                task = asyncio.create_task(self._answer(writer, call_id, op, data))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(lambda _t: slots.release())
        except ProtocolError as exc:
            log.error("log host: dropped the connection of pid %d: %s", pid, exc)
        except ConnectionError:
            pass
        finally:
            self.connections -= 1
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, call_id: int, op: int, data: bytes
    ) -> None:
        code, out = await self._handle(op, data)
        if not writer.is_closing():
            writer.write(_frame(call_id, code, out))
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def _lookup(self, data: bytes) -> tuple[int, bytes]:
        return await _lookup_in(self.receipts, data)

    async def _handle(self, op: int, data: bytes) -> tuple[int, bytes]:
        try:
            if op == OP_HEALTH:
                self.sink.check()
                return ST_OK, b""
            if op == OP_RECEIPT:
                return await self._lookup(data)
            if op != OP_APPEND:
                return ST_MALFORMED, f"unknown operation {op}".encode()
            record = decode_record(data)
            receipt = await self.sink.record(record)
        except ProtocolError as exc:
            return ST_MALFORMED, str(exc).encode()  # our own wording (decode_record)
        except MalformedRecord as exc:  # this record's failure, not the log's
            return ST_MALFORMED, exc.public_message().encode()
        except AuditClosed:
            return ST_CLOSED, b"the log host's audit log is closed"
        except AuditUnavailable as exc:
            return ST_UNAVAILABLE, exc.reason.encode()
        except SiogwError as exc:  # other audit failures
            log.warning("log host: append failed: %s", exc.diagnostics())
            return ST_UNAVAILABLE, exc.public_message().encode()
        except Exception as exc:  # never let one record take the connection down
            log.error("log host: append failed", exc_info=exc)
            return ST_UNAVAILABLE, f"internal error in the log host: {type(exc).__name__}".encode()
        self.records += 1
        return ST_OK, json.dumps(
            {"seq": receipt.seq, "leaf_hash": receipt.leaf_hash.hex(),
             "tree_size": receipt.tree_size}
        ).encode()


async def _lookup_in(receipts: ReceiptLookup | None, data: bytes) -> tuple[int, bytes]:
    """Answer one receipt lookup (see the module docstring)."""
    try:
        obj = json.loads(data)
        request_id, user_id = obj["request_id"], obj["user_id"]
        if not (isinstance(request_id, str) and isinstance(user_id, str)):
            raise TypeError("ids must be strings")
    except (ValueError, TypeError, KeyError, RecursionError):
        return ST_MALFORMED, b"not a receipt lookup"
    found = None
    if (receipts is not None and 0 < len(request_id) <= MAX_LOOKUP_ID_CHARS
            and 0 < len(user_id) <= MAX_LOOKUP_ID_CHARS):
        found = await asyncio.to_thread(receipts, request_id, user_id)
    if found is None:
        return ST_OK, b"null"
    seq, leaf_hash, tree_size = found
    return ST_OK, json.dumps({"seq": seq, "leaf_hash": leaf_hash.hex(),
                              "tree_size": tree_size}).encode()


class RemoteAuditSink:
    """An :class:`~server.auditsink.AuditSink` that appends through the log host.

    ``on_lost`` is called once when the connection to the log host breaks (a worker
    uses it to stop serving: its records could no longer be logged).

    Every call waits at most ``timeout`` seconds for its answer (issue 14, finding 11):
    past it the call raises :class:`~audit.errors.AuditUnavailable` and the sink reports
    itself unavailable (:meth:`check`, hence health ``NOT_SERVING`` and queries
    ``UNAVAILABLE`` at once) until a health probe is answered again. At most
    ``max_in_flight`` calls are sent at once; more wait their turn. The peer is checked
    on connect: it must run as this user (``SO_PEERCRED``, as the log host checks us).
    """

    HEALTH_INTERVAL = 0.5  # seconds between health probes while idle

    def __init__(
        self, path: Path, *, on_lost: Callable[[str], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.path = path
        self.on_lost = on_lost
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._next_id = 0
        self._failed: str | None = "not connected to the log host"
        self._closed = False
        self._unhealthy: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, *, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(self.path), limit=2**16
                )
                break
            except OSError as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    raise AuditUnavailable(
                        f"cannot reach the log host at {self.path}", detail=str(exc)
                    ) from exc
                await asyncio.sleep(0.05)
        self._check_peer()
        self._failed = None
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="siogw-loghost-reader"),
            asyncio.create_task(self._health_loop(), name="siogw-loghost-health"),
        ]

    def _check_peer(self) -> None:
        """Refuse a log host that runs as another user (a socket planted in our place)."""
        assert self._writer is not None
        sock = self._writer.get_extra_info("socket")
        try:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
        except OSError as exc:
            self._writer.close()
            raise AuditUnavailable("cannot read the log host's credentials",
                                   detail=str(exc)) from exc
        if uid != os.getuid():
            self._writer.close()
            raise AuditUnavailable(f"the process listening on {self.path} (pid {pid}) "
                                   f"runs as uid {uid}, not as this user")

    # -- AuditSink ---------------------------------------------------------------------------
    def check(self) -> None:
        if self._closed:
            raise AuditClosed()
        if self._failed is not None:
            raise AuditUnavailable(self._failed)
        if self._unhealthy is not None:
            raise AuditUnavailable(self._unhealthy)

    async def record(self, record: AuditRecord) -> Receipt:
        code, data = await self._call(OP_APPEND, encode_record(record))
        if code == ST_OK:
            try:
                obj = json.loads(data)
                return Receipt(seq=int(obj["seq"]), leaf_hash=bytes.fromhex(obj["leaf_hash"]),
                               tree_size=int(obj["tree_size"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise AuditUnavailable("the log host sent a malformed receipt",
                                       detail=str(exc)) from exc
        reason = data.decode("utf-8", "replace")
        if code == ST_CLOSED:
            raise AuditUnavailable(reason or "the log host's audit log is closed")
        if code == ST_MALFORMED:  # this record only: the connection stays healthy
            raise MalformedRecord(f"the log host refused the record: {reason}")
        self._unhealthy = reason or "the log host refused the record"
        raise AuditUnavailable(self._unhealthy)

    async def original_receipt(
        self, request_id: str, user_id: str
    ) -> tuple[int, bytes, int] | None:
        """The log host's receipt of the record that answered ``request_id`` sent by
        ``user_id`` (see the receipt lookup in the module docstring); None when there is
        none, or when the lookup fails (the refusal then goes without it)."""
        if not (0 < len(request_id) <= MAX_LOOKUP_ID_CHARS
                and 0 < len(user_id) <= MAX_LOOKUP_ID_CHARS):
            return None
        try:
            code, data = await self._call(OP_RECEIPT, json.dumps(
                {"request_id": request_id, "user_id": user_id}).encode())
            if code != ST_OK:
                return None
            obj = json.loads(data)
            if obj is None:
                return None
            return int(obj["seq"]), bytes.fromhex(obj["leaf_hash"]), int(obj["tree_size"])
        except (AuditUnavailable, AuditClosed, KeyError, ValueError, TypeError) as exc:
            log.warning("receipt lookup at the log host failed: %s", exc)
            return None

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._fail_pending(AuditClosed())

    # -- internals ---------------------------------------------------------------------------
    async def _call(self, op: int, data: bytes) -> tuple[int, bytes]:
        if op == OP_APPEND:
            self.check()  # fail fast while the log host reports its log unavailable
        else:
            self._check_link()
        if op == OP_HEALTH:  # never queued behind stalled appends
            return await self._send(op, data)
        async with self._slots:
            return await self._send(op, data)

    async def _send(self, op: int, data: bytes) -> tuple[int, bytes]:
        if op == OP_APPEND:
            self.check()  # it may have gone unavailable while this call waited its turn
        else:
            self._check_link()
        assert self._writer is not None
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        call_id = self._next_id
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            self._writer.write(_frame(call_id, op, data))
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(call_id, None)
            log.error("the connection to the log host broke: %s: %s", type(exc).__name__, exc)
            self._lost("the connection to the log host broke")
            raise AuditUnavailable(self._failed or "log host unreachable") from exc
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._pending.pop(call_id, None)
            if op == OP_RECEIPT:  # a slow index, not a stalled log: nothing to report
                raise AuditUnavailable("the receipt lookup timed out") from None
            self._unhealthy = f"the log host did not answer within {self.timeout:g} s"
            log.error("%s; reporting the audit log unavailable", self._unhealthy)
            raise AuditUnavailable(self._unhealthy) from None

    def _check_link(self) -> None:
        if self._closed:
            raise AuditClosed()
        if self._failed is not None:
            raise AuditUnavailable(self._failed)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reason = "the log host closed the connection"
        try:
            while True:
                frame = await _read_frame(self._reader)
                if frame is None:
                    break
                call_id, code, data = frame
                future = self._pending.pop(call_id, None)
                if future is not None and not future.done():
                    future.set_result((code, data))
        except asyncio.CancelledError:
            raise
        except (ProtocolError, ConnectionError) as exc:
            log.error("the connection to the log host broke: %s: %s", type(exc).__name__, exc)
            reason = "the connection to the log host broke"
        if not self._closed:
            self._lost(reason)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.HEALTH_INTERVAL)
            try:
                code, data = await self._call(OP_HEALTH, b"")
            except AuditUnavailable:
                if self._failed is not None or self._closed:
                    return
                continue  # timed out: reported unhealthy; probe again
            self._unhealthy = None if code == ST_OK else (
                data.decode("utf-8", "replace") or "the audit log is unavailable"
            )

    def _lost(self, reason: str) -> None:
        if self._failed is not None:
            return
        self._failed = reason
        log.error("audit log unreachable: %s; refusing every call that needs a record", reason)
        self._fail_pending(AuditUnavailable(reason))
        if self.on_lost is not None:
            self.on_lost(reason)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)


__all__ = [
    "LogHostServer",
    "RemoteAuditSink",
    "decode_record",
    "encode_record",
]
