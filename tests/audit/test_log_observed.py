"""What the audit log tells the gateway's metrics (issue 17): each group commit
(``on_commit``: records, fsync seconds), the queue depth, and when it last published a
checkpoint and a seal."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

from audit import AuditConfig, AuditLog
from tests.audit.conftest import ORIGIN, rec, soft_signer


def test_commits_are_reported_with_their_size_and_fsync_time(tmp_path: Path) -> None:
    commits: list[tuple[int, float]] = []
    log = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN,
                        AuditConfig(segment_max_records=5),
                        on_commit=lambda n, s: commits.append((n, s)))
    try:
        assert log.publication_times[1] is None  # no seal yet (a checkpoint at open)
        assert log.queue_depth == 0
        futures = [log.submit(rec(i)) for i in range(12)]
        concurrent.futures.wait(futures)
        assert all(f.exception() is None for f in futures)
        # every durable record counted once, in commits of at least one
        assert sum(n for n, _ in commits) == 12
        assert all(n >= 1 and s >= 0 for n, s in commits)
        before = time.time()
        log.checkpoint()
        checkpoint_at, _ = log.publication_times
        assert checkpoint_at is not None and checkpoint_at >= before
        log.seal_now(timeout=30)
        _, seal_at = log.publication_times
        assert seal_at is not None and seal_at >= before
    finally:
        log.close()


def test_a_refused_record_is_not_counted(tmp_path: Path) -> None:
    commits: list[int] = []
    log = AuditLog.open(tmp_path / "log", soft_signer(), ORIGIN,
                        AuditConfig(max_record_bytes=2048),
                        on_commit=lambda n, s: commits.append(n))
    try:
        bad = log.submit(rec(1, blob="x" * 4096))
        good = log.submit(rec(2))
        assert bad.exception(timeout=30) is not None
        assert good.result(timeout=30).seq == 0
        assert sum(commits) == 1
    finally:
        log.close()
