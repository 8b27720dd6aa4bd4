"""The dispatcher: validate a query, route it to a connector, apply the access right.

Order of work in :meth:`Dispatcher.dispatch` (nothing reaches a connector unless every
check passed):

1. the resource number is in the catalogue (:class:`UnknownResource` otherwise);
2. exactly one parameter, one the resource accepts (:class:`InvalidParameters`);
3. the value is well-formed: IIN/BIN by :mod:`server.resources.identifiers`
   (:class:`InvalidIdentifier`), plate and phone normalised;
4. the connector for the resource (a per-resource override, else the default) fetches,
   told the query's request id and what is left of the client's deadline
   (:class:`~server.resources.connectors.FetchOptions`);
5. the access right is applied on the server (:func:`apply_access_right`: resource 11's
   answer is rebuilt from its typed schema, every contribution amount lost; an answer
   that does not fit is :class:`UpstreamRejected`) and a :class:`DispatchResult` is
   returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import struct_pb2

from server.resources.access import apply_access_right
from server.resources.catalogue import CATALOGUE, Resource, get_resource
from server.resources.connectors import NO_OPTIONS, Connector, FetchOptions
from server.resources.errors import InvalidParameters, UpstreamRejected
from server.resources.identifiers import validate_bin, validate_iin
from server.resources.remote import (
    BreakerState,
    CircuitBreaker,
    RemoteConnector,
    health_service_name,
)
from server.resources.upstreams import UpstreamConfig, read_auth_header, tls_context
from siogw_api.errors import ConfigError

__all__ = ["DispatchResult", "Dispatcher", "QueryLike", "remote_connectors", "validate_query"]

_PLATE = re.compile(r"^[A-Z0-9]{4,10}$")
_MAX_VALUE = 64


class QueryLike(Protocol):
    """What the dispatcher reads from a query (``siogw.v1.Query`` fits)."""

    @property
    def resource(self) -> int: ...

    @property
    def parameters(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """The server-side answer to one query, after the access right was applied."""

    resource: int
    name: str
    access_right: str  # "full" | "truncated"
    truncated: bool
    data: dict[str, Any] = field(repr=False)

    def to_struct(self) -> struct_pb2.Struct:
        """``data`` as a ``google.protobuf.Struct`` for ``QueryResult.data``."""
        s = struct_pb2.Struct()
        s.update(self.data)
        return s


def _phone(value: str) -> str:
    digits = re.sub(r"[\s()+-]", "", value)
    if not digits.isascii() or not digits.isdigit():
        raise InvalidParameters("invalid phone: only digits, spaces, +, -, ( and ) allowed")
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if len(digits) != 11 or digits[0] != "7":
        raise InvalidParameters("invalid phone: expected +7 and 10 digits")
    return "+" + digits


def _plate(value: str) -> str:
    # ASCII only *before* upper-casing: Unicode case mapping turns ``ﬁ`` into ``FI`` (and
    # ``ß`` into ``SS``), so a non-plate would be normalised into a plate.
    plate = value.replace(" ", "")
    if not plate.isascii():
        raise InvalidParameters("invalid plate: expected 4-10 Latin letters and digits")
    plate = plate.upper()
    if not _PLATE.fullmatch(plate):
        raise InvalidParameters("invalid plate: expected 4-10 Latin letters and digits")
    return plate


_NORMALISE = {"iin": validate_iin, "bin": validate_bin, "phone": _phone, "plate": _plate}


def validate_query(query: QueryLike) -> tuple[Resource, dict[str, str]]:
    """Check resource number and parameters; return the resource and normalised parameters.

    Raises :class:`UnknownResource`, :class:`InvalidParameters` or
    :class:`InvalidIdentifier` (all :class:`~siogw_api.errors.InputError`).
    """
    resource = get_resource(query.resource)
    params = dict(query.parameters.items())
    accepted = ", ".join(resource.parameters)
    if len(params) != 1:
        raise InvalidParameters(
            f"resource {resource.number} needs exactly one parameter, got {len(params)}",
            detail=f"one of: {accepted}",
        )
    ((key, value),) = params.items()
    if not isinstance(key, str) or key not in resource.parameters:
        raise InvalidParameters(
            f"resource {resource.number} does not accept parameter {str(key)[:32]!r}",
            detail=f"one of: {accepted}",
        )
    if not isinstance(value, str) or len(value) > _MAX_VALUE:
        raise InvalidParameters(f"parameter {key!r} must be a string of at most {_MAX_VALUE}")
    return resource, {key: _NORMALISE[key](value)}


class Dispatcher:
    """Routes validated queries to connectors.

    ``connectors`` overrides the connector per resource number; every other resource goes
    to ``default``.
    """

    def __init__(self, connectors: Mapping[int, Connector], default: Connector) -> None:
        unknown = sorted(set(connectors) - set(CATALOGUE))
        if unknown:
            raise ConfigError(f"connectors configured for unknown resources: {unknown}")
        self._connectors = dict(connectors)
        self._default = default

    @classmethod
    def from_config(
        cls,
        default: Connector,
        remote: Mapping[int, str | UpstreamConfig],
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
    ) -> Dispatcher:
        """A dispatcher sending the resources in ``remote`` upstream, every other one to
        ``default``.

        ``remote`` maps a resource number to its ``[upstreams.N]`` table
        (:class:`~server.resources.upstreams.UpstreamConfig`; ``siogw serve`` passes
        ``config.upstreams``) or to a bare URL, which gets the keyword arguments here.
        Resources with identical settings share one :class:`RemoteConnector` (one
        connection pool, one circuit breaker). The ``auth_header_file`` and ``ca_file`` of
        each are read now: one that cannot be is :class:`ConfigError` (no start).
        """
        return cls(remote_connectors(remote, timeout=timeout, attempts=attempts,
                                     failure_threshold=failure_threshold,
                                     reset_timeout=reset_timeout), default)

    def upstream_health(self) -> dict[str, bool]:
        """``{health service name: serving}`` for each resource a remote upstream answers:
        not serving while its circuit breaker is open (half-open lets a trial through)."""
        return {
            health_service_name(number): connector.breaker.state is not BreakerState.OPEN
            for number, connector in sorted(self._connectors.items())
            if isinstance(connector, RemoteConnector)
        }

    def breaker_states(self) -> dict[int, BreakerState]:
        """``{resource: its circuit breaker's state}`` for each remote upstream (metrics)."""
        return {number: connector.breaker.state
                for number, connector in sorted(self._connectors.items())
                if isinstance(connector, RemoteConnector)}

    async def aclose(self) -> None:
        """Close the remote connectors' connection pools of the running loop."""
        seen: set[int] = set()
        for connector in self._connectors.values():
            if isinstance(connector, RemoteConnector) and id(connector) not in seen:
                seen.add(id(connector))
                await connector.aclose()

    def breakers(self) -> list[CircuitBreaker]:
        """The circuit breakers of the upstream connectors (one per URL)."""
        found = {id(b): b for c in self._connectors.values()
                 if isinstance(b := getattr(c, "breaker", None), CircuitBreaker)}
        return list(found.values())

    def connector_for(self, number: int) -> Connector:
        """The connector that answers resource ``number``."""
        return self._connectors.get(number, self._default)

    async def dispatch(
        self, query: QueryLike, *, request_id: str = "", time_remaining: float | None = None
    ) -> DispatchResult:
        """Validate ``query``, fetch the answer, apply the access right.

        ``request_id`` (the signed query's) and ``time_remaining`` (seconds left of the
        client's gRPC deadline, ``context.time_remaining()``) go to the connector: a remote
        upstream gets the id as ``Idempotency-Key`` and must answer within the deadline.
        """
        resource, params = validate_query(query)
        options = (FetchOptions(request_id=request_id, time_remaining=time_remaining)
                   if request_id or time_remaining is not None else NO_OPTIONS)
        data = await self.connector_for(resource.number).fetch(resource, params, options)
        if not isinstance(data, dict):
            raise UpstreamRejected(
                f"resource {resource.number}: connector returned {type(data).__name__}, "
                "not an object"
            )
        return DispatchResult(
            resource=resource.number,
            name=resource.name,
            access_right=resource.access_right.value,
            truncated=resource.truncated,
            data=apply_access_right(resource, data, params),
        )


def remote_connectors(
    remote: Mapping[int, str | UpstreamConfig],
    *,
    timeout: float = 5.0,
    attempts: int = 3,
    failure_threshold: int = 5,
    reset_timeout: float = 30.0,
) -> dict[int, Connector]:
    """The connectors of :meth:`Dispatcher.from_config` (its docstring), built before a
    database or log is opened: ``siogw serve`` refuses an unreadable secret first."""
    by_config: dict[UpstreamConfig, RemoteConnector] = {}
    connectors: dict[int, Connector] = {}
    for number, entry in sorted(remote.items()):
        cfg = entry if isinstance(entry, UpstreamConfig) else UpstreamConfig(
            url=entry, timeout=timeout, attempts=attempts,
            failure_threshold=failure_threshold, reset_timeout=reset_timeout,
            allow_plain_http=True)
        if cfg not in by_config:
            by_config[cfg] = _remote_connector(number, cfg)
        connectors[number] = by_config[cfg]
    return connectors


def _remote_connector(number: int, cfg: UpstreamConfig) -> RemoteConnector:
    """The connector of ``[upstreams.<number>]``, its secret and CA read now."""
    where = f"upstreams.{number}"
    headers = ({"Authorization": read_auth_header(cfg.auth_header_file, where)}
               if cfg.auth_header_file is not None else {})
    verify = tls_context(cfg.ca_file, where) if cfg.url.startswith("https://") else True
    breaker = CircuitBreaker(failure_threshold=cfg.failure_threshold,
                             reset_timeout=cfg.reset_timeout, name=f"upstream of {number}")
    return RemoteConnector(
        cfg.url, timeout=cfg.timeout, attempts=cfg.attempts, idempotent=cfg.idempotent,
        breaker=breaker, headers=headers, max_response_bytes=cfg.max_response_bytes,
        max_depth=cfg.max_depth, verify=verify,
    )
