"""The data plane: the 52-resource catalogue, identifiers, connectors and dispatch.

Integration in a few lines (the gRPC ``QueryService``)::

    import sqlalchemy as sa
    from server.resources import (
        CATALOGUE, Dispatcher, EmbeddedConnector, check_basis, seed_dataset,
    )

    engine = sa.create_engine(url)
    seed_dataset(engine)                      # idempotent; creates the res_* tables
    dispatcher = Dispatcher({}, EmbeddedConnector(engine))
    # or, with some resources served by real upstreams ([upstreams.N] of siogw.toml):
    dispatcher = Dispatcher.from_config(EmbeddedConnector(engine), config.upstreams)

    check_basis(user.role, query.basis)       # R1; raises BasisNotAllowed (PolicyError)
    result = await dispatcher.dispatch(       # query: siogw.v1.Query (resource, parameters)
        query, request_id=query.request_id, time_remaining=context.time_remaining())
    QueryResult(resource=result.resource, resource_name=result.name,
                access_right=result.access_right, truncated=result.truncated,
                data=result.to_struct(), ...)

``ListResources``: iterate ``CATALOGUE.values()`` (``number``, ``name``,
``access_right.value``, ``parameters``).

Public API
----------
Catalogue (:mod:`.catalogue`)
    ``CATALOGUE: Mapping[int, Resource]`` (1..52), ``get_resource(n) -> Resource``
    (raises ``UnknownResource``), ``Resource(number, name, access_right, parameters,
    schema)`` with ``.truncated``, ``AccessRight`` (``full``/``truncated``),
    ``TruncatedSchema`` and ``FieldType`` (a truncated resource's typed fields),
    ``Role``, ``Basis``, ``ROLE_BASES``, ``allowed_bases(role)``,
    ``check_basis(role, basis) -> Basis`` (raises ``BasisNotAllowed``).
Identifiers (:mod:`.identifiers`)
    ``validate_iin(s) -> str``, ``validate_bin(s) -> str`` (raise ``InvalidIdentifier``),
    ``is_valid_iin``, ``is_valid_bin``, ``make_iin(birth_date, sex, serial)``,
    ``make_bin(registered, serial, entity_type=4, attribute=0)``, ``check_digit``.
Dispatch (:mod:`.dispatch`)
    ``Dispatcher(connectors: Mapping[int, Connector], default: Connector)``,
    ``Dispatcher.from_config(default, {resource: UpstreamConfig | url}, timeout=,
    attempts=, failure_threshold=, reset_timeout=)`` (``remote_connectors`` builds its
    connectors), ``await dispatcher.dispatch(query, request_id=, time_remaining=) ->
    DispatchResult(resource, name, access_right, truncated, data)`` with
    ``.to_struct()``; ``dispatcher.upstream_health() -> {"siogw.upstream.N": serving}``;
    ``validate_query(query) -> (Resource, params)`` runs the same checks without
    dispatching (no I/O).
Upstream configuration (:mod:`.upstreams`)
    ``UpstreamConfig`` (one ``[upstreams.N]`` table), ``parse_upstreams(home, raw)``.
Connectors (:mod:`.connectors`, :mod:`.remote`)
    ``Connector`` (Protocol: ``async fetch(resource, params, options=NO_OPTIONS) ->
    dict``; ``FetchOptions(request_id, time_remaining)``),
    ``EmbeddedConnector(engine)``, ``RemoteConnector(url, timeout=, attempts=,
    idempotent=, backoff_base=, backoff_max=, breaker=, headers=, max_response_bytes=,
    max_depth=, verify=)`` (httpx; one total deadline per call, no redirects, retries
    only where safe), ``CircuitBreaker``, ``BreakerState``,
    ``apply_access_right(resource, data, params=None)`` (raises ``UpstreamRejected``
    for a truncated answer that does not fit its schema).
Dataset (:mod:`.dataset`)
    ``seed_dataset(engine, seed=DEFAULT_SEED) -> bool``, ``drop_dataset(engine)``,
    ``DEMO_PERSON_IIN``, ``DEMO_ENTITY_BIN``, ``DEMO_FOREIGNER_IIN``,
    ``demo_parameters(resource) -> dict`` (a query with non-empty data).
Errors (:mod:`.errors`; suggested gRPC status)
    ``UnknownResource``, ``InvalidIdentifier``, ``InvalidParameters`` — InputError,
    ``INVALID_ARGUMENT``; ``BasisNotAllowed`` — PolicyError, ``PERMISSION_DENIED``;
    ``UpstreamError`` (new sub-root of ``SiogwError``) with ``UpstreamUnavailable`` —
    ``UNAVAILABLE`` and ``UpstreamRejected`` — ``FAILED_PRECONDITION``; the embedded
    connector raises ``StorageError`` when the database fails.
"""

from __future__ import annotations

from server.resources.access import apply_access_right
from server.resources.catalogue import (
    CATALOGUE,
    ROLE_BASES,
    AccessRight,
    Basis,
    FieldType,
    Resource,
    Role,
    TruncatedSchema,
    allowed_bases,
    check_basis,
    get_resource,
)
from server.resources.connectors import Connector, EmbeddedConnector, FetchOptions
from server.resources.dataset import (
    DEMO_ENTITY_BIN,
    DEMO_FOREIGNER_IIN,
    DEMO_PERSON_IIN,
    demo_parameters,
    drop_dataset,
    seed_dataset,
)
from server.resources.dispatch import Dispatcher, DispatchResult, QueryLike, validate_query
from server.resources.errors import (
    BasisNotAllowed,
    InvalidIdentifier,
    InvalidParameters,
    UnknownResource,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from server.resources.identifiers import (
    is_valid_bin,
    is_valid_iin,
    make_bin,
    make_iin,
    validate_bin,
    validate_iin,
)
from server.resources.remote import BreakerState, CircuitBreaker, RemoteConnector
from server.resources.upstreams import UpstreamConfig

__all__ = [
    "CATALOGUE",
    "DEMO_ENTITY_BIN",
    "DEMO_FOREIGNER_IIN",
    "DEMO_PERSON_IIN",
    "ROLE_BASES",
    "AccessRight",
    "Basis",
    "BasisNotAllowed",
    "BreakerState",
    "CircuitBreaker",
    "Connector",
    "DispatchResult",
    "Dispatcher",
    "EmbeddedConnector",
    "FetchOptions",
    "FieldType",
    "InvalidIdentifier",
    "InvalidParameters",
    "QueryLike",
    "RemoteConnector",
    "Resource",
    "Role",
    "TruncatedSchema",
    "UnknownResource",
    "UpstreamConfig",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "allowed_bases",
    "apply_access_right",
    "check_basis",
    "demo_parameters",
    "drop_dataset",
    "get_resource",
    "is_valid_bin",
    "is_valid_iin",
    "make_bin",
    "make_iin",
    "seed_dataset",
    "validate_bin",
    "validate_iin",
    "validate_query",
]
