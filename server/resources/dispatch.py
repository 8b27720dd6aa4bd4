"""The dispatcher: validate a query, route it to a connector, apply the access right.

Order of work in :meth:`Dispatcher.dispatch` (nothing reaches a connector unless every
check passed):

1. the resource number is in the catalogue (:class:`UnknownResource` otherwise);
2. exactly one parameter, one the resource accepts (:class:`InvalidParameters`);
3. the value is well-formed: IIN/BIN by :mod:`server.resources.identifiers`
   (:class:`InvalidIdentifier`), plate and phone normalised;
4. the connector for the resource (a per-resource override, else the default) fetches;
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
from server.resources.connectors import Connector
from server.resources.errors import InvalidParameters, UpstreamRejected
from server.resources.identifiers import validate_bin, validate_iin
from server.resources.remote import CircuitBreaker, RemoteConnector
from siogw_api.errors import ConfigError

__all__ = ["DispatchResult", "Dispatcher", "QueryLike", "validate_query"]

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
        remote: Mapping[int, str],
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
    ) -> Dispatcher:
        """A dispatcher sending the resources in ``remote`` (``{resource: url}``) upstream.

        Resources sharing one URL share one :class:`RemoteConnector` and circuit breaker.
        """
        by_url: dict[str, RemoteConnector] = {}
        connectors: dict[int, Connector] = {}
        for number, url in sorted(remote.items()):
            if url not in by_url:
                breaker = CircuitBreaker(failure_threshold=failure_threshold,
                                         reset_timeout=reset_timeout, name=url)
                by_url[url] = RemoteConnector(url, timeout=timeout, attempts=attempts,
                                              breaker=breaker)
            connectors[number] = by_url[url]
        return cls(connectors, default)

    def breakers(self) -> list[CircuitBreaker]:
        """The circuit breakers of the upstream connectors (one per URL)."""
        found = {id(b): b for c in self._connectors.values()
                 if isinstance(b := getattr(c, "breaker", None), CircuitBreaker)}
        return list(found.values())

    def connector_for(self, number: int) -> Connector:
        """The connector that answers resource ``number``."""
        return self._connectors.get(number, self._default)

    async def dispatch(self, query: QueryLike) -> DispatchResult:
        """Validate ``query``, fetch the answer, apply the access right."""
        resource, params = validate_query(query)
        data = await self.connector_for(resource.number).fetch(resource, params)
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
