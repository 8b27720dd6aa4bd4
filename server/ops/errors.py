"""Errors of the operations domain; each derives from a sub-root of :mod:`siogw_api.errors`.

The gRPC error mapping (``server.errors``) already maps the sub-roots: ``PolicyError`` to
``PERMISSION_DENIED``, ``InputError`` to ``INVALID_ARGUMENT``, ``StorageError`` to
``UNAVAILABLE``. The ``reason_code`` attribute becomes the ErrorInfo reason.
"""

from __future__ import annotations

from siogw_api.errors import InputError, PolicyError, StorageError


class PermissionDenied(PolicyError):
    """The caller's role gives no right to this action, or the action is out of scope."""

    reason_code = "PERMISSION_DENIED"


class OpsStorageError(StorageError):
    """The operations tables could not be read or written."""

    reason_code = "OPS_STORAGE"


class NotFound(InputError):
    """No application / user / resolution / certificate with this id."""

    reason_code = "NOT_FOUND"


class InvalidState(InputError):
    """The object is not in a state that allows the action (decided twice, ...)."""

    reason_code = "INVALID_STATE"


class Duplicate(InputError):
    """An object with this identity exists already (user id, certificate, resolution)."""

    reason_code = "DUPLICATE"


class InvalidDocument(InputError):
    """A signed document's payload is not the JSON object the domain expects."""

    reason_code = "INVALID_DOCUMENT"


class NoticeTooShort(InputError):
    """A maintenance window starts sooner than the notice period and is not marked urgent
    (§14)."""

    reason_code = "MAINTENANCE_NOTICE"


class SignerMismatch(PolicyError):
    """A document verified, but not with the certificate it must be signed with."""

    reason_code = "SIGNER_MISMATCH"



class DocumentReplayed(PolicyError):
    """A signed document was filed before: each counts once (R7). The id of its first
    filing is in the message and in the ErrorInfo metadata (``original_id``)."""

    reason_code = "REPLAY"

    def __init__(self, message: str, *, original_id: str, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.original_id = original_id

    def error_metadata(self) -> dict[str, str]:
        return {"original_id": self.original_id}
