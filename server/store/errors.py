"""The errors of the control-plane store (every database failure is
:class:`StoreUnavailable`; the others are refusals the gateway maps to statuses)."""

from __future__ import annotations

from siogw_api.errors import InputError, PolicyError, StorageError


class StoreUnavailable(StorageError):
    """The control-plane database failed."""


class ReplayDetected(PolicyError):
    """A request id was seen before (R7: each signed request counts once)."""

    reason = "REPLAY"


class UnknownUser(InputError):
    """No user with this id."""

    reason = "UNKNOWN_USER"


class DuplicateUser(InputError):
    """A user with this id exists already."""

    reason = "DUPLICATE_USER"


class CertificateInUse(InputError):
    """This certificate is registered to another user (keys are not transferable, R7)."""

    reason = "CERTIFICATE_IN_USE"
