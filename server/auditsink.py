"""Where the gateway records events: the :class:`AuditSink` interface and its backends.

Every refused request, every login, consent, query and admin command goes through
``await sink.record(AuditRecord(...))``, which returns a :class:`Receipt` only once the
record is durable. A sink that cannot record raises :class:`audit.errors.AuditUnavailable`
(an :class:`~siogw_api.errors.AuditError`), which the error mapping turns into
``UNAVAILABLE``: queries fail closed when the audit log is down (R11).

Backends:

* :class:`AuditLogSink` wraps ``audit.AuditLog`` (the WORM log with Merkle checkpoints);
  it also serves the AuditService proofs. Used whenever ``audit.AuditLog`` is available.
* :class:`JsonlAuditSink` is a simple append-only JSONL file with the same canonical
  record encoding and leaf hashes, fsynced per record. It has no checkpoints or proofs;
  it exists for development set-ups without the audit package.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from audit.errors import AuditClosed, AuditUnavailable
from audit.record import AuditRecord, encode_record
from signing.merkle import leaf_hash
from siogw_api.timeutil import now_utc
from siogw_api.v1 import common_pb2


@dataclass(frozen=True)
class Receipt:
    """Proof of logging: the record's place in the log (``AuditReceipt`` on the wire)."""

    seq: int
    leaf_hash: bytes
    tree_size: int

    def to_proto(self) -> common_pb2.AuditReceipt:
        return common_pb2.AuditReceipt(
            seq=self.seq, leaf_hash=self.leaf_hash, tree_size=self.tree_size
        )


@runtime_checkable
class AuditSink(Protocol):
    """Records events durably; fails closed."""

    async def record(self, record: AuditRecord) -> Receipt:
        """Append ``record``; return its receipt once durable, or raise AuditUnavailable."""
        ...

    def check(self) -> None:
        """Raise :class:`AuditUnavailable` if a record would not be accepted now."""
        ...

    async def close(self) -> None:
        """Flush and close; later records raise :class:`AuditClosed`."""
        ...


class JsonlAuditSink:
    """Append-only JSONL file of canonical records (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        self._closed = False
        self._failed: str | None = None
        try:
            with self.path.open("rb") as fh:
                self._count = sum(1 for _ in fh)
        except FileNotFoundError:
            self._count = 0
        except OSError as exc:
            raise AuditUnavailable(f"cannot read the audit file {self.path}",
                                   detail=str(exc)) from exc

    def check(self) -> None:
        if self._closed:
            raise AuditClosed()
        if self._failed is not None:
            raise AuditUnavailable(self._failed)

    def fail(self, reason: str) -> None:
        """Put the sink in the failed state (an operator stop, or a detected fault)."""
        self._failed = reason

    def _append(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def record(self, record: AuditRecord) -> Receipt:
        async with self._lock:
            self.check()
            seq = self._count
            data = encode_record(record, seq, now_utc())
            try:
                await asyncio.to_thread(self._append, data + b"\n")
            except OSError as exc:
                # Our wording for the callers; the OS's text is the detail (logged).
                self._failed = "the audit file cannot be written"
                raise AuditUnavailable(self._failed, detail=f"{self.path}: {exc}") from exc
            self._count += 1
            return Receipt(seq=seq, leaf_hash=leaf_hash(data), tree_size=self._count)

    def records(self) -> list[dict[str, Any]]:
        """Every record as parsed JSON (tests and tooling)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def close(self) -> None:
        self._closed = True


class AuditLogSink:
    """Adapter over ``audit.AuditLog`` (H3): ``await append(record) -> Receipt``."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def check(self) -> None:
        health = self.log.health()
        if not health.ok:
            raise AuditUnavailable(health.reason or health.state)

    async def record(self, record: AuditRecord) -> Receipt:
        receipt = await self.log.append(record)
        return Receipt(
            seq=int(receipt.seq),
            leaf_hash=bytes(receipt.leaf_hash),
            tree_size=int(receipt.tree_size),
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.log.close)

