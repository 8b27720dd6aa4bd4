"""Writer process for the kill -9 test: appends forever, prints each acknowledged seq.

Usage: ``python crash_writer.py LOG_DIR KEY_PEM``. Prints ``ready`` once the log is open
(recovery done). Four threads append; every receipt is
printed as ``<seq> <leaf hash hex>`` and flushed only after ``append_sync`` returned,
i.e. after the record was fsync'd. Segments are tiny so seals happen all the time.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from audit import AuditConfig, AuditLog, AuditRecord
from signing import SoftwareSigner

ORIGIN = "crash.siogw/audit"


def main() -> None:
    log_dir, key_pem = sys.argv[1], sys.argv[2]
    lg = AuditLog.open(log_dir, SoftwareSigner.from_pem_file(key_pem), ORIGIN,
                       AuditConfig(segment_max_records=7, max_batch=16))
    out_lock = threading.Lock()
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    def worker(t: int) -> None:
        i = 0
        while True:
            r = lg.append_sync(AuditRecord(actor=f"w{t}", event="query", outcome="success",
                                           details={"i": i}, payload=b"x" * (i % 50)))
            with out_lock:
                sys.stdout.write(f"{r.seq} {r.leaf_hash.hex()}\n")
                sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


if __name__ == "__main__":
    main()
