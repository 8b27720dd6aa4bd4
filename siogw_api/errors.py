"""The single error root of sio-gateway, with sub-roots grouped by origin.

Every failure the project reports is a :class:`SiogwError`. Sub-roots say where it came
from; the gRPC layer maps each class to a status code in one place
(``server.errors``) and the CLI prints :meth:`SiogwError.diagnostics` and exits with
:attr:`SiogwError.exit_code`. Malformed input always surfaces as one of these, never as
a bare ``ValueError`` or ``KeyError``.

Domain packages define their concrete errors in their own ``errors`` module, deriving
from the sub-roots here.
"""

from __future__ import annotations


class SiogwError(Exception):
    """Root of every error sio-gateway raises on purpose."""

    #: Process exit status the CLI uses for this error.
    exit_code: int = 1

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def diagnostics(self) -> str:
        """A human-readable, one-paragraph explanation for operators and the CLI."""
        if self.detail:
            return f"{self.message}: {self.detail}"
        return self.message


class ConfigError(SiogwError):
    """Bad or missing configuration (files, environment, PIN sources)."""

    exit_code = 2


class SigningError(SiogwError):
    """The signing layer could not produce a signature (token, key, PIN, session)."""

    exit_code = 3


class TrustError(SiogwError):
    """A signature, envelope or certificate did not verify against the trust policy."""

    exit_code = 4


class AuditError(SiogwError):
    """The audit log could not be written or did not verify."""

    exit_code = 5


class StorageError(SiogwError):
    """The database or a file store failed."""

    exit_code = 6


class PolicyError(SiogwError):
    """A request is well-formed and authentic but the rules refuse it."""

    exit_code = 7


class InputError(SiogwError):
    """A request or argument is malformed (bad IIN, unknown resource, oversized ...)."""

    exit_code = 8
