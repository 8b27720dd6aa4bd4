"""The errors of the control-plane store (every database failure is
:class:`StoreUnavailable`; the others are refusals the gateway maps to statuses)."""

from __future__ import annotations

from siogw_api.errors import InputError, PolicyError, StorageError


class StoreUnavailable(StorageError):
    """The control-plane database failed."""


class ReplayDetected(PolicyError):
    """A request id was seen before (R7: each signed request counts once)."""

    reason_code = "REPLAY"


class UnknownUser(InputError):
    """No user with this id."""

    reason_code = "UNKNOWN_USER"


class DuplicateUser(InputError):
    """A user with this id exists already."""

    reason_code = "DUPLICATE_USER"


class CertificateInUse(InputError):
    """This certificate is registered to another user (keys are not transferable, R7)."""

    reason_code = "CERTIFICATE_IN_USE"
