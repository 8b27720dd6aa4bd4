"""The archive walk: reading a log directory, verifying it, iterating its records.

The only module of the verifier that touches the file system; the formats it reads are
:mod:`audit.segments` (pure), the proofs :mod:`signing.merkle`, the checkpoints
:mod:`signing.note`. Nothing here imports gRPC or SQLAlchemy.

* The layout: ``archive/seg-NNNNNNNN.log.gz`` + ``.seal`` (sealed segments),
  ``archive/keys.json`` (key history), ``live/seg-NNNNNNNN.log`` (the live tail); the
  name patterns and :func:`segment_name` / :func:`seal_name` are here, shared with
  :mod:`audit.log` (the writer).
* :func:`verify_archive` walks a log directory and raises at the FIRST bad place.
* :func:`iter_archive_records` and :func:`sealed_last_seq` read records and seals
  WITHOUT verifying them (indexing, catching up).
* :func:`load_trusted_keys` reads key-history JSON files and PEM public keys;
  :func:`load_checkpoints` reads signed checkpoints (files or a witness directory).

What is trusted: only ``trusted_keys`` (given from outside the archive). The archive's
``keys.json`` is checked against them (an entry changed, a key cut, a signing key
missing: error) unless the caller chose to trust it (``archive_keys_trusted``). Signed
checkpoints the caller passes (kept outside the archive) and the log's own
``root/checkpoint`` must all be reached by the records, with the same root at their
size (so they are consistent with each other). Records past the newest checkpoint are
a crash tail (a warning naming them); past a checkpoint marked ``stopped`` (a clean
stop) they are an error.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import multiprocessing
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import SegmentError
from audit.record import LoggedRecord, decode_record
from audit.segments import (
    MAGIC,
    Seal,
    SegmentContent,
    check_segment_content,
    key_valid_for,
    parse_key_history,
    parse_seal,
    scan_frames,
)
from signing.errors import CheckpointError, RootMismatch, VerificationError
from signing.merkle import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, ZERO_HASH_HEX, CompactRange
from signing.note import (
    Checkpoint,
    TrustedKey,
    default_algorithm,
    load_public_pem,
    open_checkpoint,
    parse_checkpoint_body,
)

#: A checkpoint whose signature was checked, and where it came from (for messages).
SourcedCheckpoint = tuple[Checkpoint, str]

# --- archive layout -----------------------------------------------------------------------
ARCHIVE_DIR = "archive"
LIVE_DIR = "live"
KEYS_FILE = "keys.json"
CHECKPOINT_FILE = "checkpoint"  # the latest signed checkpoint (log root, witness dir)
STOPPED_EXT = "stopped"  # extension line of the checkpoint signed at a clean stop
LIVE_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.log$")
SEALED_SEGMENT_RE = re.compile(r"^seg-(\d{8})\.log\.gz$")
SEAL_RE = re.compile(r"^seg-(\d{8})\.seal$")


def segment_name(number: int) -> str:
    return f"seg-{number:08d}.log"


def seal_name(number: int) -> str:
    return f"seg-{number:08d}.seal"


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


def load_checkpoints(
    paths: Sequence[str | os.PathLike[str]],
    trusted_keys: Sequence[TrustedKey],
) -> list[SourcedCheckpoint]:
    """Open signed checkpoints: files, and in directories every ``checkpoint*`` file.

    Each signature is checked against ``trusted_keys`` and the key history (the key
    must have been the audit key at that tree size). A directory with no checkpoint
    is an error: a witness that holds nothing proves nothing.
    """
    out: list[SourcedCheckpoint] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir()
                           if f.name.startswith(CHECKPOINT_FILE) and not f.name.endswith(".tmp"))
            if not files:
                raise VerificationError("witness directory holds no checkpoint",
                                        where=str(path))
        else:
            files = [path]
        for f in files:
            try:
                note = f.read_bytes()
            except OSError as exc:
                raise VerificationError(f"cannot read checkpoint: {exc.strerror}",
                                        where=str(f)) from exc
            cp, key = open_checkpoint(note, trusted_keys, where=str(f))
            if not key_valid_for(trusted_keys, key, cp.size):
                raise CheckpointError(
                    f"key {key.key_id[:16]} was not the audit key at tree size {cp.size}",
                    where=str(f))
            out.append((cp, str(f)))
    return out


def check_key_history(
    archive: Path, trusted_keys: Sequence[TrustedKey], signers: Iterable[str], size: int
) -> list[TrustedKey]:
    """Check the archive's ``keys.json`` against keys trusted from outside; return it.

    Every archive entry must be a trusted key, with the same validity when the trusted
    keys are a key history (changed); every key that signed a seal or checkpoint must
    be in it, and so must every trusted history key that took over before ``size``
    (cut or missing).
    """
    path = archive / KEYS_FILE
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointError("the archive's key history is missing", where=where) from exc
    history = parse_key_history(data, where=where)
    trusted = {k.key_id: k for k in trusted_keys}
    names = {k.key_id for k in history}
    for k in history:
        t = trusted.get(k.key_id)
        if t is None:
            raise CheckpointError(f"key history names key {k.key_id[:16]} that is not "
                                  "trusted", where=where)
        if t.valid_from_time is not None and (
            t.valid_from_size != k.valid_from_size or t.valid_from_time != k.valid_from_time
        ):
            raise CheckpointError(f"key history entry for {k.key_id[:16]} was changed",
                                  where=where)
    for key_id in signers:
        if key_id not in names:
            raise CheckpointError(f"key {key_id[:16]} signed the log but is missing from "
                                  "its key history", where=where)
    for t in trusted_keys:
        if t.valid_from_time is not None and t.valid_from_size < size and (
            t.key_id not in names
        ):
            raise CheckpointError(f"key history was cut: trusted key {t.key_id[:16]} "
                                  f"(from tree size {t.valid_from_size}) is missing",
                                  where=where)
    return history


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
    #: The newest signed checkpoint the records were checked against, and its source.
    latest_checkpoint: Checkpoint | None = None
    latest_checkpoint_where: str = ""
    #: Records past the newest checkpoint (a crash tail; an error after a clean stop).
    unsigned_records: int = 0


ProgressCallback = Callable[[int, int, str], None]


def _sealed_content(path: str, strict: bool) -> SegmentContent:
    """gunzip + :func:`~audit.segments.check_segment_content`; locate damage in bad gzip."""
    raw = Path(path).read_bytes()
    try:
        # One gzip member, nothing after it: gzip.decompress would skip trailing zero
        # padding or read a second member, so bytes appended to the file went unseen.
        inflater = zlib.decompressobj(31)
        data = inflater.decompress(raw)
        if not inflater.eof:
            raise EOFError("compressed data ends before the end-of-stream marker")
        if inflater.unused_data:
            raise EOFError(f"{len(inflater.unused_data)} bytes after the compressed data")
    except (OSError, EOFError, zlib.error) as exc:
        problem = f"compressed segment is corrupt ({exc})"
        try:  # our writer emits a bare 10-byte gzip header (no name, mtime 0)
            inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[10:])
        except zlib.error:
            inflated = b""
        out = check_segment_content(inflated, strict) if inflated else SegmentContent()
        if out.error is None and out.problem is not None:
            problem += f": {out.problem}"
        elif out.error is not None:
            problem += f": {out.error}"
        out.error, out.problem, out.complete_frame_bad = problem, None, True
        out.first_seq = out.first_seq if out.count else -1
        return out
    return check_segment_content(data, strict)


class _Walker:
    """The whole-log state across segments: one compact range, the last time."""

    def __init__(self) -> None:
        self.tree = CompactRange()
        self.prev_time: _dt.datetime | None = None
        self.anchor_sizes: set[int] = set()
        self.anchor_roots: dict[int, tuple[bytes, str]] = {}
        #: (first seq, file) of every segment consumed, to name where a seq lives
        self.files: list[tuple[int, str]] = []

    def consume(self, c: SegmentContent, where: str, *, torn_ok: bool = False) -> None:
        """Continue the log with one segment's content; raise at its first bad place."""
        tree = self.tree
        expected = tree.size
        self.files.append((expected, where))
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
        anchor_sizes = self.anchor_sizes
        leaves = c.leaves
        for off in range(0, len(leaves), HASH_SIZE):
            h = leaves[off : off + HASH_SIZE]
            index = size
            while index & 1:
                h = sha(NODE_PREFIX + nodes.pop() + h).digest()
                index >>= 1
            nodes.append(h)
            size += 1
            if size in anchor_sizes:
                tree.size = size
                self.anchor_roots[size] = (tree.root(), where)
        tree.size = size
        if c.count:
            self.prev_time = c.last_time
        if c.error is not None:
            raise SegmentError(c.error, where=where, seq=size)
        if c.problem is not None and (c.complete_frame_bad or not torn_ok):
            raise SegmentError(c.problem, where=where, seq=size)

    def file_of(self, seq: int, default: str) -> str:
        """The segment file that holds (or would hold) ``seq``."""
        found = default
        for first, where in self.files:
            if first <= seq:
                found = where
        return found


def _times_equal(text: str, value: _dt.datetime | None) -> bool:
    try:
        return _dt.datetime.fromisoformat(text) == value
    except ValueError:
        return False


def _sealed_contents(
    paths: list[Path], strict: bool, workers: int | None
) -> Iterator[SegmentContent]:
    """Contents of sealed segments in order; in worker processes for big archives."""
    if workers is None:
        total = sum(p.stat().st_size for p in paths)
        cpus = os.cpu_count() or 1
        workers = min(cpus, 4) if cpus > 1 and len(paths) >= 3 and total >= 4 << 20 else 1
    if workers <= 1:
        for p in paths:
            yield _sealed_content(str(p), strict)
        return
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
    checkpoints: Sequence[SourcedCheckpoint] = (),
    archive_keys_trusted: bool = True,
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

    ``anchor`` / ``checkpoints`` are checkpoints obtained out of band (already
    signature-checked: :func:`load_checkpoints`), e.g. from a witness directory or the
    gateway's database; the log root's own ``checkpoint`` file is added (required once
    a segment is sealed). The records must reach each one's size with its root there,
    so records removed from the end are detected too. Records past the newest are
    counted in ``unsigned_records`` with a warning (a crash tail), or are an error when
    it is marked ``stopped`` (nothing may follow a clean stop).

    ``archive_keys_trusted=False`` (``trusted_keys`` come from outside): the archive's
    ``keys.json`` is checked against them (:func:`check_key_history`).

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
    known: list[SourcedCheckpoint] = list(checkpoints)
    signers: set[str] = set()
    if anchor is not None:
        known.append((anchor, "anchor"))
    own = root / CHECKPOINT_FILE
    if archive != root and own.exists():
        note = own.read_bytes()
        cp, key = open_checkpoint(note, trusted_keys, origin=origin, where=str(own))
        if not key_valid_for(trusted_keys, key, cp.size):
            raise CheckpointError(
                f"key {key.key_id[:16]} was not the audit key at tree size {cp.size}",
                where=str(own))
        known.append((cp, str(own)))
        signers.add(key.key_id)
    elif archive != root and seals:
        raise CheckpointError("the log's checkpoint file is missing", where=str(own))
    for cp, where in known:
        if origin is not None and cp.origin != origin:
            raise CheckpointError("checkpoint is for another log", where=where)
        origin = cp.origin
        walker.anchor_sizes.add(cp.size)
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
            signers.add(key.key_id)
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
        content = check_segment_content(path.read_bytes(), strict)
        walker.consume(content, str(path), torn_ok=is_last)
        if content.problem is not None:
            report.warnings.append(
                f"{path.name}: seq {walker.tree.size}: {content.problem} (torn tail left "
                "by a crash; checked against the checkpoints below)"
            )
        if not content.count and not is_last:
            raise SegmentError("rolled segment has no records", where=str(path),
                               seq=walker.tree.size)
        report.live_records += content.count
        if progress is not None:
            progress(walker.tree.size, report.sealed_segments, path.name)
    report.tree_size = report.records = walker.tree.size
    report.root_hash = walker.tree.root()
    end = walker.tree.size
    last_file = walker.files[-1][1] if walker.files else str(archive)
    for cp, where in sorted(known, key=lambda k: k[0].size):
        if end < cp.size:
            raise VerificationError(
                f"records end at tree size {end} but the checkpoint {where} has size "
                f"{cp.size}: signed records are missing",
                where=last_file, seq=end,
            )
        root_at, at_file = walker.anchor_roots.get(cp.size, (EMPTY_ROOT, str(archive)))
        if root_at != cp.root_hash:
            raise RootMismatch(root_at, cp.root_hash,
                               what=f"root at tree size {cp.size} differs from the "
                                    f"checkpoint {where}",
                               where=at_file, seq=cp.size - 1 if cp.size else None)
    if not archive_keys_trusted:
        check_key_history(archive, trusted_keys, signers, end)
    if known:
        latest, latest_where = max(
            known, key=lambda k: (k[0].size, STOPPED_EXT in k[0].extensions))
        report.latest_checkpoint, report.latest_checkpoint_where = latest, latest_where
        covered = latest.size
    else:
        latest, covered = None, report.sealed_size
    report.unsigned_records = end - max(covered, report.sealed_size)
    if report.unsigned_records > 0:
        first = max(covered, report.sealed_size)
        if latest is not None and STOPPED_EXT in latest.extensions:
            raise VerificationError(
                f"{report.unsigned_records} records after the clean stop at tree size "
                f"{latest.size} ({latest_where}) are not covered by any signed checkpoint",
                where=walker.file_of(first, last_file), seq=first,
            )
        report.warnings.append(
            f"seq {first}..{end - 1}: {report.unsigned_records} records past the latest "
            f"checkpoint (tree size {covered}) are not covered by a signature yet (a crash "
            "tail: the log signs them when it is opened again)"
        )
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


def iter_live_records(
    directory: str | os.PathLike[str], number: int, start: int, end: int
) -> list[tuple[bytes, LoggedRecord]]:
    """(canonical bytes, record) of the whole frames of live segment ``number`` between
    byte ``start`` (0, or the end of a frame read before) and ``end`` (the log's durable
    length, :meth:`audit.log.AuditLog.durable_extent`), unverified: an indexer that read
    the segment up to ``start`` reads only what was appended since. Raises ``OSError``
    when the segment is no longer live (sealed meanwhile)."""
    path = Path(directory) / LIVE_DIR / segment_name(number)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(max(0, end - start))
    if start > 0:
        data = MAGIC + data  # frames follow a frame boundary as they follow the magic
    return [(body, decode_record(body, check_canonical=False))
            for body in scan_frames(data).bodies]


def iter_archive_records(
    directory: str | os.PathLike[str],
    *,
    after_seq: int = -1,
    durable: tuple[int, int] | None = None,
) -> Iterable[tuple[bytes, LoggedRecord]]:
    """Yield (canonical bytes, record) for every record, sealed then live, unverified.

    With ``after_seq``, sealed segments whose seal says they end at or before it are not
    read at all (an indexer catching up reads only what is new); records at or before
    ``after_seq`` may still come from the segments that are read. ``durable`` is the
    running log's :meth:`audit.log.AuditLog.durable_extent`: of the live segment that
    number only the first ``length`` bytes are read, and live segments above it not at
    all. Call :func:`verify_archive` first when the result must be trusted.
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
                if durable is not None and int(m.group(1)) > durable[0]:
                    break  # started after ``durable`` was taken: nothing durable in it yet
                if durable is not None and int(m.group(1)) == durable[0]:
                    with open(p, "rb") as fh:  # its durable bytes only, read once
                        data = fh.read(durable[1])
                else:
                    data = p.read_bytes()
                for body in scan_frames(data).bodies:
                    yield body, decode_record(body, check_canonical=False)
