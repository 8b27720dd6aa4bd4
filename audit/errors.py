"""Errors of the audit log (sub-root :class:`siogw.errors.AuditError`).

Writing-side errors (:class:`AuditUnavailable`) tell the caller a record was *not*
acknowledged. Verification-side errors (:class:`VerificationError` and its children)
name the first bad place precisely: the file, the sequence number and what failed.
"""

from __future__ import annotations

from siogw.errors import AuditError


class AuditUnavailable(AuditError):
    """The log is in the failed state (write error, disk full, signer down past grace).

    No record is acknowledged while the log is failed; :attr:`reason` says why.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"audit log unavailable: {reason}")
        self.reason = reason


class AuditClosed(AuditUnavailable):
    """The log has been closed."""

    def __init__(self) -> None:
        super().__init__("audit log is closed")


class MalformedRecord(AuditError):
    """A record is not well formed (bad field, not canonical, float, oversized)."""


class VerificationError(AuditError):
    """Something in the archive, a proof or a checkpoint does not verify.

    ``where`` names the file (segment or seal), ``seq`` the sequence number when one is
    known, ``what`` the failed check. :meth:`place` is the one line the CLI prints.
    """

    def __init__(
        self, what: str, *, where: str | None = None, seq: int | None = None
    ) -> None:
        self.what = what
        self.where = where
        self.seq = seq
        super().__init__(self.place())

    def place(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.what}" if prefix else self.what

    def diagnostics(self) -> str:
        return self.place()


class ProofError(VerificationError):
    """A Merkle proof is malformed or its preconditions do not hold."""


class RootMismatch(ProofError):
    """A proof or a set of leaves computes a different root from the expected one."""

    def __init__(
        self,
        computed: bytes,
        expected: bytes,
        *,
        what: str = "root mismatch",
        where: str | None = None,
        seq: int | None = None,
    ) -> None:
        self.computed = computed
        self.expected = expected
        super().__init__(
            f"{what} (computed {computed.hex()[:16]}…, expected {expected.hex()[:16]}…)",
            where=where,
            seq=seq,
        )


class CheckpointError(VerificationError):
    """A checkpoint (signed note) is malformed or its signature does not verify."""


class SegmentError(VerificationError):
    """A segment file is malformed: bad magic, torn frame, CRC mismatch, bad record."""
