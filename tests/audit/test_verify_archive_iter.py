"""iter_archive_records(after_seq=...): an indexer catching up reads only what is new."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.archive import iter_archive_records, seal_name, sealed_last_seq, segment_name


def test_sealed_segments_before_after_seq_are_not_read(
    populated: tuple[Path, Path, list],
) -> None:
    log_dir, _keys, receipts = populated  # 4 sealed segments of 5 records, 3 live
    archive = log_dir / "archive"
    assert [sealed_last_seq(archive / seal_name(n)) for n in range(1, 5)] == [4, 9, 14, 19]
    everything = [rec.seq for _body, rec in iter_archive_records(log_dir)]
    assert everything == list(range(23)) == [r.seq for r in receipts]
    # Segments 1 and 2 end at seq 9: with after_seq=9 they are skipped without being read.
    # Remove them to prove it: a full read now fails, a catch-up read does not.
    for n in (1, 2):
        (archive / (segment_name(n) + ".gz")).unlink()
    tail = [rec.seq for _body, rec in iter_archive_records(log_dir, after_seq=9)]
    assert tail == list(range(10, 23))
    # after_seq=12 falls inside segment 3: it is read whole (the caller filters).
    assert next(rec.seq for _b, rec in iter_archive_records(log_dir, after_seq=12)) == 10
    with pytest.raises(FileNotFoundError):  # a full read needs every sealed segment
        list(iter_archive_records(log_dir))


def test_an_unreadable_seal_means_the_segment_is_read(
    populated: tuple[Path, Path, list],
) -> None:
    log_dir, _keys, _receipts = populated
    archive = log_dir / "archive"
    (archive / seal_name(1)).write_bytes(b"not a note")
    assert sealed_last_seq(archive / seal_name(1)) is None
    seqs = [rec.seq for _body, rec in iter_archive_records(log_dir, after_seq=9)]
    assert seqs[:5] == [0, 1, 2, 3, 4] and seqs[5:] == list(range(10, 23))
