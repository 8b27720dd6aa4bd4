"""The audit log writer: group-committed, fsync'd appends; sealed, signed segments.

Directory layout (``root`` is the directory given to :meth:`AuditLog.open`)::

    root/LOCK                      flock: one writer process at a time
    root/checkpoint                the latest signed checkpoint (replaced atomically)
    root/live/seg-NNNNNNNN.log     the current segment (append only), plus any rolled
                                   segments still waiting for their seal
    root/archive/seg-NNNNNNNN.log.gz   sealed segments, gzip (mtime 0), mode 0400
    root/archive/seg-NNNNNNNN.seal     the signed seal checkpoint, mode 0400
    root/archive/keys.json         audit key history (see :mod:`audit.keys`)
    root/tree/level-KK.bin         stored Merkle levels (derived, rebuildable)
    root/torn/                     bytes cut from a torn tail at recovery (evidence)

One writer thread takes every queued append, encodes the batch, writes it with one
``write`` and one ``fsync`` (group commit), then resolves the callers' futures. A
record is acknowledged only after its fsync. Any write error puts the log in the failed
state: pending and later appends raise :class:`~audit.errors.AuditUnavailable`.

Rolling and sealing: when the live segment reaches ``segment_max_records`` or
``segment_max_bytes``, or its first record is ``seal_max_age`` seconds old, or at a
clean stop (:meth:`AuditLog.close`), the writer *rolls* (starts the next live file, notes the tree
size and root) and hands the full segment to the sealer thread, so appends never wait
for compression or the signer. The sealer, strictly in order, signs the seal checkpoint,
writes ``.log.gz`` (temp, fsync, rename, chmod 0400), writes ``.seal`` the same way,
then removes the live file. A failing signer is retried; past ``seal_grace_seconds``
the log fails closed. Recovery after a crash at any step: a ``.gz`` without ``.seal`` is
discarded and the seal redone; a live file whose seal exists is checked against the
seal's digest and removed; rolled-but-unsealed segments are queued for sealing again.

Checkpoints: a checkpointer thread signs a plain C2SP checkpoint of the whole tree every
``checkpoint_interval`` seconds while the tree grows (none while idle); the sealer signs
one before every seal (so a seal never covers more than the latest checkpoint file);
:meth:`AuditLog.close` signs a last one with the extension line ``stopped`` after
sealing everything, and the next open signs one without it. Each is written atomically
to ``root/checkpoint``, to ``witness_dir/checkpoint`` when a witness directory is given
(a place outside the log directory a verifier trusts more), and handed to
``on_checkpoint`` (e.g. to store it in a database); :attr:`AuditLog.latest_checkpoint`
returns it. A crash can leave at most ``checkpoint_interval`` seconds of acknowledged
records (and a torn frame) past the latest checkpoint; ``siogw audit verify`` reports
them as such, while any record cut below a checkpoint it is given is an error.

At rest: directories 0700, files 0600, sealed files 0400 (set explicitly, whatever the
umask); with ``immutable_seals`` and CAP_LINUX_IMMUTABLE, sealed files also get the
immutable attribute (``FS_IOC_SETFLAGS``); without the capability this is skipped and
logged once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
import fcntl
import gzip
import hashlib
import json
import logging
import os
import queue
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audit.archive import (
    ARCHIVE_DIR,
    CHECKPOINT_FILE,
    KEYS_FILE,
    LIVE_DIR,
    LIVE_SEGMENT_RE,
    SEAL_RE,
    SEALED_SEGMENT_RE,
    STOPPED_EXT,
    seal_name,
    segment_name,
)
from audit.errors import AuditClosed, AuditUnavailable, MalformedRecord, SegmentError
from audit.keys import ensure_current, read_history
from audit.record import AuditRecord, EventType, Outcome, decode_record, encode_record, format_time
from audit.segments import MAGIC, FrameScan, encode_frame, parse_seal, scan_frames, seal_extensions
from audit.tree import TreeStore
from signing.api import Signer
from signing.merkle import ZERO_HASH_HEX, consistency_proof, inclusion_proof, leaf_hash
from signing.note import Checkpoint, TrustedKey, open_checkpoint, sign_checkpoint
from siogw_api.errors import AuditError, ConfigError, SiogwError
from siogw_api.timeutil import now_utc

log = logging.getLogger(__name__)

#: What callers are told when the log failed without a reason of ours (never the OS's).
_UNAVAILABLE = "the audit log is unavailable"


@dataclass(frozen=True)
class AuditConfig:
    """Limits of the audit log. All have safe production defaults.

    * ``segment_max_records`` / ``segment_max_bytes``: a live segment is sealed once it
      holds this many records or bytes (checked after each batch).
    * ``max_record_bytes``: an encoded record larger than this is refused
      (:class:`~audit.errors.MalformedRecord`), the log stays healthy.
    * ``max_batch``: at most this many appends share one write + fsync.
    * ``seal_grace_seconds``: how long sealing may keep failing (signer down) while
      appends continue (rolled segments wait for their seal); past it the log fails
      closed.
    * ``seal_retry_seconds``: pause between sealing attempts while the signer fails.
    * ``queue_limit``: appends waiting for the writer; more raise ``AuditUnavailable``.
    * ``checkpoint_interval``: while records arrive, a signed checkpoint of the whole
      tree at least this often (seconds); none while idle.
    * ``seal_max_age``: a live segment is sealed at the latest this many seconds after
      its first record (and always at a clean stop), however small.
    * ``immutable_seals``: also set the immutable attribute on sealed files (needs
      CAP_LINUX_IMMUTABLE; skipped and logged once without it). Off by default so that
      test and development trees stay removable; turn it on in production.
    """

    segment_max_records: int = 100_000
    segment_max_bytes: int = 64 << 20
    max_record_bytes: int = 1 << 20
    max_batch: int = 4096
    seal_grace_seconds: float = 300.0
    seal_retry_seconds: float = 5.0
    queue_limit: int = 100_000
    checkpoint_interval: float = 1.0
    seal_max_age: float = 3600.0
    immutable_seals: bool = False

    def __post_init__(self) -> None:
        if self.segment_max_records < 1 or self.segment_max_bytes < 1024:
            raise ConfigError("segment limits too small")
        if self.max_batch < 1 or self.max_record_bytes < 256 or self.queue_limit < 1:
            raise ConfigError("bad audit batch/record/queue limits")
        if self.seal_grace_seconds < 0 or self.seal_retry_seconds < 0:
            raise ConfigError("negative audit seal timing")
        if not 0 < self.checkpoint_interval <= 3600:
            raise ConfigError("audit checkpoint_interval must be in (0, 3600] seconds")
        if not 0 < self.seal_max_age <= 31 * 86400:
            raise ConfigError("audit seal_max_age must be in (0, 31 days] seconds")


@dataclass(frozen=True)
class Receipt:
    """Proof of acknowledgment: the record is durable at ``seq`` with ``leaf_hash``.

    ``tree_size`` is the size of the tree right after the batch that holds it; ask the
    log for a checkpoint of at least that size and an inclusion proof to check it.
    """

    origin: str
    seq: int
    leaf_hash: bytes
    tree_size: int
    time: _dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "seq": self.seq,
            "leaf_hash": self.leaf_hash.hex(),
            "tree_size": self.tree_size,
            "time": format_time(self.time),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Receipt:
        try:
            return cls(
                origin=str(obj["origin"]),
                seq=int(obj["seq"]),
                leaf_hash=bytes.fromhex(obj["leaf_hash"]),
                tree_size=int(obj["tree_size"]),
                time=_dt.datetime.fromisoformat(obj["time"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedRecord("malformed receipt", detail=str(exc)) from exc


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its signed-note bytes (what clients store and verify)."""

    checkpoint: Checkpoint
    note: bytes

    @property
    def stopped(self) -> bool:
        """Signed at a clean stop: nothing was appended after it (until the next open)."""
        return STOPPED_EXT in self.checkpoint.extensions


#: Called with each checkpoint the log signs (``AuditLog.open(on_checkpoint=...)``).
CheckpointHook = Callable[[SignedCheckpoint], None]


@dataclass(frozen=True)
class Proof:
    """An inclusion (``kind="inclusion"``, ``first`` = leaf index) or consistency proof."""

    kind: str
    first: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        key = "leaf_index" if self.kind == "inclusion" else "size1"
        return {"type": self.kind, key: self.first, "tree_size": self.tree_size,
                "hashes": [h.hex() for h in self.hashes]}


@dataclass(frozen=True)
class Health:
    """``state`` is ok, degraded (sealing failing, within grace), failed or closed."""

    state: str
    reason: str | None
    tree_size: int
    sealed_size: int
    sealed_segments: int
    live_records: int
    seal_failing_since: _dt.datetime | None
    pending_seals: int = 0

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "degraded")


class _Pending:
    __slots__ = ("future", "record")

    def __init__(self, record: AuditRecord) -> None:
        self.record = record
        self.future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        # A queued record is written whatever its waiter does. Running futures cannot be
        # cancelled: a cancelled waiter (``asyncio.wrap_future`` cancels the future of an
        # ``append`` whose task is cancelled, e.g. a gRPC call the client gave up) must not
        # make the writer's set_result raise InvalidStateError and kill the writer thread.
        self.future.set_running_or_notify_cancel()


_STOP = object()


@dataclass
class _Rolled:
    """A full segment handed from the writer to the sealer."""

    number: int
    size: int
    root: bytes
    length: int
    first_seq: int
    first_time: str
    last_time: str
    done: concurrent.futures.Future[None]


class _SealRequest:
    def __init__(self) -> None:
        self.done: concurrent.futures.Future[concurrent.futures.Future[None] | None] = (
            concurrent.futures.Future()
        )


DIR_MODE = 0o700
FILE_MODE = 0o600
SEALED_MODE = 0o400
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_IMMUTABLE_FL = 0x10
_immutable_warned = False


def _set_immutable(path: Path) -> bool:
    """Set the immutable attribute (needs CAP_LINUX_IMMUTABLE); False, logged once, if not."""
    global _immutable_warned
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags | _FS_IMMUTABLE_FL))
        return True
    except OSError as exc:
        if not _immutable_warned:
            _immutable_warned = True
            log.warning("audit: cannot make sealed files immutable (%s); relying on "
                        "mode 0400 (see docs/usage.md for a WORM mount)", exc.strerror)
        return False
    finally:
        os.close(fd)


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file_durably(path: Path, data: bytes, mode: int = SEALED_MODE) -> None:
    """temp + write + fsync + rename + chmod + fsync(dir)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _remove(path: Path) -> None:
    try:
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        path.unlink()
    except FileNotFoundError:
        pass


class AuditLog:
    """The WORM audit log. Build with :meth:`open`; see the package docstring."""

    def __init__(
        self,
        root: Path,
        signer: Signer,
        origin: str,
        config: AuditConfig,
        witness_dir: Path | None = None,
        on_checkpoint: Callable[[SignedCheckpoint], None] | None = None,
    ) -> None:
        self.root = root
        self.witness_dir = witness_dir
        self._on_checkpoint = on_checkpoint
        self._cp_lock = threading.Lock()  # serialises signing + publishing checkpoints
        self._latest: SignedCheckpoint | None = None
        self._cp_wakeup = threading.Event()
        self._cp_stop = False
        self._checkpointer: threading.Thread | None = None
        self._witness_failing = False
        self._live_started: float | None = None
        self.origin = origin
        self.config = config
        self._signer = signer
        self._on_checkpoint = on_checkpoint
        self._archive = root / ARCHIVE_DIR
        self._live_dir = root / LIVE_DIR
        self._lock = threading.Lock()  # guards tree + counters read by other threads
        self._queue: queue.Queue[Any] = queue.Queue()
        self._seal_queue: queue.Queue[Any] = queue.Queue()
        self._seal_wakeup = threading.Event()
        self._failed: str | None = None
        self._closed = False
        self._lock_fd = -1
        self._tree = TreeStore(root / "tree")
        self._keys: list[TrustedKey] = []
        # sealed state (owned by the sealer thread once it runs)
        self._sealed_size = 0
        self._sealed_segments = 0
        self._prev_seal_hash = ZERO_HASH_HEX
        self._pending_seals = 0
        self._seal_failing_since: float | None = None
        self._seal_failing_at: _dt.datetime | None = None
        self._seal_error = ""
        self._seal_failures = 0
        self._seal_attempt_started: float | None = None
        self._last_rolled: _Rolled | None = None
        # live segment state (owned by the writer thread)
        self._live_number = 1
        self._live_fd = -1
        self._live_bytes = 0
        self._live_records = 0
        self._live_first: tuple[int, str] | None = None
        self._last_time: _dt.datetime | None = None
        self._last_time_text = ""
        self._thread: threading.Thread | None = None
        self._sealer: threading.Thread | None = None
        #: Called by the writer thread after each group commit: (records, fsync seconds)
        #: (the gateway's metrics; must not raise or block).
        self.on_commit: Callable[[int, float], None] | None = None
        self._checkpoint_at: float | None = None  # time.time() of the last checkpoint
        self._seal_at: float | None = None  # and of the last seal

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        signer: Signer,
        origin: str,
        config: AuditConfig | None = None,
        *,
        checkpoint_interval: float | None = None,
        seal_max_age: float | None = None,
        witness_dir: str | os.PathLike[str] | None = None,
        on_checkpoint: Callable[[SignedCheckpoint], None] | None = None,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> AuditLog:
        """Open (creating if needed) the log at ``directory`` and recover after a crash.

        ``checkpoint_interval`` / ``seal_max_age`` override those of ``config``.
        ``witness_dir``: a directory (outside the log directory) where every new
        checkpoint is also written, atomically, as ``checkpoint``; it must be writable.
        ``on_checkpoint(signed)`` is called with every new checkpoint, from the thread
        that signed it, after it is on disk, under the publishing lock (keep it short:
        checkpoints wait for it); its exceptions are logged, never raised.
        ``on_commit(records, fsync_seconds)`` is called by the writer after each group
        commit (metrics; it must not raise or block).

        Recovery truncates a torn tail (keeping the cut bytes under ``torn/`` and
        recording an ``audit.recovered`` event), completes or redoes interrupted seals,
        rebuilds the Merkle levels when they disagree with the last seal, and rotates
        the audit key when ``signer`` is a new key (``audit.key_rotated`` event).

        ``on_checkpoint`` is called with every checkpoint the log signs (seals included),
        after it is signed, so that it can be kept outside the log directory (the
        gateway stores it in its database). An exception it raises is the caller's
        failure: it propagates to whoever asked for the checkpoint (or fails the seal,
        which the sealer retries).
        """
        if not origin or any(c.isspace() for c in origin) or "+" in origin:
            raise ConfigError(f"bad audit log origin {origin!r} (no spaces or '+')")
        root = Path(directory)
        cfg = config or AuditConfig()
        if checkpoint_interval is not None:
            cfg = replace(cfg, checkpoint_interval=checkpoint_interval)
        if seal_max_age is not None:
            cfg = replace(cfg, seal_max_age=seal_max_age)
        witness = None if witness_dir is None else Path(witness_dir)
        self = cls(root, signer, origin, cfg, witness, on_checkpoint)
        self.on_commit = on_commit
        try:
            self._open_locked()
        except BaseException:
            self._shutdown_threads()
            self._release()
            raise
        return self

    def _open_locked(self) -> None:
        for d in (self.root, self._archive, self._live_dir):
            _make_dir(d)
        if self.witness_dir is not None:
            try:
                self.witness_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            except OSError as exc:
                raise ConfigError("audit witness directory cannot be created",
                                  detail=str(self.witness_dir)) from exc
            if not os.access(self.witness_dir, os.W_OK | os.X_OK):
                raise ConfigError("audit witness directory is not writable",
                                  detail=str(self.witness_dir))
        self._lock_fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, FILE_MODE)
        os.fchmod(self._lock_fd, FILE_MODE)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AuditError("audit log is open in another process", detail=str(self.root)) \
                from exc
        recovered, rolled = self._recover()
        now_text = format_time(now_utc())
        self._keys, previous = ensure_current(
            self._archive / KEYS_FILE, self.origin, self._signer, self._sealed_size, now_text
        )
        self._load_latest_checkpoint()
        for r in rolled:
            self._hand_to_sealer(r)
        self._sealer = threading.Thread(target=self._seal_loop, name="audit-sealer",
                                        daemon=True)
        self._sealer.start()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                              name="audit-checkpointer", daemon=True)
        self._checkpointer.start()
        for rec in recovered:
            self.append_sync(rec)
        if previous is not None:
            self.append_sync(
                AuditRecord(
                    actor="audit",
                    event=EventType.AUDIT_KEY_ROTATED,
                    outcome=Outcome.SUCCESS,
                    details={
                        "key_id": self._signer.key_id,
                        "previous_key_id": previous.key_id,
                        "algorithm": self._signer.algorithm.value,
                        "public_key_pem": self._keys[-1].public_pem(),
                        "valid_from_size": self._keys[-1].valid_from_size,
                    },
                )
            )
        # Supersede a ``stopped`` checkpoint at once: the log is running again.
        try:
            self._publish()
        except SiogwError as exc:
            log.warning("audit: cannot sign the opening checkpoint (retried): %s",
                        exc.diagnostics())
            self._cp_wakeup.set()

    def _load_latest_checkpoint(self) -> None:
        """The last checkpoint this log wrote, if it still verifies (else ignored)."""
        path = self.root / CHECKPOINT_FILE
        try:
            note = path.read_bytes()
            cp, _ = open_checkpoint(note, self._keys, origin=self.origin, where=str(path))
        except FileNotFoundError:
            return
        except (OSError, SiogwError) as exc:
            log.warning("audit: ignoring unreadable %s: %s", path, exc)
            return
        if cp.size <= self._tree.size:
            self._latest = SignedCheckpoint(cp, note)

    def _recover(self) -> tuple[list[AuditRecord], list[_Rolled]]:
        archive, live = self._archive, self._live_dir
        for p in list(archive.iterdir()) + list(live.iterdir()):
            if p.name.endswith(".tmp"):
                _remove(p)
        for p in list(archive.iterdir()) + list(live.iterdir()):
            mode = SEALED_MODE if SEAL_RE.match(p.name) or SEALED_SEGMENT_RE.match(p.name) \
                else FILE_MODE
            try:
                if stat.S_IMODE(p.stat().st_mode) != mode:
                    os.chmod(p, mode)
            except OSError:  # e.g. immutable: leave it
                pass
        if (self.root / "torn").is_dir():
            _make_dir(self.root / "torn")
        seal_numbers = sorted(
            int(m.group(1)) for p in archive.iterdir() if (m := SEAL_RE.match(p.name))
        )
        if seal_numbers and seal_numbers != list(range(1, len(seal_numbers) + 1)):
            raise AuditError("archive seals are not numbered 1..N", detail=str(archive))
        last = seal_numbers[-1] if seal_numbers else 0
        live_numbers = sorted(
            int(m.group(1)) for p in live.iterdir() if (m := LIVE_SEGMENT_RE.match(p.name))
        )
        # A .gz without its .seal: the seal was interrupted; redo it from the live file.
        for p in archive.iterdir():
            m = SEALED_SEGMENT_RE.match(p.name)
            if m and int(m.group(1)) > last:
                if int(m.group(1)) not in live_numbers:
                    raise AuditError("sealed segment without seal or live copy", detail=str(p))
                _remove(p)
        if last:
            keys = self._history_keys()
            seal_path = archive / seal_name(last)
            seal_bytes = seal_path.read_bytes()
            cp, _ = open_checkpoint(seal_bytes, keys, origin=self.origin, where=str(seal_path))
            seal = parse_seal(cp, where=str(seal_path))
            self._sealed_size = cp.size
            self._sealed_segments = last
            self._prev_seal_hash = hashlib.sha256(seal_bytes).hexdigest()
            self._last_time = _dt.datetime.fromisoformat(seal.last_time)
            self._last_time_text = seal.last_time
            # A live file that was already sealed (crash before its removal): it must
            # match its seal; then it goes.
            for n in [n for n in live_numbers if n <= last]:
                path = live / segment_name(n)
                if n != last:
                    raise AuditError("stale live segment far behind the seals",
                                     detail=str(path))
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest != seal.segment_sha256:
                    raise AuditError("live segment differs from its seal", detail=str(path))
                _remove(path)
                live_numbers.remove(n)
            self._restore_tree(cp)
        expected = list(range(last + 1, last + 1 + len(live_numbers)))
        if live_numbers != expected:
            raise AuditError("live segments are not consecutive after the last seal",
                             detail=", ".join(segment_name(n) for n in live_numbers))
        self._tree.reset_to(self._sealed_size)
        rolled: list[_Rolled] = []
        for n in live_numbers[:-1]:
            rolled.append(self._recover_rolled(n))
        self._live_number = live_numbers[-1] if live_numbers else last + 1
        return self._recover_live(), rolled

    def _history_keys(self) -> list[TrustedKey]:
        keys = read_history(self._archive / KEYS_FILE)
        if not keys:
            raise AuditError("archive has seals but no key history", detail=str(self._archive))
        return keys

    def _restore_tree(self, cp: Checkpoint) -> None:
        """Make the stored levels match the last seal; rebuild from segments if not."""
        tree = self._tree
        try:
            if tree.stored_leaves() >= cp.size:
                tree.reset_to(cp.size)
                if tree.root() == cp.root_hash:
                    return
        except SiogwError:
            pass
        log.warning("rebuilding audit Merkle levels from %d sealed segments",
                    self._sealed_segments)
        tree.reset_to(0)
        for n in range(1, self._sealed_segments + 1):
            data = gzip.decompress((self._archive / (segment_name(n) + ".gz")).read_bytes())
            tree.append(leaf_hash(b) for b in scan_frames(data).bodies)
        if tree.size != cp.size or tree.root() != cp.root_hash:
            raise AuditError("sealed segments do not match the last seal; run audit verify")

    def _scan_records(self, path: Path, data: bytes) -> tuple[FrameScan, list[bytes]]:
        """Check a live file's records continue the tree; return the scan and leaves."""
        scan = scan_frames(data)
        expected = self._tree.size
        leaves = []
        for body in scan.bodies:
            rec = decode_record(body)
            if rec.seq != expected:
                raise SegmentError(f"expected seq {expected}", where=str(path), seq=rec.seq)
            if self._live_first is None:
                self._live_first = (rec.seq, format_time(rec.time))
            self._last_time = rec.time
            self._last_time_text = format_time(rec.time)
            leaves.append(leaf_hash(body))
            expected += 1
        return scan, leaves

    def _recover_rolled(self, number: int) -> _Rolled:
        """A rolled segment whose seal was never written: it must be whole."""
        path = self._live_dir / segment_name(number)
        data = path.read_bytes()
        self._live_first = None
        scan, leaves = self._scan_records(path, data)
        if scan.problem is not None or not leaves:
            raise SegmentError(f"rolled segment is damaged: {scan.problem or 'empty'}",
                               where=str(path), seq=self._tree.size + len(leaves))
        self._tree.append(leaves)
        assert self._live_first is not None
        return _Rolled(number, self._tree.size, self._tree.root(), len(data),
                       self._live_first[0], self._live_first[1], self._last_time_text,
                       concurrent.futures.Future())

    def _recover_live(self) -> list[AuditRecord]:
        path = self._live_dir / segment_name(self._live_number)
        recovered: list[AuditRecord] = []
        self._live_first = None
        if not path.exists():
            self._new_live_file(path)
            return recovered
        data = path.read_bytes()
        scan, leaves = self._scan_records(path, data)
        if scan.problem is not None:
            cut = data[scan.good_length:]
            torn_dir = self.root / "torn"
            _make_dir(torn_dir)
            if scan.good_length < len(MAGIC):
                scan.good_length = 0
            if cut:
                evidence = torn_dir / f"{path.name}.{scan.good_length}.{int(time.time())}"
                _write_file_durably(evidence, cut, SEALED_MODE)
            recovered.append(
                AuditRecord(
                    actor="audit",
                    event=EventType.AUDIT_RECOVERED,
                    outcome=Outcome.SUCCESS,
                    details={
                        "segment": path.name,
                        "problem": scan.problem,
                        "truncated_at": scan.good_length,
                        "cut_bytes": len(cut),
                        "cut_sha256": hashlib.sha256(cut).hexdigest(),
                    },
                )
            )
            log.warning("audit: truncating torn tail of %s: %s", path, scan.problem)
        fd = os.open(path, os.O_RDWR)
        if scan.good_length == 0:
            os.ftruncate(fd, 0)
            os.pwrite(fd, MAGIC, 0)
            scan.good_length = len(MAGIC)
        else:
            os.ftruncate(fd, scan.good_length)
        os.fsync(fd)
        os.lseek(fd, scan.good_length, os.SEEK_SET)
        self._live_fd = fd
        self._live_bytes = scan.good_length
        self._live_records = len(scan.bodies)
        self._live_started = time.monotonic() if scan.bodies else None
        self._tree.append(leaves)
        return recovered

    def _new_live_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, MAGIC)
            os.fsync(fd)
            _fsync_dir(path.parent)
        except OSError:
            os.close(fd)
            raise
        self._live_fd = fd
        self._live_bytes = len(MAGIC)
        self._live_records = 0
        self._live_first = None
        self._live_started = None

    # ------------------------------------------------------------------ appending
    def submit(self, record: AuditRecord) -> concurrent.futures.Future[Receipt]:
        """Queue ``record``; the future resolves to its :class:`Receipt` once durable."""
        if not isinstance(record, AuditRecord):
            raise MalformedRecord("append takes an AuditRecord")
        if self._closed:
            raise AuditClosed()
        if self._failed is not None:
            raise AuditUnavailable(self._failed)
        if self._queue.qsize() >= self.config.queue_limit:
            raise AuditUnavailable("audit queue is full")
        item = _Pending(record)
        self._queue.put(item)
        return item.future

    def append_sync(self, record: AuditRecord, timeout: float | None = None) -> Receipt:
        """Append and block until durable. Raises AuditUnavailable if it is not."""
        return self.submit(record).result(timeout)

    async def append(self, record: AuditRecord) -> Receipt:
        """Append and await durability (group-committed with concurrent appends)."""
        return await asyncio.wrap_future(self.submit(record))

    def _run(self) -> None:
        q = self._queue
        while True:
            try:
                first = q.get(timeout=self._seal_age_wait())
            except queue.Empty:
                if self._roll_due():
                    self._roll()
                continue
            if first is _STOP:
                self._stop_roll()
                break
            batch: list[_Pending] = []
            requests: list[_SealRequest] = []
            stop = False
            item = first
            while True:
                if item is _STOP:
                    stop = True
                    break
                if isinstance(item, _SealRequest):
                    requests.append(item)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_cap():
                    break
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            if self._live_records and (requests or self._roll_due()):
                self._roll()
            for req in requests:
                if self._failed is not None:
                    req.done.set_exception(AuditUnavailable(self._failed))
                else:
                    last = self._last_rolled
                    req.done.set_result(last.done if last is not None else None)
            if stop:
                self._stop_roll()
                break
        # Fail whatever is still queued.
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _SealRequest):
                item.done.set_exception(AuditClosed())
            elif isinstance(item, _Pending):
                item.future.set_exception(AuditClosed())

    def _seal_age_wait(self) -> float | None:
        """Seconds until the live segment is due for sealing by age (None: no records)."""
        started = self._live_started
        if started is None or self._failed is not None:
            return None
        return max(0.0, started + self.config.seal_max_age - time.monotonic())

    def _stop_roll(self) -> None:
        """Clean stop: seal the live segment however small; leave no empty live file."""
        if self._failed is not None or self._live_fd < 0:
            return
        if self._live_records:
            self._roll(final=True)
            return
        os.close(self._live_fd)
        self._live_fd = -1
        path = self._live_dir / segment_name(self._live_number)
        try:
            path.unlink()
            _fsync_dir(self._live_dir)
        except OSError as exc:
            log.warning("audit: cannot remove the empty live segment %s: %s", path, exc)

    def _batch_cap(self) -> int:
        """Batch size limit: never run a segment past its record limit in one batch."""
        room = self.config.segment_max_records - self._live_records
        return max(1, min(self.config.max_batch, room))

    def _fail(self, reason: str, cause: BaseException | None = None) -> None:
        """Fail closed. ``reason`` is our own wording (it is answered to callers as the
        :class:`AuditUnavailable` message); the OS's text of ``cause`` is only logged."""
        if self._failed is None:
            log.error("audit log failed closed: %s%s", reason,
                      f" ({type(cause).__name__}: {cause})" if cause is not None else "")
            self._failed = reason

    def _check_seal_hang(self) -> None:
        """A seal attempt (signer call) running longer than the grace period fails the log.

        A hung PKCS#11 call cannot be interrupted; it must not leave the log accepting
        records that will never be sealed.
        """
        started = self._seal_attempt_started
        if started is not None and time.monotonic() - started > self.config.seal_grace_seconds:
            self._fail("audit seal (signer) has not returned within the grace period")

    def _commit(self, batch: list[_Pending]) -> None:
        self._check_seal_hang()
        if self._failed is not None:
            for item in batch:
                item.future.set_exception(AuditUnavailable(self._failed))
            return
        now = now_utc()
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        seq = self._tree.size
        accepted: list[tuple[_Pending, bytes]] = []
        for item in batch:
            try:
                body = encode_record(item.record, seq, now)
            except (ValueError, TypeError) as exc:
                item.future.set_exception(
                    MalformedRecord("the record cannot be encoded", detail=str(exc)))
                continue
            if len(body) > self.config.max_record_bytes:
                item.future.set_exception(
                    MalformedRecord(f"record of {len(body)} bytes exceeds max_record_bytes")
                )
                continue
            accepted.append((item, body))
            seq += 1
        if not accepted:
            return
        buf = b"".join(encode_frame(body) for _, body in accepted)
        try:
            view = memoryview(buf)
            while view:
                n = os.write(self._live_fd, view)
                view = view[n:]
            fsync_started = time.perf_counter()
            os.fsync(self._live_fd)
            fsync_seconds = time.perf_counter() - fsync_started
        except OSError as exc:
            self._fail("cannot write the audit segment", exc)
            for item, _ in accepted:
                item.future.set_exception(AuditUnavailable(self._failed or _UNAVAILABLE))
            return
        leaves = [leaf_hash(body) for _, body in accepted]
        first_seq = self._tree.size
        try:
            with self._lock:
                self._tree.append(leaves)
                self._live_bytes += len(buf)
                self._live_records += len(accepted)
                time_text = format_time(now)
                if self._live_first is None:
                    self._live_first = (first_seq, time_text)
                    self._live_started = time.monotonic()
                self._last_time = now
                self._last_time_text = time_text
                size = self._tree.size
        except OSError as exc:
            # The records are durable; the derived tree is not. Acknowledge, then fail.
            size = first_seq + len(accepted)
            self._fail("cannot write the audit Merkle levels", exc)
        for i, (item, _) in enumerate(accepted):
            item.future.set_result(
                Receipt(self.origin, first_seq + i, leaves[i], size, now)
            )
        if self.on_commit is not None:
            try:
                self.on_commit(len(accepted), fsync_seconds)
            except Exception:
                log.exception("audit: on_commit callback failed")

    # ------------------------------------------------------------------ rolling
    def _roll_due(self) -> bool:
        started = self._live_started
        return self._live_records > 0 and (
            self._live_records >= self.config.segment_max_records
            or self._live_bytes >= self.config.segment_max_bytes
            or (started is not None
                and time.monotonic() - started >= self.config.seal_max_age)
        )

    def _roll(self, final: bool = False) -> None:
        """Writer thread: start the next live segment, queue the full one for sealing.

        ``final`` (clean stop): no next live segment; the next open starts it.
        """
        if self._failed is not None:
            return
        assert self._live_first is not None
        number = self._live_number
        with self._lock:
            rolled = _Rolled(
                number=number,
                size=self._tree.size,
                root=self._tree.root(),
                length=self._live_bytes,
                first_seq=self._live_first[0],
                first_time=self._live_first[1],
                last_time=self._last_time_text,
                done=concurrent.futures.Future(),
            )
        old_fd = self._live_fd
        if final:
            self._live_fd = -1
            self._live_records = 0
            self._live_started = None
        else:
            try:
                self._new_live_file(self._live_dir / segment_name(number + 1))
            except OSError as exc:
                self._fail("cannot start a new audit segment", exc)
                return
        os.close(old_fd)
        self._live_number = number + 1
        self._hand_to_sealer(rolled)

    def _hand_to_sealer(self, rolled: _Rolled) -> None:
        with self._lock:
            self._pending_seals += 1
        self._last_rolled = rolled
        self._seal_queue.put(rolled)

    # ------------------------------------------------------------------ sealing
    def _seal_loop(self) -> None:
        """Sealer thread: seal rolled segments strictly in order, retrying the signer.

        ``_STOP`` is queued only after the writer has stopped, so every rolled segment
        is ahead of it. A segment that cannot be sealed while closing stays in ``live/``
        for the next open.
        """
        q = self._seal_queue
        while True:
            item = q.get()
            if item is _STOP:
                return
            rolled: _Rolled = item
            while True:
                if self._failed is not None:
                    rolled.done.set_exception(AuditUnavailable(self._failed))
                    break
                self._seal_attempt_started = time.monotonic()
                try:
                    self._seal(rolled)
                except SiogwError as exc:  # the signer failed: retry within grace
                    self._seal_failed(exc.diagnostics())
                    if self._closed:
                        rolled.done.set_exception(exc)
                        self._drain_seal_queue(exc)
                        return
                    self._seal_wakeup.wait(max(self.config.seal_retry_seconds, 0.05))
                    self._seal_wakeup.clear()
                    continue
                except OSError as exc:
                    self._fail("cannot write the audit seal", exc)
                    rolled.done.set_exception(AuditUnavailable(self._failed or _UNAVAILABLE))
                    break
                finally:
                    self._seal_attempt_started = None
                with self._lock:
                    self._seal_failing_since = None
                    self._seal_failing_at = None
                    self._pending_seals -= 1
                rolled.done.set_result(None)
                break

    def _drain_seal_queue(self, exc: BaseException) -> None:
        while True:
            try:
                item = self._seal_queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Rolled):
                item.done.set_exception(exc)

    def _seal_failed(self, reason: str) -> None:
        log.warning("audit seal failed: %s", reason)
        with self._lock:
            self._seal_error = reason
            self._seal_failures += 1
            if self._seal_failing_since is None:
                self._seal_failing_since = time.monotonic()
                self._seal_failing_at = now_utc()
            since = self._seal_failing_since
        if time.monotonic() - since >= self.config.seal_grace_seconds:
            self._fail(
                f"audit seal signer failing for longer than the grace period: {reason}"
            )

    def _seal(self, r: _Rolled) -> None:
        live_path = self._live_dir / segment_name(r.number)
        data = live_path.read_bytes()
        if len(data) != r.length:
            raise OSError(f"rolled segment {live_path} changed size")
        cp = Checkpoint(
            self.origin,
            r.size,
            r.root,
            seal_extensions(
                number=r.number,
                prev=self._prev_seal_hash,
                first_seq=r.first_seq,
                last_seq=r.size - 1,
                first_time=r.first_time,
                last_time=r.last_time,
                segment_name=segment_name(r.number),
                segment_sha256=hashlib.sha256(data).hexdigest(),
                segment_length=len(data),
                key_id=self._signer.key_id,
                sealed_at=format_time(now_utc()),
            ),
        )
        note = sign_checkpoint(cp, self._signer.sign, self._signer.public_key,
                               self._signer.algorithm)
        # The checkpoint file always reaches at least the newest seal.
        self._publish()
        if self._on_checkpoint is not None:  # the seal too is kept outside the log
            try:
                self._on_checkpoint(SignedCheckpoint(cp, note))
            except Exception:
                log.exception("audit: on_checkpoint callback failed")
        gz_path = self._archive / (segment_name(r.number) + ".gz")
        _write_file_durably(gz_path, gzip.compress(data, compresslevel=6, mtime=0))
        self._tree.sync()  # a seal on disk implies durable Merkle levels up to its size
        seal_path = self._archive / seal_name(r.number)
        _write_file_durably(seal_path, note)
        if self.config.immutable_seals:
            _set_immutable(gz_path)
            _set_immutable(seal_path)
        live_path.unlink()
        _fsync_dir(self._live_dir)
        with self._lock:
            self._sealed_size = r.size
            self._sealed_segments = r.number
            self._prev_seal_hash = hashlib.sha256(note).hexdigest()
            self._seal_at = time.time()

    def seal_now(self, timeout: float | None = None) -> None:
        """Roll the live segment (if it has records) and wait until all is sealed.

        Raises :class:`~siogw_api.errors.AuditError` when a sealing attempt fails meanwhile
        (the sealer keeps retrying within the grace period), :class:`AuditUnavailable`
        if the log failed, ``TimeoutError`` after ``timeout`` seconds.
        """
        if self._closed:
            raise AuditClosed()
        failures = self._seal_failures
        deadline = None if timeout is None else time.monotonic() + timeout
        req = _SealRequest()
        self._queue.put(req)
        rolled_done = req.done.result(timeout)
        while rolled_done is not None:
            try:
                rolled_done.result(0.02)
                return
            except concurrent.futures.TimeoutError:
                pass
            if self._failed is not None:
                raise AuditUnavailable(self._failed)
            if self._seal_failures != failures:
                raise AuditError("audit seal failed (still retrying)", detail=self._seal_error)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("audit seal did not finish in time")

    # ------------------------------------------------------------------ reading
    def checkpoint(self) -> SignedCheckpoint:
        """A signed checkpoint of the current tree: the latest one, or a new one if the
        tree grew since (published like the timed ones)."""
        return self._publish()

    @property
    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The newest checkpoint published (file, witness, callback); None before any."""
        return self._latest

    def _publish(self, stopped: bool = False) -> SignedCheckpoint:
        """Sign the current tree if it moved past the latest checkpoint, then publish it.

        Order: sign, write ``root/checkpoint`` (an OSError fails the log closed), then
        the witness copy (errors logged), then ``on_checkpoint``. Sizes never go down.
        """
        with self._cp_lock:
            with self._lock:
                size, root = self._tree.size, self._tree.root()
            latest = self._latest
            if latest is not None and not stopped and latest.checkpoint.size >= size and (
                not latest.stopped or self._closed
            ):
                return latest
            ext = [f"time {format_time(now_utc())}", f"key {self._signer.key_id}"]
            if stopped:
                ext.append(STOPPED_EXT)
            cp = Checkpoint(self.origin, size, root, tuple(ext))
            note = sign_checkpoint(cp, self._signer.sign, self._signer.public_key,
                                   self._signer.algorithm)
            signed = SignedCheckpoint(cp, note)
            try:
                _write_file_durably(self.root / CHECKPOINT_FILE, note, FILE_MODE)
            except OSError as exc:
                self._fail("cannot write the audit checkpoint", exc)
                raise
            if self.witness_dir is not None:
                try:
                    _write_file_durably(self.witness_dir / CHECKPOINT_FILE, note, FILE_MODE)
                    self._witness_failing = False
                except OSError as exc:
                    if not self._witness_failing:
                        log.error("audit: cannot write the witness checkpoint in %s: %s",
                                  self.witness_dir, exc)
                    self._witness_failing = True
            if self._on_checkpoint is not None:
                try:
                    self._on_checkpoint(signed)
                except Exception:
                    log.exception("audit: on_checkpoint callback failed")
            self._latest = signed  # fully published
            self._checkpoint_at = time.time()
            return signed

    def _checkpoint_loop(self) -> None:
        """Checkpointer thread: every ``checkpoint_interval`` s, sign if the tree grew."""
        interval = self.config.checkpoint_interval
        while True:
            self._cp_wakeup.wait(interval)
            self._cp_wakeup.clear()
            if self._cp_stop:
                return
            if self._failed is not None:
                continue
            latest = self._latest
            if latest is not None and not latest.stopped and (
                latest.checkpoint.size >= self.tree_size
            ):
                continue
            try:
                self._publish()
            except (SiogwError, OSError) as exc:
                log.warning("audit: checkpoint signing failed (retried): %s", exc)

    @property
    def tree_size(self) -> int:
        with self._lock:
            return self._tree.size

    def durable_extent(self) -> tuple[int, int]:
        """``(number, length)`` of the live segment: its number and how many of its bytes
        hold durable records (written and fsync'd; what the receipts acknowledge).

        A reader of the live file (the Reports index) reads no further: bytes beyond may
        be a write not yet fsync'd, or one whose fsync failed, that recovery would cut.
        Live segments numbered above ``number`` hold nothing durable yet.
        """
        with self._lock:
            return self._live_number, self._live_bytes

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> Proof:
        with self._lock:
            size = self._tree.size if tree_size is None else tree_size
            if size > self._tree.size:
                raise AuditError(f"tree size {size} is beyond the log ({self._tree.size})")
            hashes = inclusion_proof(self._tree, seq, size)
        return Proof("inclusion", seq, size, tuple(hashes))

    def consistency_proof(self, size1: int, size2: int | None = None) -> Proof:
        with self._lock:
            size = self._tree.size if size2 is None else size2
            if size > self._tree.size:
                raise AuditError(f"tree size {size} is beyond the log ({self._tree.size})")
            hashes = consistency_proof(self._tree, size1, size)
        return Proof("consistency", size1, size, tuple(hashes))

    def proof_bundle(self, receipt: Receipt) -> dict[str, Any]:
        """A self-contained JSON bundle for ``siogw audit prove --bundle``.

        Holds a freshly signed checkpoint, the receipt and its inclusion proof.
        """
        signed = self.checkpoint()
        proof = self.inclusion_proof(receipt.seq, signed.checkpoint.size)
        return {
            "checkpoint": signed.note.decode("utf-8"),
            "receipt": receipt.to_json(),
            "proof": proof.to_json(),
        }

    def leaf_hash(self, seq: int) -> bytes:
        with self._lock:
            if not 0 <= seq < self._tree.size:
                raise AuditError(f"no record {seq}")
            return self._tree.leaf(seq)

    def trusted_keys(self) -> list[TrustedKey]:
        """The key history this log signs under (for verifiers in the same process)."""
        return list(self._keys)

    @property
    def queue_depth(self) -> int:
        """Appends waiting for the writer (approximate, for metrics)."""
        return self._queue.qsize()

    @property
    def publication_times(self) -> tuple[float | None, float | None]:
        """``time.time()`` of the last checkpoint and of the last seal this process
        published (None: none yet)."""
        return self._checkpoint_at, self._seal_at

    def health(self) -> Health:
        if not self._closed:
            self._check_seal_hang()
        with self._lock:
            if self._closed:
                state, reason = "closed", "closed"
            elif self._failed is not None:
                state, reason = "failed", self._failed
            elif self._seal_failing_since is not None:
                state, reason = "degraded", "sealing failing: " + self._seal_error
            else:
                state, reason = "ok", None
            return Health(
                state=state,
                reason=reason,
                tree_size=self._tree.size,
                sealed_size=self._sealed_size,
                sealed_segments=self._sealed_segments,
                live_records=self._live_records,
                seal_failing_since=self._seal_failing_at,
                pending_seals=self._pending_seals,
            )

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Clean stop: queued appends finish, the live segment is sealed (however small),
        then a last checkpoint marked ``stopped`` is signed and published; release.

        Segments the signer cannot seal now stay in ``live/`` and are sealed at the next
        open; the ``stopped`` checkpoint is then still attempted (it covers them).
        """
        if self._closed:
            return
        self._closed = True
        self._shutdown_threads()
        if self._failed is None:
            try:
                self._publish(stopped=True)
            except (SiogwError, OSError) as exc:
                log.warning("audit: cannot sign the closing checkpoint: %s", exc)
        self._release()

    def _shutdown_threads(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._sealer is not None:
            self._seal_queue.put(_STOP)
            self._seal_wakeup.set()
            self._sealer.join()
            self._sealer = None
        if self._checkpointer is not None:
            self._cp_stop = True
            self._cp_wakeup.set()
            self._checkpointer.join()
            self._checkpointer = None

    def _release(self) -> None:
        if self._live_fd >= 0:
            os.close(self._live_fd)
            self._live_fd = -1
        self._tree.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def receipt_json(receipt: Receipt) -> bytes:
    return (json.dumps(receipt.to_json(), sort_keys=True, indent=1) + "\n").encode()
