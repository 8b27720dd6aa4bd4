"""The ONE mapping from sio-gateway errors to gRPC status codes.

Servicers raise :class:`~siogw_api.errors.SiogwError` subclasses and never build statuses;
:class:`server.interceptors.ErrorInterceptor` calls :func:`to_status` for every refused
call. The answer carries a ``google.rpc.Status`` in ``grpc-status-details-bin`` with one
``google.rpc.ErrorInfo`` (domain ``siogw``, an UPPER_SNAKE ``reason`` and metadata with
the call's ``request_id``), so clients can branch on the reason, not on message text.

The code is found by walking the error's MRO against :data:`STATUS_BY_CLASS`: the most
specific class listed wins, so a new error deriving from a sub-root gets the sub-root's
code without touching this module. The ErrorInfo ``reason`` is the class's
``reason_code`` (:mod:`siogw_api.errors`), never instance text; ``docs/errors.md`` lists
every reason with its status.

Choices worth knowing (also in docs/adr/0005-gateway.md):

* a signature that does not verify, an untrusted or revoked certificate, or a missing /
  dead session -> ``UNAUTHENTICATED``;
* an authentic request the rules refuse (another user's certificate, basis not allowed
  for the role, wrong role for an admin command, login locked) -> ``PERMISSION_DENIED``;
* ``created_at`` outside the clock-skew window -> ``INVALID_ARGUMENT`` (reason
  ``STALE_REQUEST``): the request itself is unacceptable and must be re-signed;
* no signed consent -> ``FAILED_PRECONDITION`` (reason ``CONSENT_REQUIRED``);
* a repeated request id -> ``ALREADY_EXISTS`` (reason ``REPLAY``); when the request was
  answered, the status carries its original receipt: ErrorInfo metadata ``seq``,
  ``leaf_hash`` (hex) and ``tree_size``, and a ``siogw.v1.AuditReceipt`` detail after the
  ErrorInfo (issue 14);
* an unknown resource -> ``NOT_FOUND``; a malformed IIN/BIN or envelope ->
  ``INVALID_ARGUMENT``;
* maintenance, audit log down, database down, upstream down -> ``UNAVAILABLE``;
* an oversized message, too many logins begun -> ``RESOURCE_EXHAUSTED``;
* anything unexpected -> ``INTERNAL`` with the request id (details are only logged);
* an object that exists already (a duplicate user, certificate or resolution) or a
  signed document filed again -> ``ALREADY_EXISTS``, like a replayed request id: one
  kind, one status.

**Neutral wording** (ADR 0005). The message a client sees -- and the audit record of the
refusal holds -- is :func:`message_for`: the error's
:meth:`~siogw_api.errors.SiogwError.public_message`, the project's own text, never its
``detail`` (where a parser's, a codec's or the database driver's text goes, for the
operator's log). As defence in depth, a message that still looks like a foreign
exception's text (a Python exception name, SQLAlchemy's ``[SQL: ...]``, a driver's
``connection to server at ...``) is replaced by the neutral wording of its reason and the
original is logged: errors are fixed at their source, this only keeps a missed one from
leaking.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.ops.errors import DocumentReplayed
from server.ops.errors import Duplicate as OpsDuplicate
from server.ops.errors import NotFound as OpsNotFound
from server.resources.errors import (
    UnknownResource,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.store.errors import (
    CertificateInUse,
    DuplicateUser,
    ReplayDetected,
    UnknownUser,
    UnknownWindow,
    WindowNotCancellable,
)
from signing.errors import CRLUnavailable, MalformedEnvelope
from siogw_api.errors import (
    AuditError,
    ConfigError,
    InputError,
    PolicyError,
    SigningError,
    SiogwError,
    StorageError,
    TrustError,
)
from siogw_api.v1 import common_pb2

DOMAIN = "siogw"

log = logging.getLogger("siogw.server")


# --- errors the gateway itself raises --------------------------------------------------
class Unauthenticated(TrustError):
    """No session token, an unknown or expired one, or a session that was ended."""

    reason_code = "UNAUTHENTICATED"


class LoginFailed(TrustError):
    """A login step did not verify (challenge signature, SMS code, device assertion)."""

    reason_code = "LOGIN_FAILED"


class NotPermitted(PolicyError):
    """The caller is authenticated but the rules do not allow this (role, basis, key)."""

    reason_code = "PERMISSION_DENIED"


class CertificateNotRegistered(NotPermitted):
    """The signing certificate is not the one registered to the session's user (R7)."""

    reason_code = "CERTIFICATE_NOT_REGISTERED"


class BasisNotAllowed(NotPermitted):
    """The query's legal basis is not allowed for the user's role (R1)."""

    reason_code = "BASIS_NOT_ALLOWED"


class UserBlocked(NotPermitted):
    """The user is blocked (R4, R13)."""

    reason_code = "USER_BLOCKED"


class LoginLocked(NotPermitted):
    """Too many wrong second-factor codes: this login attempt is locked."""

    reason_code = "LOGIN_LOCKED"


class ConsentRequired(PolicyError):
    """The user has not signed the current consent (R6)."""

    reason_code = "CONSENT_REQUIRED"


class FailedPrecondition(PolicyError):
    """A call made out of order (e.g. CompleteLogin before ProveLogin)."""

    reason_code = "FAILED_PRECONDITION"


class UnderMaintenance(PolicyError):
    """A published maintenance window is in progress (R10)."""

    reason_code = "MAINTENANCE"


class StaleRequest(InputError):
    """``created_at`` is outside the allowed clock-skew window."""

    reason_code = "STALE_REQUEST"


class MissingField(InputError):
    """A required field is empty (task reference, justification, request id ...)."""

    reason_code = "MISSING_FIELD"


class NotFound(InputError):
    """The named thing does not exist (resource number, login id, log entry)."""

    reason_code = "NOT_FOUND"


class MessageTooLarge(InputError):
    """A request message is over the documented size limit."""

    reason_code = "MESSAGE_TOO_LARGE"


class ExportTooLarge(MessageTooLarge):
    """An answer (a CSV export) would be larger than the transport can carry."""

    reason_code = "EXPORT_TOO_LARGE"


class MalformedRequest(InputError):
    """The request bytes do not decode as the method's request message."""

    reason_code = "MALFORMED_REQUEST"


class RateLimited(PolicyError):
    """Too many calls of this kind from this peer or for this user: try again later."""

    reason_code = "RATE_LIMITED"


class DeadlineExceeded(SiogwError):
    """The call's deadline passed (or the caller cancelled it) before the query was
    dispatched; its request id was given back (``request_released``)."""

    reason_code = "DEADLINE_EXCEEDED"
    request_released: bool = False

    def error_metadata(self) -> dict[str, str]:
        return {"request_released": "true"} if self.request_released else {}


class NotImplementedYet(SiogwError):
    """The gateway does not offer this operation in the current configuration."""

    reason_code = "UNIMPLEMENTED"


# --- the mapping -------------------------------------------------------------------------
#: The most specific class in an error's MRO found here decides its status code. Classes
#: of other packages are imported, not named by string: their modules are leaves that
#: never import this one.
STATUS_BY_CLASS: Mapping[type[BaseException], grpc.StatusCode] = {
    SiogwError: grpc.StatusCode.INTERNAL,
    ConfigError: grpc.StatusCode.INTERNAL,
    SigningError: grpc.StatusCode.UNAVAILABLE,
    TrustError: grpc.StatusCode.UNAUTHENTICATED,
    AuditError: grpc.StatusCode.UNAVAILABLE,
    StorageError: grpc.StatusCode.UNAVAILABLE,
    PolicyError: grpc.StatusCode.PERMISSION_DENIED,
    InputError: grpc.StatusCode.INVALID_ARGUMENT,
    ConsentRequired: grpc.StatusCode.FAILED_PRECONDITION,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    UnderMaintenance: grpc.StatusCode.UNAVAILABLE,
    NotFound: grpc.StatusCode.NOT_FOUND,
    MessageTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    NotImplementedYet: grpc.StatusCode.UNIMPLEMENTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    MalformedEnvelope: grpc.StatusCode.INVALID_ARGUMENT,
    # the gateway cannot check revocation of that issuer now: try again later
    CRLUnavailable: grpc.StatusCode.UNAVAILABLE,
    ReplayDetected: grpc.StatusCode.ALREADY_EXISTS,
    DocumentReplayed: grpc.StatusCode.ALREADY_EXISTS,
    UnknownUser: grpc.StatusCode.NOT_FOUND,
    UnknownWindow: grpc.StatusCode.NOT_FOUND,
    WindowNotCancellable: grpc.StatusCode.FAILED_PRECONDITION,
    DuplicateUser: grpc.StatusCode.ALREADY_EXISTS,
    OpsDuplicate: grpc.StatusCode.ALREADY_EXISTS,
    CertificateInUse: grpc.StatusCode.ALREADY_EXISTS,
    UnknownResource: grpc.StatusCode.NOT_FOUND,
    OpsNotFound: grpc.StatusCode.NOT_FOUND,
    UpstreamError: grpc.StatusCode.UNAVAILABLE,
    UpstreamUnavailable: grpc.StatusCode.UNAVAILABLE,
    UpstreamRejected: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_code_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code for ``exc`` (INTERNAL for anything not ours)."""
    for cls in type(exc).__mro__:
        code = STATUS_BY_CLASS.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def reason_for(exc: BaseException) -> str:
    """The ErrorInfo reason: the error class's :attr:`~siogw_api.errors.SiogwError.reason_code`.

    ``INTERNAL`` for anything that is not a :class:`~siogw_api.errors.SiogwError`.
    """
    if isinstance(exc, SiogwError):
        return type(exc).reason_code
    return "INTERNAL"


#: Traces of a foreign exception's text: Python exception names and codec/JSON parser
#: wording, SQLAlchemy's statement dump, database drivers' connection failures, OS errors.
_FOREIGN_TEXT = re.compile(
    r"\b[A-Z][A-Za-z]*(?:Error|Exception)\s*:"
    r"|\[SQL:|\[parameters:|\(Background on this error"
    r"|\bpsycopg|\bsqlite3\.|\bsqlalchemy\b|connection to server at|\bFATAL:"
    r"|codec can't (?:de|en)code|Expecting (?:value|property name|',' delimiter)"
    r"|line \d+ column \d+ \(char \d+\)|Error parsing message|\[Errno \d+\]"
    r"|Traceback \(most recent call last\)",
)

#: The neutral wording of each sub-root, used when a message is refused by the guard.
_NEUTRAL_BY_CLASS: Mapping[type[BaseException], str] = {
    SiogwError: "the request could not be completed",
    InputError: "the request is malformed",
    TrustError: "the signature or certificate did not verify",
    PolicyError: "the request is not permitted",
    StorageError: "the gateway's database is unavailable",
    AuditError: "the audit log is unavailable",
    SigningError: "the gateway's signing key is unavailable",
    ConfigError: "the gateway is not configured for this request",
}


def looks_foreign(text: str) -> bool:
    """Whether ``text`` carries what looks like a library's or the database's own words."""
    return _FOREIGN_TEXT.search(text) is not None


def neutral_message(exc: BaseException) -> str:
    """The neutral wording of ``exc``'s kind (its nearest sub-root)."""
    for cls in type(exc).__mro__:
        text = _NEUTRAL_BY_CLASS.get(cls)
        if text is not None:
            return text
    return "internal error"


def message_for(exc: BaseException) -> str:
    """The text a client sees and a refusal record holds (see the module docstring)."""
    if not isinstance(exc, SiogwError):
        return "internal error"
    text = exc.public_message()
    if looks_foreign(text):
        log.warning("error message withheld from the client (%s): %s",
                    type(exc).__name__, exc.diagnostics())
        return neutral_message(exc)
    return text


def build_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str,
    metadata: Mapping[str, str] | None = None,
    extra: Sequence[Message] = (),
) -> grpc.Status:
    """A ``grpc.Status`` with a ``google.rpc.Status`` carrying one ErrorInfo (then the
    ``extra`` details, such as a replay's original ``AuditReceipt``)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))
    details = []
    for message_ in (info, *extra):
        detail = any_pb2.Any()
        detail.Pack(message_)
        details.append(detail)
    rich = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(rich)


def to_status(exc: BaseException, *, request_id: str) -> grpc.Status:
    """Map ``exc`` to the status the client sees (unexpected errors say nothing but the id)."""
    if not isinstance(exc, SiogwError):
        return build_status(
            grpc.StatusCode.INTERNAL,
            f"internal error (request id {request_id})",
            reason="INTERNAL",
            metadata={"request_id": request_id},
        )
    meta = {**exc.error_metadata(), "request_id": request_id}
    receipt = exc.receipt if isinstance(exc, ReplayDetected) else None
    extra = () if receipt is None else (common_pb2.AuditReceipt(
        seq=receipt[0], leaf_hash=receipt[1], tree_size=receipt[2]),)
    return build_status(status_code_for(exc), message_for(exc), reason=reason_for(exc),
                        metadata=meta, extra=extra)


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a ``google.rpc.Status``, if any (for clients and tests)."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
