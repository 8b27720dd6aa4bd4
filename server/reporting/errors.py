"""The errors of the FM-1 reporting channel (issue 16; reasons in ``docs/errors.md``)."""

from __future__ import annotations

from server.store.errors import ReplayDetected
from siogw_api.errors import InputError


class InvalidFm1Field(InputError):
    """A field of an FM-1 message is missing, malformed or out of bounds.

    ``INVALID_ARGUMENT`` with the ErrorInfo metadata ``field`` (the field's path in the
    message, e.g. ``operation.currency`` or ``parties[1].idn``) and ``check`` (``missing``,
    ``type``, ``format``, ``length``, ``range``, ``unknown``, ``not_allowed``,
    ``order``, ``identifier``, ``code``). The value itself is never echoed: it may be
    personal data.
    """

    reason_code = "INVALID_FM1_FIELD"

    def __init__(self, field: str, check: str, message: str) -> None:
        super().__init__(f"FM-1 field {field}: {message}")
        self.field = field
        self.check = check

    def error_metadata(self) -> dict[str, str]:
        return {"field": self.field, "check": self.check}


class Fm1Duplicate(ReplayDetected):
    """A message with this id was accepted from this provider before (``ALREADY_EXISTS``).

    The status carries the original submission's receipt (ErrorInfo metadata ``seq``,
    ``leaf_hash``, ``tree_size`` and an ``AuditReceipt`` detail, as a replayed query's),
    plus ``message_id`` and ``same_content`` (``true`` when the signed message is the
    one accepted). Nothing is recorded for it but the refusal.
    """

    reason_code = "FM1_DUPLICATE"
    message_id: str = ""
    same_content: bool = False

    def error_metadata(self) -> dict[str, str]:
        return {**super().error_metadata(), "message_id": self.message_id,
                "same_content": "true" if self.same_content else "false"}
