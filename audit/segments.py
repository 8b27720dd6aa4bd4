"""The audit log's pure formats: seals, segment frames, segment content, the key history.

Bytes in, values out: nothing here touches the file system, the network, gRPC or
SQLAlchemy (:mod:`audit.archive` reads the files; :mod:`audit.log` writes them). Hashing
and proofs are :mod:`signing.merkle`; checkpoints and signed notes :mod:`signing.note`.

* **Seals** are checkpoints with extension lines (see :class:`Seal`):
  :func:`seal_extensions` encodes them, :func:`parse_seal` reads them back and refuses
  any non-canonical form.
* **Segments**: ``MAGIC`` then frames ``u32be length || u32be CRC-32(body) || body``
  (:func:`encode_frame`); :func:`scan_frames` finds a torn tail;
  :func:`check_segment_content` checks a whole segment's frames, records, seq continuity
  and time order and computes its leaf hashes (the archive walk's inner loop).
* **Key history** (``keys.json``, written by :mod:`audit.keys`): :func:`parse_key_history`,
  and :func:`key_valid_for` (was a key the audit key at a tree size?).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import struct
import zlib
import zlib as _zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from audit.errors import MalformedRecord
from audit.record import decode_record
from signing.api import Algorithm
from signing.errors import CheckpointError
from signing.merkle import LEAF_PREFIX
from signing.note import Checkpoint, TrustedKey, load_public_pem


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
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError("malformed key history", where=where) from exc
    keys.sort(key=lambda k: k.valid_from_size)
    return keys


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
        raise CheckpointError("malformed seal line", where=where) from exc
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


@dataclass
class SegmentContent:
    """What one segment's bytes hold (:func:`check_segment_content`).

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


def check_segment_content(data: bytes, strict: bool) -> SegmentContent:
    """Frames, CRCs, record form, internal seq continuity and time order, leaf hashes.

    The fast path reads seq and time from the canonical record's tail (its keys are
    sorted, so ``seq``, ``time`` and ``v`` come last, and quotes inside JSON strings are
    escaped so nothing else can end the text this way); every byte is still covered by
    the leaf hash, the segment digest and the signed root. ``strict`` parses and
    schema-checks every record (and its canonical form) as well.
    """
    out = SegmentContent(sha256=hashlib.sha256(data).hexdigest(), length=len(data))
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
