"""Errors of the audit log (sub-root :class:`siogw_api.errors.AuditError`).

Writing-side errors (:class:`AuditUnavailable`) tell the caller a record was *not*
acknowledged. Verification-side errors derive from :class:`signing.errors.VerificationError` (proofs
and checkpoints are verified by :mod:`signing.merkle` and :mod:`signing.note`): they name
the first bad place precisely: the file, the sequence number and what failed.
"""

from __future__ import annotations

from signing.errors import VerificationError
from siogw_api.errors import AuditError


class AuditUnavailable(AuditError):
    """The log is in the failed state (write error, disk full, signer down past grace).

    No record is acknowledged while the log is failed; :attr:`reason` says why, in our
    own words (it is answered to callers); an OS or peer error's text goes in ``detail``.
    """

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        super().__init__(f"audit log unavailable: {reason}", detail=detail)
        self.reason = reason


class AuditClosed(AuditUnavailable):
    """The log has been closed."""

    def __init__(self) -> None:
        super().__init__("audit log is closed")


class MalformedRecord(AuditError):
    """A record is not well formed (bad field, not canonical, float, oversized)."""


class SegmentError(VerificationError):
    """A segment file is malformed: bad magic, torn frame, CRC mismatch, bad record."""
