"""The single error root of sio-gateway, with sub-roots grouped by origin.

Every failure the project reports is a :class:`SiogwError`. Sub-roots say where it came
from; the gRPC layer maps each class to a status code in one place
(``server.errors``) and the CLI prints :meth:`SiogwError.diagnostics` and exits with
:attr:`SiogwError.exit_code`. Malformed input always surfaces as one of these, never as
a bare ``ValueError`` or ``KeyError``.

Domain packages define their concrete errors in their own ``errors`` module, deriving
from the sub-roots here.

**One vocabulary of reasons.** Every error class has a :attr:`SiogwError.reason_code`: an
UPPER_SNAKE word that the gateway sends as the ``reason`` of its ``google.rpc.ErrorInfo``
(domain ``siogw``) and records in the audit log, so that programs branch on it and never
on message text. A class that does not name its code gets its class name in UPPER_SNAKE
(``UntrustedChain`` -> ``UNTRUSTED_CHAIN``), checked when the class is defined. The code
is a property of the class only: what varies per instance (a free-text reason, a tag such
as an IIN's failed check) goes in the message or in :meth:`SiogwError.error_metadata`.
Every code is listed in ``docs/errors.md`` (a test keeps the list complete).

**Neutral wording.** An error's ``message`` is the project's own text: what was wrong, in
the gateway's terms. The text of a foreign exception (a parser, a codec, the database
driver) never goes into a message; it goes into ``detail``, which
:meth:`SiogwError.diagnostics` shows to operators (logs, the local CLI) and
:meth:`SiogwError.public_message` -- what the gateway answers and records -- leaves out.
"""

from __future__ import annotations

import re
from typing import ClassVar

#: What a code looks like: an UPPER_SNAKE word.
CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


def upper_snake(name: str) -> str:
    """``UntrustedChain`` -> ``UNTRUSTED_CHAIN``, ``KeyURIError`` -> ``KEY_URI_ERROR``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "ERROR"


class SiogwError(Exception):
    """Root of every error sio-gateway raises on purpose."""

    #: Process exit status the CLI uses for this error.
    exit_code: int = 1
    #: The UPPER_SNAKE reason of this class (see the module docstring).
    reason_code: ClassVar[str] = "SIOGW_ERROR"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "reason_code" not in cls.__dict__:
            cls.reason_code = upper_snake(cls.__name__)
        if not CODE_PATTERN.fullmatch(cls.reason_code):
            raise TypeError(
                f"{cls.__qualname__}.reason_code {cls.reason_code!r} is not UPPER_SNAKE"
            )

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def error_metadata(self) -> dict[str, str]:
        """Machine-readable facts of this instance for the ErrorInfo metadata (none here)."""
        return {}

    def diagnostics(self) -> str:
        """A human-readable, one-paragraph explanation for operators and the CLI."""
        if self.detail:
            return f"{self.message}: {self.detail}"
        return self.message

    def public_message(self) -> str:
        """What a gateway's client and its audit record see: the message, never ``detail``.

        ``detail`` may carry a library's or the database's own text (a parser's position,
        a host name, an SQL statement); it is for the operator's log and the local CLI
        only. Messages are the project's own wording, so a subclass may add facts of its
        own (never a foreign exception's text) by overriding this.
        """
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
