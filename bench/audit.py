"""Audit log benchmark: durable appends/s vs raw group-commit fsync, and verification speed.

Run: ``.venv/bin/python bench/audit.py [--appends N] [--threads T] [--verify-records M]``

1. **Writer**: T threads call ``AuditLog.append_sync`` (each returns only after fsync;
   the writer group-commits concurrent appends), segments seal every 10 000 records with
   a software ECDSA key.
2. **Raw baseline**, same run, same disk: the same T threads hand the *same frame bytes*
   to a minimal group-commit loop (one ``write`` + one ``fsync`` per batch, no encoding,
   hashing, Merkle levels or sealing). The ratio writer/raw is printed (target >= 0.3).
3. **Checkpoints**: the writer runs with the default ``checkpoint_interval`` (1 s) and
   counts the checkpoints it signed; a separate loop measures what one checkpoint
   costs (sign + fsync'd ``checkpoint`` file), printed beside the append rate.
4. **Verification**: ``verify_archive`` over an archive of M records, in one process and
   with automatic worker processes (target >= 100k/s). The archive is filled in windows
   below the log's queue limit (a submit past it is refused, by design).

Numbers only; no pass/fail (tests never assert timings).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import AuditConfig, AuditLog, AuditRecord
from audit.archive import verify_archive
from audit.record import encode_record
from audit.segments import MAGIC, encode_frame
from signing import Algorithm, SoftwareSigner, generate_software_key
from siogw_api.timeutil import now_utc


def record(i: int) -> AuditRecord:
    return AuditRecord(
        actor=f"analyst-{i % 97}",
        event="query",
        outcome="success",
        cert_fingerprint=f"{i % 251:02x}" * 32,
        details={"resource": 1 + i % 52, "basis": "financial monitoring",
                 "task": f"CASE-2026-{i % 1000:04d}", "request_id": f"req-{i}",
                 "result_sha256": "ab" * 32, "result_summary": "3 rows"},
        payload=b"E" * 400,  # stands in for a signed request envelope
    )


def bench_writer(
    directory: Path, signer: SoftwareSigner, n: int, threads: int
) -> tuple[float, int]:
    """(durable appends/s, checkpoints signed during the run)."""
    signed: list[object] = []
    lg = AuditLog.open(directory, signer, "bench.siogw/audit",
                       AuditConfig(segment_max_records=10_000), on_checkpoint=signed.append)
    per = n // threads

    def work(t: int) -> None:
        for i in range(per):
            lg.append_sync(record(t * per + i))

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - start
    during = len(signed)
    lg.close()
    return per * threads / elapsed, during


def bench_checkpoint_cost(directory: Path, signer: SoftwareSigner, rounds: int = 200) -> float:
    """Seconds one checkpoint costs: (append + checkpoint) minus append alone."""
    lg = AuditLog.open(directory, signer, "bench.siogw/checkpoint",
                       AuditConfig(checkpoint_interval=3600))
    try:
        start = time.perf_counter()
        for i in range(rounds):
            lg.append_sync(record(i))
        plain = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(rounds):
            lg.append_sync(record(i))
            lg.checkpoint()
        with_cp = time.perf_counter() - start
    finally:
        lg.close()
    return max(0.0, with_cp - plain) / rounds


def bench_raw(path: Path, frames: list[bytes], threads: int) -> float:
    """Minimal group commit: threads enqueue frames, one loop writes+fsyncs per batch."""
    q: queue.Queue[tuple[bytes, threading.Event] | None] = queue.Queue()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, MAGIC)

    def writer() -> None:
        while True:
            item = q.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    q.put(None)
                    break
                batch.append(nxt)
            os.write(fd, b"".join(f for f, _ in batch))
            os.fsync(fd)
            for _, ev in batch:
                ev.set()

    per = len(frames) // threads

    def work(t: int) -> None:
        for frame in frames[t * per : (t + 1) * per]:
            ev = threading.Event()
            q.put((frame, ev))
            ev.wait()

    w = threading.Thread(target=writer)
    w.start()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - start
    q.put(None)
    w.join()
    os.close(fd)
    return per * threads / elapsed


def bench_verify(
    directory: Path, signer: SoftwareSigner, n: int
) -> tuple[float, float, int]:
    lg = AuditLog.open(directory, signer, "bench.siogw/verify",
                       AuditConfig(segment_max_records=20_000))
    window = max(1, lg.config.queue_limit // 2)
    for lo in range(0, n, window):
        futures = [lg.submit(record(i)) for i in range(lo, min(n, lo + window))]
        for f in futures:
            f.result()
    keys = lg.trusted_keys()
    lg.close()
    rates = []
    for workers in (1, None):  # in-process, then automatic (worker processes)
        start = time.perf_counter()
        report = verify_archive(directory, keys, workers=workers)
        rates.append(report.records / (time.perf_counter() - start))
    return rates[0], rates[1], report.sealed_segments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--appends", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--verify-records", type=int, default=200_000)
    ap.add_argument("--dir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    args = ap.parse_args()
    signer = SoftwareSigner(generate_software_key(Algorithm.ECDSA_P256_SHA256))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        now = now_utc()
        frames = [encode_frame(encode_record(record(i), i, now)) for i in range(args.appends)]
        raw = bench_raw(base / "raw.log", frames, args.threads)
        real, checkpoints = bench_writer(base / "log", signer, args.appends, args.threads)
        raw2 = bench_raw(base / "raw2.log", frames, args.threads)  # bracket the real run
        raw_mean = (raw + raw2) / 2
        print(f"durable appends/s, AuditLog ({args.threads} threads): {real:12,.0f}")
        print(f"durable appends/s, raw group-commit fsync (same bytes): {raw_mean:12,.0f}")
        print(f"ratio AuditLog/raw: {real / raw_mean:.2f} (target >= 0.30)")
        cost = bench_checkpoint_cost(base / "cp", signer)
        print(f"checkpoints signed during the AuditLog run: {checkpoints} (interval 1 s); "
              f"one costs {cost * 1000:.2f} ms (sign + fsync'd file), "
              f"{cost * 100:.2f}% of the writer's time at one per second")
        one, auto, segs = bench_verify(base / "verify", signer, args.verify_records)
        print(f"verification, 1 process:        {one:12,.0f} records/s")
        print(f"verification, parallel (auto):  {auto:12,.0f} records/s "
              f"({args.verify_records} records, {segs} sealed segments; target >= 100,000/s)")
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} during the run")


if __name__ == "__main__":
    main()
