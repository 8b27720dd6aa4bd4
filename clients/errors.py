"""Errors the client library raises (sub-roots from :mod:`siogw_api.errors`)."""

from __future__ import annotations

import grpc

from siogw_api.errors import InputError, SiogwError, TrustError


class ClientError(SiogwError):
    """The gateway answered a call with a gRPC error status.

    ``code`` is the :class:`grpc.StatusCode`; ``server_message`` is the gateway's own
    explanation (the status details), shown verbatim by :meth:`diagnostics`.
    """

    exit_code = 9

    def __init__(self, method: str, code: grpc.StatusCode, server_message: str) -> None:
        super().__init__(f"{method} refused: {code.name}", detail=server_message or None)
        self.method = method
        self.code = code
        self.server_message = server_message


class ResultVerificationError(TrustError):
    """The gateway's answer did not verify (signature, signer, or binding to the request)."""


class ClientUsageError(InputError):
    """The library or the CLI was called wrongly (no session, missing signer, bad option)."""
