"""The errors of the control-plane store (every database failure is
:class:`StoreUnavailable`; the others are refusals the gateway maps to statuses)."""

from __future__ import annotations

from siogw_api.errors import InputError, PolicyError, StorageError


class StoreUnavailable(StorageError):
    """The control-plane database failed."""


class ReplayDetected(PolicyError):
    """A request id was seen before (R7: each signed request counts once).

    ``receipt`` is ``(seq, leaf_hash, tree_size)`` of the record that answered the
    request the first time, when the gateway found it: a client that lost the answer can
    prove what happened (ErrorInfo metadata ``seq``/``leaf_hash``/``tree_size`` and an
    ``AuditReceipt`` detail, :func:`server.errors.to_status`).
    """

    reason_code = "REPLAY"
    receipt: tuple[int, bytes, int] | None = None

    def error_metadata(self) -> dict[str, str]:
        if self.receipt is None:
            return {}
        seq, leaf_hash, tree_size = self.receipt
        return {"seq": str(seq), "leaf_hash": leaf_hash.hex(), "tree_size": str(tree_size)}


class UnknownUser(InputError):
    """No user with this id."""

    reason_code = "UNKNOWN_USER"


class DuplicateUser(InputError):
    """A user with this id exists already."""

    reason_code = "DUPLICATE_USER"


class CertificateInUse(InputError):
    """This certificate is registered to another user (keys are not transferable, R7)."""

    reason_code = "CERTIFICATE_IN_USE"


class UnknownWindow(InputError):
    """No maintenance window with this id."""

    reason_code = "UNKNOWN_WINDOW"


class WindowNotCancellable(InputError):
    """The maintenance window has ended or is cancelled already."""

    reason_code = "WINDOW_NOT_CANCELLABLE"
