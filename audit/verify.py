"""Offline verification of the audit log: seals, segments, the key history, the archive walk.

Nothing here imports gRPC or SQLAlchemy, and nothing but :func:`verify_archive` (and
:func:`load_trusted_keys`) touches the file system. Hashing and proofs are
:mod:`signing.merkle`; checkpoints and signed notes are :mod:`signing.note`. The parts:

* **Seals** are checkpoints with extension lines (see :class:`Seal`).
* **Segments**: ``MAGIC`` then frames ``u32be length || u32be CRC-32(body) || body``;
  :func:`scan_frames` finds a torn tail.
* :func:`verify_archive` walks a log directory and raises at the FIRST bad place.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
import re
import struct
import zlib
import zlib as _zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import MalformedRecord, SegmentError
from audit.record import LoggedRecord, decode_record
from signing.api import Algorithm
from signing.errors import CheckpointError, ProofError, RootMismatch, VerificationError
from signing.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    ZERO_HASH_HEX,
    check_hash,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from signing.note import (
    Checkpoint,
    TrustedKey,
    default_algorithm,
    load_public_pem,
    open_checkpoint,
    parse_checkpoint_body,
)


def parse_key_history(data: bytes, *, where: str = "keys.json") -> list[TrustedKey]:
    """Parse a key-history file (see ``audit.keys``), ordered by ``valid_from_size``."""
    try:
        obj = json.loads(data)
        entries = obj["keys"]
        keys = []
        for e in entries:
            pub = load_public_pem(e["public_key_pem"].encode("ascii"), where)
            tk = TrustedKey(
                public_key=pub,
                algorithm=Algorithm(e["algorithm"]),
                valid_from_size=int(e["valid_from_size"]),
                valid_from_time=e.get("valid_from_time"),
                retired=bool(e.get("retired", False)),
            )
            if tk.key_id != e["key_id"]:
                raise CheckpointError(f"key id mismatch for {e['key_id']}", where=where)
            keys.append(tk)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"malformed key history: {exc}", where=where) from exc
    keys.sort(key=lambda k: k.valid_from_size)
    return keys


def load_trusted_keys(paths: Sequence[str | os.PathLike[str]]) -> list[TrustedKey]:
    """Load keys from key-history JSON files and/or PEM public keys."""
    keys: list[TrustedKey] = []
    for p in paths:
        data = Path(p).read_bytes()
        if data.lstrip().startswith(b"{"):
            keys.extend(parse_key_history(data, where=str(p)))
        else:
            pub = load_public_pem(data, str(p))
            keys.append(TrustedKey(public_key=pub, algorithm=default_algorithm(pub)))
    return keys


# --- seals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seal:
    """A seal: a checkpoint whose extension lines bind one archived segment.

    Extension lines (space separated)::

        siogw-seal <segment number>
        prev <hex SHA-256 of the previous seal file, or 64 zeros>
        seq <first seq> <last seq>
        time <first record time> <last record time>
        segment <file name> <hex SHA-256 of the uncompressed segment> <length>
        key <key id of the sealing key>
        sealed <time of sealing>
    """

    checkpoint: Checkpoint
    number: int
    prev: str
    first_seq: int
    last_seq: int
    first_time: str
    last_time: str
    segment_name: str
    segment_sha256: str
    segment_length: int
    key_id: str
    sealed_at: str

    def extensions(self) -> tuple[str, ...]:
        return seal_extensions(
            number=self.number,
            prev=self.prev,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            first_time=self.first_time,
            last_time=self.last_time,
            segment_name=self.segment_name,
            segment_sha256=self.segment_sha256,
            segment_length=self.segment_length,
            key_id=self.key_id,
            sealed_at=self.sealed_at,
        )


def seal_extensions(
    *,
    number: int,
    prev: str,
    first_seq: int,
    last_seq: int,
    first_time: str,
    last_time: str,
    segment_name: str,
    segment_sha256: str,
    segment_length: int,
    key_id: str,
    sealed_at: str,
) -> tuple[str, ...]:
    return (
        f"siogw-seal {number}",
        f"prev {prev}",
        f"seq {first_seq} {last_seq}",
        f"time {first_time} {last_time}",
        f"segment {segment_name} {segment_sha256} {segment_length}",
        f"key {key_id}",
        f"sealed {sealed_at}",
    )


def parse_seal(cp: Checkpoint, *, where: str | None = None) -> Seal:
    try:
        (number,) = cp.ext("siogw-seal")
        (prev,) = cp.ext("prev")
        first_seq, last_seq = cp.ext("seq")
        first_time, last_time = cp.ext("time")
        seg_name, seg_hash, seg_len = cp.ext("segment")
        (key_id,) = cp.ext("key")
        (sealed_at,) = cp.ext("sealed")
        seal = Seal(
            checkpoint=cp,
            number=int(number),
            prev=prev,
            first_seq=int(first_seq),
            last_seq=int(last_seq),
            first_time=first_time,
            last_time=last_time,
            segment_name=seg_name,
            segment_sha256=seg_hash,
            segment_length=int(seg_len),
            key_id=key_id,
            sealed_at=sealed_at,
        )
    except CheckpointError as exc:
        raise CheckpointError(f"not a seal: {exc.what}", where=where) from exc
    except ValueError as exc:
        raise CheckpointError(f"malformed seal line: {exc}", where=where) from exc
    if seal.extensions() != cp.extensions:
        raise CheckpointError("seal extension lines are not in canonical form", where=where)
    return seal


# --- segments -----------------------------------------------------------------------------
MAGIC = b"SIOGW-AUDIT-SEGMENT v1\n"
FRAME_HEADER = struct.Struct(">II")
MAX_FRAME = 16 << 20


def encode_frame(body: bytes) -> bytes:
    """``u32be length || u32be CRC-32(body) || body``."""
    return FRAME_HEADER.pack(len(body), _zlib.crc32(body)) + body


@dataclass
class FrameScan:
    """Result of :func:`scan_frames`: the good frames and where (if) they stop."""

    bodies: list[bytes] = field(default_factory=list)
    good_length: int = 0  #: bytes up to the end of the last good frame
    problem: str | None = None  #: why scanning stopped early, or None
    complete_frame_bad: bool = False  #: stopped at a whole frame with a bad CRC/length


def scan_frames(data: bytes | memoryview, *, max_frame: int = MAX_FRAME) -> FrameScan:
    """Split segment bytes into frame bodies, stopping at the first defect."""
    scan = FrameScan()
    if len(data) < len(MAGIC):
        scan.problem = "segment shorter than its header"
        return scan
    if bytes(data[: len(MAGIC)]) != MAGIC:
        scan.problem = "bad segment magic"
        scan.complete_frame_bad = True
        return scan
    pos = len(MAGIC)
    scan.good_length = pos
    end = len(data)
    unpack = FRAME_HEADER.unpack_from
    crc = zlib.crc32
    bodies = scan.bodies
    while pos < end:
        if end - pos < FRAME_HEADER.size:
            scan.problem = f"torn frame header at offset {pos}"
            break
        length, expected_crc = unpack(data, pos)
        if length == 0 or length > max_frame:
            scan.problem = f"bad frame length {length} at offset {pos}"
            scan.complete_frame_bad = True
            break
        start = pos + FRAME_HEADER.size
        if start + length > end:
            scan.problem = f"torn frame at offset {pos} ({end - start} of {length} bytes)"
            break
        body = bytes(data[start : start + length])
        if crc(body) != expected_crc:
            scan.problem = f"CRC mismatch in frame at offset {pos}"
            scan.complete_frame_bad = True
            break
        bodies.append(body)
        pos = start + length
        scan.good_length = pos
    return scan


# --- archive layout -----------------------------------------------------------------------
ARCHIVE_DIR = "archive"
LIVE_DIR = "live"
KEYS_FILE = "keys.json"
LIVE_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.log$")
SEALED_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.log\.gz$")
SEAL_RE = re.compile(r"^seg-(\d{8})\.seal$")


def segment_name(number: int) -> str:
    return f"seg-{number:08d}.log"


def seal_name(number: int) -> str:
    return f"seg-{number:08d}.seal"


def key_valid_for(keys: Sequence[TrustedKey], key: TrustedKey, size: int) -> bool:
    """Is ``key`` allowed to sign a checkpoint of ``size`` under the key history?"""
    ordered = sorted(keys, key=lambda k: k.valid_from_size)
    for i, k in enumerate(ordered):
        if k.key_id != key.key_id:
            continue
        if size < k.valid_from_size:
            continue
        later = [o for o in ordered[i + 1 :] if o.key_id != k.key_id]
        if later and size > later[0].valid_from_size:
            continue
        return True
    return False


@dataclass
class ArchiveReport:
    """What :func:`verify_archive` checked."""

    sealed_segments: int = 0
    records: int = 0
    tree_size: int = 0
    root_hash: bytes = EMPTY_ROOT
    sealed_size: int = 0
    last_seal: Seal | None = None
    live_records: int = 0
    warnings: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int, int, str], None]


@dataclass
class _Content:
    """What one segment's bytes hold; computed inline or in a worker process.

    ``count`` good records come first (``leaves`` holds their leaf hashes); then maybe a
    record-level ``error`` at index ``count``, or else a frame-level ``problem``.
    """

    count: int = 0
    leaves: bytes = b""
    first_seq: int = -1
    first_time: _dt.datetime | None = None
    last_seq: int = -1
    last_time: _dt.datetime | None = None
    sha256: str = ""
    length: int = 0
    error: str | None = None
    problem: str | None = None
    complete_frame_bad: bool = False


def _check_content(data: bytes, strict: bool) -> _Content:
    """Frames, CRCs, record form, internal seq continuity and time order, leaf hashes.

    The fast path reads seq and time from the canonical record's tail (its keys are
    sorted, so ``seq``, ``time`` and ``v`` come last, and quotes inside JSON strings are
    escaped so nothing else can end the text this way); every byte is still covered by
    the leaf hash, the segment digest and the signed root. ``strict`` parses and
    schema-checks every record (and its canonical form) as well.
    """
    out = _Content(sha256=hashlib.sha256(data).hexdigest(), length=len(data))
    fromiso = _dt.datetime.fromisoformat
    sha = hashlib.sha256
    crc = zlib.crc32
    unpack = FRAME_HEADER.unpack_from
    leaves: list[bytes] = []
    prev_text = b""
    when: _dt.datetime | None = None
    prev_time: _dt.datetime | None = None
    seq = expected = -1
    end = len(data)
    if end < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        out.problem = ("bad segment magic" if end >= len(MAGIC)
                       else "segment shorter than its header")
        out.complete_frame_bad = end >= len(MAGIC)
        return out
    pos = len(MAGIC)
    while pos < end:
        # Frame: u32be length || u32be CRC-32(body) || body (as in scan_frames).
        if end - pos < 8:
            out.problem = f"torn frame header at offset {pos}"
            break
        length, expected_crc = unpack(data, pos)
        if length == 0 or length > MAX_FRAME:
            out.problem = f"bad frame length {length} at offset {pos}"
            out.complete_frame_bad = True
            break
        if pos + 8 + length > end:
            out.problem = f"torn frame at offset {pos} ({end - pos - 8} of {length} bytes)"
            break
        body = data[pos + 8 : pos + 8 + length]
        if crc(body) != expected_crc:
            out.problem = f"CRC mismatch in frame at offset {pos}"
            out.complete_frame_bad = True
            break
        pos += 8 + length
        # Canonical tail: ...,"seq":<digits>,"time":"<iso>","v":1}
        tail = body[-96:]
        i = tail.rfind(b',"seq":')
        j = tail.find(b',"time":"', i)
        try:
            if (
                not strict
                and i >= 0
                and j > i + 7
                and tail.endswith(b'","v":1}')
                and tail[i + 7 : j].isdigit()
                and body.startswith(b'{"actor":"')
            ):
                seq = int(tail[i + 7 : j])
                text = tail[j + 9 : -8]
                if text != prev_text:
                    if b'"' in text or b"\\" in text:
                        raise ValueError("bad time text")
                    when = fromiso(text.decode())
                    prev_text = text
            else:
                rec = decode_record(body, check_canonical=True)
                seq, when = rec.seq, rec.time
                prev_text = b""
        except (MalformedRecord, ValueError) as exc:
            out.error = f"malformed record: {exc}"
            break
        if expected >= 0 and seq != expected:
            out.error = f"sequence gap or reorder: found seq {seq}, expected {expected}"
            break
        assert when is not None
        if prev_time is not None and when < prev_time:
            out.error = "record time goes backwards"
            break
        if expected < 0:
            out.first_seq, out.first_time = seq, when
        prev_time = when
        expected = seq + 1
        leaves.append(sha(LEAF_PREFIX + body).digest())
    out.count = len(leaves)
    out.leaves = b"".join(leaves)
    if leaves:
        out.last_seq, out.last_time = expected - 1, prev_time
    return out


def _sealed_content(path: str, strict: bool) -> _Content:
    """gunzip + :func:`_check_content`; on a corrupt gzip, locate the damage if possible."""
    raw = Path(path).read_bytes()
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        problem = f"compressed segment is corrupt ({exc})"
        try:  # our writer emits a bare 10-byte gzip header (no name, mtime 0)
            inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[10:])
        except zlib.error:
            inflated = b""
        out = _check_content(inflated, strict) if inflated else _Content()
        if out.error is None and out.problem is not None:
            problem += f": {out.problem}"
        elif out.error is not None:
            problem += f": {out.error}"
        out.error, out.problem, out.complete_frame_bad = problem, None, True
        out.first_seq = out.first_seq if out.count else -1
        return out
    return _check_content(data, strict)


class _Walker:
    """The whole-log state across segments: one compact range, the last time."""

    def __init__(self) -> None:
        from signing.merkle import CompactRange

        self.tree = CompactRange()
        self.prev_time: _dt.datetime | None = None
        self.anchor_size = -1
        self.anchor_root: bytes | None = None
        self.anchor_where = ""

    def consume(self, c: _Content, where: str, *, torn_ok: bool = False) -> None:
        """Continue the log with one segment's content; raise at its first bad place."""
        tree = self.tree
        expected = tree.size
        if c.count and c.first_seq != expected:
            raise SegmentError(
                f"sequence gap or reorder: found seq {c.first_seq}, expected {expected}",
                where=where, seq=expected,
            )
        if c.count and self.prev_time is not None and c.first_time is not None and (
            c.first_time < self.prev_time
        ):
            raise SegmentError("record time goes backwards", where=where, seq=expected)
        # Inlined CompactRange.append (same RFC 9162 node hash as node_hash()).
        nodes = tree._nodes
        size = tree.size
        sha = hashlib.sha256
        anchor_size = self.anchor_size
        leaves = c.leaves
        for off in range(0, len(leaves), HASH_SIZE):
            h = leaves[off : off + HASH_SIZE]
            index = size
            while index & 1:
                h = sha(NODE_PREFIX + nodes.pop() + h).digest()
                index >>= 1
            nodes.append(h)
            size += 1
            if size == anchor_size:
                tree.size = size
                self.anchor_root = tree.root()
                self.anchor_where = where
        tree.size = size
        if c.count:
            self.prev_time = c.last_time
        if c.error is not None:
            raise SegmentError(c.error, where=where, seq=size)
        if c.problem is not None and (c.complete_frame_bad or not torn_ok):
            raise SegmentError(c.problem, where=where, seq=size)


def _times_equal(text: str, value: _dt.datetime | None) -> bool:
    try:
        return _dt.datetime.fromisoformat(text) == value
    except ValueError:
        return False


def _sealed_contents(
    paths: list[Path], strict: bool, workers: int | None
) -> Iterator[_Content]:
    """Contents of sealed segments in order; in worker processes for big archives."""
    if workers is None:
        total = sum(p.stat().st_size for p in paths)
        cpus = os.cpu_count() or 1
        workers = min(cpus, 4) if cpus > 1 and len(paths) >= 3 and total >= 4 << 20 else 1
    if workers <= 1:
        for p in paths:
            yield _sealed_content(str(p), strict)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, never fork: the parent may hold PKCS#11 sessions or threads.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_sealed_content, str(p), strict) for p in paths]
        for f in futures:
            yield f.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def verify_archive(
    directory: str | os.PathLike[str],
    trusted_keys: Sequence[TrustedKey],
    *,
    origin: str | None = None,
    progress: ProgressCallback | None = None,
    check_live: bool = True,
    anchor: Checkpoint | None = None,
    strict: bool = False,
    workers: int | None = None,
) -> ArchiveReport:
    """Verify a whole log directory; raise :class:`VerificationError` at the first bad place.

    ``directory`` is the log root (with ``archive/`` and ``live/``) or an archive
    directory alone. Checks, in order, for each segment: the seal's signature (before
    parsing it) against ``trusted_keys`` and the key history, the seal number, the chain
    (``prev`` = SHA-256 of the previous seal file), every frame's CRC, every record's
    form, sequence continuity and time ordering, the seal's seq range, the segment file
    digest and length, the seal's time range, and the Merkle root. Then the live
    segments (rolled ones awaiting their seal, then the current one) continue the same
    checks. ``progress(records, segments, name)`` is called after each segment.

    ``anchor`` is a checkpoint obtained out of band (already signature-checked, e.g.
    the newest one a client or auditor kept): the archive must reach its size and have
    its root there, so records removed from the end are detected too.

    ``strict`` also parses and schema-checks every record and its canonical form
    (slower); by default seq and time are read from the canonical tail and all bytes
    are covered by the hashes. ``workers``: processes that read segments in parallel
    (``None``: automatic for large archives; ``1``: in this process). Results are still
    checked strictly in order, so the first bad place is the same either way.
    """
    root = Path(directory)
    archive = root / ARCHIVE_DIR if (root / ARCHIVE_DIR).is_dir() else root
    live = root / LIVE_DIR
    if not archive.is_dir():
        raise VerificationError("archive directory does not exist", where=str(archive))
    if not trusted_keys:
        raise CheckpointError("no trusted keys given", where=str(archive))
    report = ArchiveReport()
    gz: dict[int, Path] = {}
    seals: dict[int, Path] = {}
    for p in archive.iterdir():
        if m := SEALED_SEGMENT_RE.match(p.name):
            gz[int(m.group(1))] = p
        elif m := SEAL_RE.match(p.name):
            seals[int(m.group(1))] = p
        elif p.name != KEYS_FILE:
            report.warnings.append(f"ignored unexpected file {p.name}")
    lives: dict[int, Path] = {}
    if check_live and live.is_dir() and live != archive:
        for p in live.iterdir():
            if m := LIVE_SEGMENT_RE.match(p.name):
                lives[int(m.group(1))] = p
    numbers = sorted(set(gz) | set(seals))
    walker = _Walker()
    if anchor is not None:
        walker.anchor_size = anchor.size
        if origin is not None and anchor.origin != origin:
            raise CheckpointError("anchor checkpoint is for another log", where="anchor")
        origin = anchor.origin
    prev_seal_hash = ZERO_HASH_HEX
    expected_number = 1
    contents = _sealed_contents([gz[n] for n in numbers if n in gz and n in seals],
                                strict, workers)
    try:
        for number in numbers:
            gz_path = gz.get(number)
            seal_path = seals.get(number)
            if seal_path is None and gz_path is not None and number == numbers[-1] and (
                number in lives
            ):
                # An interrupted seal: the segment is still live; check it as the tail.
                report.warnings.append(f"{gz_path.name}: seal not yet written (interrupted)")
                break
            size = walker.tree.size
            if number != expected_number:
                raise VerificationError(
                    f"segment {segment_name(expected_number)} is missing",
                    where=str(archive / (segment_name(expected_number) + ".gz")), seq=size,
                )
            if seal_path is None:
                assert gz_path is not None
                raise VerificationError("segment has no seal", where=str(gz_path), seq=size)
            if gz_path is None:
                raise VerificationError(
                    "sealed segment file is missing",
                    where=str(archive / (segment_name(number) + ".gz")), seq=size,
                )
            seal_bytes = seal_path.read_bytes()
            sw = str(seal_path)
            cp, key = open_checkpoint(seal_bytes, trusted_keys, origin=origin, where=sw)
            if origin is None:
                origin = cp.origin
            seal = parse_seal(cp, where=sw)
            if not key_valid_for(trusted_keys, key, cp.size):
                raise CheckpointError(
                    f"key {key.key_id[:16]} was not the audit key at tree size {cp.size}",
                    where=sw,
                )
            if seal.key_id != key.key_id:
                raise CheckpointError("seal names a different key than signed it", where=sw)
            if seal.number != number:
                raise CheckpointError(f"seal is for segment {seal.number}, not {number}",
                                      where=sw)
            if seal.prev != prev_seal_hash:
                raise CheckpointError(
                    "seal chain broken: prev does not match the previous seal", where=sw
                )
            if seal.segment_name != segment_name(number):
                raise CheckpointError("seal names another segment file", where=sw)
            if seal.first_seq != size:
                raise CheckpointError(f"seal starts at seq {seal.first_seq}, expected {size}",
                                      where=sw)
            gw = str(gz_path)
            content = next(contents)
            walker.consume(content, gw)
            if not content.count:
                raise SegmentError("sealed segment has no records", where=gw, seq=size)
            if content.last_seq != seal.last_seq:
                raise SegmentError(
                    f"segment ends at seq {content.last_seq} but its seal says "
                    f"{seal.last_seq}",
                    where=gw, seq=min(content.last_seq, seal.last_seq) + 1,
                )
            if content.sha256 != seal.segment_sha256 or content.length != seal.segment_length:
                raise SegmentError("segment digest does not match its seal", where=gw,
                                   seq=size)
            if not (_times_equal(seal.first_time, content.first_time)
                    and _times_equal(seal.last_time, content.last_time)):
                raise CheckpointError("seal time range does not match the records", where=sw)
            if cp.size != walker.tree.size:
                raise CheckpointError(f"seal tree size {cp.size} != {walker.tree.size}",
                                      where=sw)
            computed = walker.tree.root()
            if computed != cp.root_hash:
                raise RootMismatch(computed, cp.root_hash,
                                   what="Merkle root does not match seal", where=sw)
            prev_seal_hash = hashlib.sha256(seal_bytes).hexdigest()
            report.sealed_segments += 1
            report.last_seal = seal
            report.sealed_size = cp.size
            expected_number += 1
            if progress is not None:
                progress(walker.tree.size, report.sealed_segments, gz_path.name)
    finally:
        close = getattr(contents, "close", None)
        if close is not None:
            close()
    # The live tail: rolled segments waiting for their seal, then the current segment,
    # numbered consecutively after the last seal. Only the very last may be torn.
    tail_numbers = sorted(n for n in lives if n >= expected_number)
    stale = sorted(n for n in lives if n < expected_number)
    for n in stale:
        report.warnings.append(f"{lives[n].name}: already sealed, left over from a seal")
    for i, n in enumerate(tail_numbers):
        path = lives[n]
        if n != expected_number + i:
            raise VerificationError(
                f"unexpected live segment (expected {segment_name(expected_number + i)})",
                where=str(path), seq=walker.tree.size,
            )
        is_last = i == len(tail_numbers) - 1
        content = _check_content(path.read_bytes(), strict)
        walker.consume(content, str(path), torn_ok=is_last)
        if content.problem is not None:
            report.warnings.append(
                f"{path.name}: {content.problem} (torn tail, unacknowledged)"
            )
        if not content.count and not is_last:
            raise SegmentError("rolled segment has no records", where=str(path),
                               seq=walker.tree.size)
        report.live_records += content.count
        if progress is not None:
            progress(walker.tree.size, report.sealed_segments, path.name)
    report.tree_size = report.records = walker.tree.size
    report.root_hash = walker.tree.root()
    if anchor is not None:
        if walker.tree.size < anchor.size:
            raise VerificationError(
                f"archive ends at tree size {walker.tree.size} but the anchor checkpoint "
                f"has size {anchor.size}: records are missing at the end",
                where=str(archive), seq=walker.tree.size,
            )
        root_at = EMPTY_ROOT if anchor.size == 0 else walker.anchor_root
        if root_at != anchor.root_hash:
            raise RootMismatch(root_at or b"", anchor.root_hash,
                               what=f"root at anchor size {anchor.size} differs",
                               where=walker.anchor_where or str(archive))
    return report


def sealed_last_seq(seal_path: str | os.PathLike[str]) -> int | None:
    """The last seq a seal file says its segment holds, read WITHOUT verifying it.

    None when the file cannot be read or parsed. Only for skipping work (see
    :func:`iter_archive_records`); never for trusting anything.
    """
    try:
        text = Path(seal_path).read_bytes()
        split = text.rfind(b"\n\n")
        if split < 0:
            return None
        return parse_seal(parse_checkpoint_body(text[: split + 1])).last_seq
    except (OSError, VerificationError, ValueError):
        return None


def iter_archive_records(
    directory: str | os.PathLike[str],
    *,
    after_seq: int = -1,
) -> Iterable[tuple[bytes, LoggedRecord]]:
    """Yield (canonical bytes, record) for every record, sealed then live, unverified.

    With ``after_seq``, sealed segments whose seal says they end at or before it are not
    read at all (an indexer catching up reads only what is new); records at or before
    ``after_seq`` may still come from the segments that are read. Call
    :func:`verify_archive` first when the result must be trusted.
    """
    root = Path(directory)
    archive = root / ARCHIVE_DIR if (root / ARCHIVE_DIR).is_dir() else root
    numbers = sorted(int(m.group(1)) for p in archive.iterdir() if (m := SEAL_RE.match(p.name)))
    for n in numbers:
        if after_seq >= 0:
            last = sealed_last_seq(archive / seal_name(n))
            if last is not None and last <= after_seq:
                continue
        data = gzip.decompress((archive / (segment_name(n) + ".gz")).read_bytes())
        for body in scan_frames(data).bodies:
            yield body, decode_record(body, check_canonical=False)
    live = root / LIVE_DIR
    if live.is_dir() and live != archive:
        for p in sorted(live.iterdir()):
            m = LIVE_SEGMENT_RE.match(p.name)
            if m and int(m.group(1)) > (numbers[-1] if numbers else 0):
                for body in scan_frames(p.read_bytes()).bodies:
                    yield body, decode_record(body, check_canonical=False)


def bundle_json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n"


# --- receipts and proof bundles -----------------------------------------------------------
@dataclass(frozen=True)
class ProvedReceipt:
    """What :func:`verify_receipt` established."""

    origin: str
    seq: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    key_id: str


def _hex_hash(obj: Any, what: str) -> bytes:
    try:
        value = bytes.fromhex(obj)
    except (TypeError, ValueError) as exc:
        raise ProofError(f"{what} is not hex") from exc
    check_hash(value, what)
    return value


def verify_receipt(
    checkpoint_note: bytes,
    receipt: Mapping[str, Any],
    proof: Mapping[str, Any],
    keys: Sequence[TrustedKey],
    *,
    record: bytes | None = None,
) -> ProvedReceipt:
    """Check offline that a receipt's record is in the signed checkpoint's tree.

    Order: the checkpoint's signature (before parsing it), then the receipt and proof
    fields, then the inclusion proof; if ``record`` (canonical record bytes) is given,
    its leaf hash must be the receipt's.
    """
    cp, key = open_checkpoint(checkpoint_note, keys, where="checkpoint")
    try:
        if receipt.get("origin") != cp.origin:
            raise ProofError("receipt is for another log", where="receipt")
        seq = int(receipt["seq"])
        leaf = _hex_hash(receipt["leaf_hash"], "receipt leaf_hash")
        if proof.get("type") != "inclusion":
            raise ProofError("proof is not an inclusion proof", where="proof")
        index = int(proof["leaf_index"])
        size = int(proof["tree_size"])
        hashes = [_hex_hash(h, f"proof hash {i}") for i, h in enumerate(proof["hashes"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"malformed receipt or proof: {exc}") from exc
    if index != seq:
        raise ProofError(f"proof is for seq {index}, receipt for {seq}", where="proof")
    if size != cp.size:
        raise ProofError(f"proof is for tree size {size}, checkpoint has {cp.size}",
                         where="proof")
    if record is not None and leaf_hash(record) != leaf:
        raise RootMismatch(leaf_hash(record), leaf, what="record does not match receipt",
                           where="record", seq=seq)
    try:
        verify_inclusion(leaf, seq, cp.size, hashes, cp.root_hash)
    except VerificationError as exc:
        exc.where, exc.seq = "proof", seq
        exc.args = (exc.place(),)
        raise
    return ProvedReceipt(cp.origin, seq, leaf, cp, key.key_id)


def verify_consistency_notes(
    old_note: bytes, new_note: bytes, proof: Mapping[str, Any], keys: Sequence[TrustedKey]
) -> tuple[Checkpoint, Checkpoint]:
    """Both checkpoints signed, same origin, and the consistency proof links them."""
    old, _ = open_checkpoint(old_note, keys, where="old checkpoint")
    new, _ = open_checkpoint(new_note, keys, origin=old.origin, where="checkpoint")
    try:
        if proof.get("type") != "consistency":
            raise ProofError("proof is not a consistency proof", where="consistency proof")
        size1, size2 = int(proof["size1"]), int(proof["tree_size"])
        hashes = [_hex_hash(h, f"proof hash {i}") for i, h in enumerate(proof["hashes"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"malformed consistency proof: {exc}") from exc
    if (size1, size2) != (old.size, new.size):
        raise ProofError("consistency proof sizes do not match the checkpoints",
                         where="consistency proof")
    verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    return old, new
