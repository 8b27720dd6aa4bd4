"""Errors the client library raises (sub-roots from :mod:`siogw_api.errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from siogw_api.errors import InputError, SiogwError, TrustError


class ClientError(SiogwError):
    """The gateway answered a call with a gRPC error status.

    ``code`` is the :class:`grpc.StatusCode`; ``server_message`` is the gateway's own
    explanation (the status details). The message -- what ``str()`` and
    :meth:`diagnostics` show -- names the method, the status code, the reason and the
    gateway's explanation. ``reason``
    and ``metadata`` are the status's ErrorInfo (``docs/errors.md``); ``receipt`` is the
    ``siogw.v1.AuditReceipt`` the status carries, if any (a replayed request id that was
    answered: the receipt of that answer, as ``clients.Receipt``).
    """

    exit_code = 9

    def __init__(
        self,
        method: str,
        code: grpc.StatusCode,
        server_message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        receipt: Any = None,
    ) -> None:
        # The whole answer is the message, so str(), logs and the CLI all show it:
        # "Query refused: PERMISSION_DENIED (RESOURCE_NOT_ALLOWED): <the gateway's words>".
        text = f"{method} refused: {code.name}"
        if reason:
            text += f" ({reason})"
        if server_message:
            text += f": {server_message}"
        super().__init__(text)
        self.method = method
        self.code = code
        self.server_message = server_message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.receipt = receipt


class ResultVerificationError(TrustError):
    """The gateway's answer did not verify (signature, signer, or binding to the request)."""


class ClientUsageError(InputError):
    """The library or the CLI was called wrongly (no session, missing signer, bad option)."""
