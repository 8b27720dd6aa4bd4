"""The WORM audit log-journal (R11): sealed, signed segments over one Merkle tree.

Public API (what the server uses)::

    from audit import AuditLog, AuditConfig, AuditRecord, EventType, Outcome, Receipt

    log = AuditLog.open(directory, signer, origin, AuditConfig())   # recovers after a crash
    receipt = await log.append(AuditRecord(actor=..., event=EventType.QUERY,
                                           outcome=Outcome.SUCCESS,
                                           cert_fingerprint=sha256_hex_of_cert_der,
                                           details={"resource": 11, "basis": ...,
                                                    "task": ..., "request_id": ...,
                                                    "result_sha256": ...,
                                                    "result_summary": ...},
                                           payload=signed_envelope_bytes))
    receipt = log.append_sync(record)            # same, blocking (threads, CLI)
    fut = log.submit(record)                     # concurrent.futures.Future[Receipt]
    log.checkpoint() -> SignedCheckpoint         # signed C2SP checkpoint of the current tree
    log.latest_checkpoint -> SignedCheckpoint|None  # the newest published (timer, seal, stop)
    log.inclusion_proof(seq, tree_size=None) -> Proof
    log.consistency_proof(size1, size2=None) -> Proof
    log.proof_bundle(receipt) -> dict            # for ``siogw audit prove --bundle``
    log.health() -> Health                       # ok|degraded|failed|closed + reason
    log.seal_now(timeout=None)                   # roll and seal the live segment now
    log.close()                                  # seals the live segment, signs "stopped"

``append`` resolves only after the record is fsync'd (group commit: concurrent appends
share one write and one fsync); ``Receipt`` = (origin, seq, leaf_hash, tree_size, time).
When the log cannot write (OSError, disk full) or the seal signer keeps failing (or
hangs) past ``AuditConfig.seal_grace_seconds``, the log *fails closed*: every append
raises :class:`AuditUnavailable` (an ``AuditError``) with the reason, and ``health()``
says why. Records are never acknowledged unless durable. ``MalformedRecord`` is raised
for records that cannot be encoded (floats, oversize); the log stays healthy.

Offline verification (no gRPC or SQLAlchemy): :mod:`audit.segments` (pure formats:
seals, frames, segment content, key history), :mod:`audit.archive` (the archive walk,
the only file access: ``verify_archive(dir, trusted_keys, progress=cb, anchor=None,
strict=False, workers=None)``, ``iter_archive_records``) and :mod:`audit.receipts`
(``verify_receipt``, ``verify_consistency_notes``); proofs are :mod:`signing.merkle`,
checkpoints :mod:`signing.note`. Index for Reports: :mod:`audit.index` (``AuditIndex``). CLI:
``siogw audit verify|prove|reindex`` (:mod:`audit.cli`). Formats and decisions:
``docs/adr/0003-audit-log.md``.
"""

from __future__ import annotations

from audit.archive import verify_archive
from audit.errors import AuditClosed, AuditUnavailable, MalformedRecord, SegmentError
from audit.log import AuditConfig, AuditLog, Health, Proof, Receipt, SignedCheckpoint
from audit.record import AuditRecord, EventType, LoggedRecord, Outcome
from signing.errors import CheckpointError, ProofError, RootMismatch, VerificationError
from signing.note import TrustedKey

__all__ = [
    "AuditClosed",
    "AuditConfig",
    "AuditLog",
    "AuditRecord",
    "AuditUnavailable",
    "CheckpointError",
    "EventType",
    "Health",
    "LoggedRecord",
    "MalformedRecord",
    "Outcome",
    "Proof",
    "ProofError",
    "Receipt",
    "RootMismatch",
    "SegmentError",
    "SignedCheckpoint",
    "TrustedKey",
    "VerificationError",
    "verify_archive",
]
