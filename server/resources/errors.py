"""Errors of the data plane (catalogue, identifiers, connectors, dispatch).

Input problems derive from :class:`~siogw_api.errors.InputError`, so the gRPC layer maps
them to ``INVALID_ARGUMENT``; a refused basis derives from
:class:`~siogw_api.errors.PolicyError` (``PERMISSION_DENIED``). Failures of an upstream
information system are their own sub-root, :class:`UpstreamError`; suggested mapping:
:class:`UpstreamUnavailable` → ``UNAVAILABLE`` (the client may retry later),
:class:`UpstreamRejected` → ``FAILED_PRECONDITION`` (the upstream refused or answered
nonsense; retrying the same query will not help).
"""

from __future__ import annotations

from siogw_api.errors import InputError, PolicyError, SiogwError

__all__ = [
    "BasisNotAllowed",
    "InvalidIdentifier",
    "InvalidParameters",
    "UnknownResource",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
]


class UnknownResource(InputError):
    """The resource number is not in the catalogue (1..52)."""


class InvalidIdentifier(InputError):
    """An IIN or BIN is malformed: wrong length, non-digit, bad check digit or date.

    ``kind`` is ``"IIN"`` or ``"BIN"``; ``reason`` a short machine-readable tag
    (``length``, ``non_digit``, ``check_digit``, ``date``, ``century``, ``type``), sent
    as the ErrorInfo metadata ``kind`` and ``check`` beside the reason
    ``INVALID_IDENTIFIER``. The identifier itself is never echoed (it is personal data).
    """

    def __init__(self, kind: str, reason: str, message: str) -> None:
        super().__init__(f"invalid {kind}: {message}")
        self.kind = kind
        self.reason = reason

    def error_metadata(self) -> dict[str, str]:
        return {"kind": self.kind, "check": self.reason}


class InvalidParameters(InputError):
    """The query's parameters do not fit the resource (unknown, missing, malformed)."""


class BasisNotAllowed(PolicyError):
    """The query names a legal basis the user's role does not allow (R1)."""


class UpstreamError(SiogwError):
    """An upstream information system failed to answer a query."""

    exit_code = 9


class UpstreamUnavailable(UpstreamError):
    """Transient upstream failure after retries, or the circuit breaker is open.

    Maps to gRPC ``UNAVAILABLE``. ``request_released``: the query's request id was given
    back (nothing was disclosed), so the same signed envelope may be sent again; the
    ErrorInfo metadata says so (``request_released: "true"``, see ``docs/usage.md``).
    """

    request_released: bool = False

    def error_metadata(self) -> dict[str, str]:
        return {"request_released": "true"} if self.request_released else {}


class UpstreamRejected(UpstreamError):
    """The upstream refused the query (4xx), redirected it (3xx: never followed) or
    answered something unusable.

    Unusable: not a JSON object (not JSON, not UTF-8, not ``application/json``), larger
    than ``max_response_bytes``, nested deeper than ``max_depth``, or, for a truncated
    resource, an answer that does not fit the resource's
    :class:`~server.resources.catalogue.TruncatedSchema`.
    """
