"""Dispatcher: validation before any connector call, routing, access rights (R2)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from server.resources import (
    CATALOGUE,
    DEMO_ENTITY_BIN,
    DEMO_PERSON_IIN,
    Dispatcher,
    DispatchResult,
    EmbeddedConnector,
    InvalidIdentifier,
    InvalidParameters,
    Resource,
    UnknownResource,
    UpstreamRejected,
    demo_parameters,
    get_resource,
    validate_query,
)
from server.resources import dataset as ds
from server.resources.upstreams import UpstreamConfig
from siogw_api.errors import ConfigError, InputError
from siogw_api.v1 import query_pb2
from tests.server.resources.upstream import serve


def q(resource: int, **params: str) -> query_pb2.Query:
    return query_pb2.Query(request_id="r1", resource=resource, parameters=params,
                           basis="financial_monitoring")


@contextmanager
def _no_sql(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert seen == [], "a connector was called before validation finished"


@pytest.fixture
def dispatcher(engine: sa.Engine) -> Dispatcher:
    return Dispatcher({}, EmbeddedConnector(engine))


def _run(d: Dispatcher, query: query_pb2.Query) -> DispatchResult:
    return asyncio.run(d.dispatch(query))


def test_all_52_dispatch_with_demo_parameters(dispatcher: Dispatcher) -> None:
    async def all_of_them() -> list[DispatchResult]:
        return list(await asyncio.gather(
            *(dispatcher.dispatch(q(n, **demo_parameters(n))) for n in CATALOGUE)))

    results = asyncio.run(all_of_them())
    for n, r in zip(CATALOGUE, results, strict=True):
        assert r.resource == n and r.name == CATALOGUE[n].name
        assert r.truncated is (n == 11)
        assert r.access_right == ("truncated" if n == 11 else "full")
        assert r.data["count"] >= 1
        struct = r.to_struct()
        assert struct["count"] == r.data["count"]
        query_pb2.QueryResult(resource=n, data=struct).SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("resource", "params", "error", "text"),
    [
        (0, {"iin": DEMO_PERSON_IIN}, UnknownResource, "unknown resource 0"),
        (53, {"iin": DEMO_PERSON_IIN}, UnknownResource, "unknown resource 53"),
        (1, {"iin": "80041534821"}, InvalidIdentifier, "12 digits"),
        (1, {"iin": "8004153482l6"}, InvalidIdentifier, "digits 0-9"),
        (1, {"iin": "800415348217"}, InvalidIdentifier, "check digit"),
        (2, {"bin": "120640313374"}, InvalidIdentifier, "check digit"),
        (2, {"bin": DEMO_PERSON_IIN}, InvalidIdentifier, "entity type"),
        (1, {"bin": DEMO_ENTITY_BIN}, InvalidParameters, "does not accept parameter 'bin'"),
        (1, {}, InvalidParameters, "exactly one parameter, got 0"),
        (3, {"iin": DEMO_PERSON_IIN, "bin": DEMO_ENTITY_BIN}, InvalidParameters, "got 2"),
        (5, {"plate": "12?"}, InvalidParameters, "invalid plate"),
        (52, {"phone": "+1 202 555 0100"}, InvalidParameters, "invalid phone"),
        (52, {"phone": "x" * 65}, InvalidParameters, "at most 64"),
    ],
)
def test_bad_queries_refused_before_any_connector_call(
    engine: sa.Engine, dispatcher: Dispatcher, resource: int, params: dict[str, str],
    error: type[InputError], text: str,
) -> None:
    with _no_sql(engine), pytest.raises(error) as ei:
        _run(dispatcher, q(resource, **params))
    assert text in ei.value.diagnostics()
    assert isinstance(ei.value, InputError)


def test_identifier_error_precise_for_date(dispatcher: Dispatcher) -> None:
    from server.resources.identifiers import check_digit

    body = "80023034821"  # 30 February 1980, century digit 3
    k = check_digit(body)
    assert k is not None
    with pytest.raises(InvalidIdentifier) as ei:
        _run(dispatcher, q(1, iin=body + str(k)))
    assert ei.value.reason == "date"


def test_normalised_phone_and_plate() -> None:
    assert validate_query(q(52, phone="8 (701) 123-45-67"))[1] == {"phone": "+77011234567"}
    assert validate_query(q(52, phone="+7 701 1234567"))[1] == {"phone": "+77011234567"}
    assert validate_query(q(5, plate="123 abc 02"))[1] == {"plate": "123ABC02"}


@pytest.mark.parametrize("plate", ["\ufb01123kz", "stra\u00dfe12", "123\u0430\u0432\u044102",
                                   "\uff11\uff12\uff13ABC"])
def test_plate_is_not_unicode_case_folded(plate: str) -> None:
    """Issue 14 finding 3: ``ﬁ123kz`` must not become ``FI123KZ`` (nor ß → SS)."""
    with pytest.raises(InvalidParameters, match="invalid plate"):
        validate_query(q(5, plate=plate))


@pytest.mark.parametrize("number", [27, 28, 39])
def test_procurement_and_trade_take_an_entrepreneurs_iin(
    dispatcher: Dispatcher, number: int
) -> None:
    """Issue 14 finding 3: individual entrepreneurs (IIN) can be looked up in 27, 28, 39."""
    assert set(get_resource(number).parameters) == {"iin", "bin"}
    by_iin = _run(dispatcher, q(number, iin=DEMO_PERSON_IIN))
    assert by_iin.data["subject"] == {"iin": DEMO_PERSON_IIN} and by_iin.data["count"] >= 1
    by_bin = _run(dispatcher, q(number, bin=DEMO_ENTITY_BIN))
    assert by_bin.data["count"] >= 1


def test_connector_override_and_config_checks(engine: sa.Engine) -> None:
    class Fixed:
        def __init__(self, data: Any) -> None:
            self.data = data
            self.calls: list[tuple[int, dict[str, str]]] = []

        async def fetch(self, resource: Resource, params: Mapping[str, str],
                        options: Any = None) -> Any:
            self.calls.append((resource.number, dict(params)))
            return self.data

    special = Fixed({"records": [{"x": 1}], "count": 1})
    d = Dispatcher({7: special}, EmbeddedConnector(engine))
    assert _run(d, q(7, bin=DEMO_ENTITY_BIN)).data == {"records": [{"x": 1}], "count": 1}
    assert special.calls == [(7, {"bin": DEMO_ENTITY_BIN})]
    assert _run(d, q(15, bin=DEMO_ENTITY_BIN)).data["records"][0]["employees"] > 0
    with pytest.raises(UpstreamRejected):
        _run(Dispatcher({}, Fixed([1, 2])), q(1, iin=DEMO_PERSON_IIN))
    with pytest.raises(ConfigError):
        Dispatcher({53: special}, special)


def test_remote_resource_via_config_is_truncated_too(engine: sa.Engine) -> None:
    """An upstream that sends amounts for resource 11 still cannot leak them."""
    upstream_answer = {"subject": {"iin": DEMO_PERSON_IIN}, "count": 1, "records": [
        {"period": "2025-01", "employer_bin": DEMO_ENTITY_BIN, "employer_name": None,
         "paid_on": "2025-02-05", "amount_kzt": 54321, "sum": 54321,
         "details": {"amount": 1}}]}
    with serve(["500", "ok"], payload=upstream_answer) as up:
        # idempotent: the upstream honours Idempotency-Key, so the 500 is asked again
        cfg = UpstreamConfig(url=up.url, attempts=2, idempotent=True, allow_plain_http=True)
        d = Dispatcher.from_config(EmbeddedConnector(engine), {11: cfg, 12: cfg})
        assert d.connector_for(11) is d.connector_for(12)  # one breaker per upstream
        r = _run(d, q(11, iin=DEMO_PERSON_IIN))
        assert up.calls == 2
        assert up.requests[-1] == {"resource": 11, "parameters": {"iin": DEMO_PERSON_IIN}}
    assert r.truncated
    assert r.data == {"subject": {"iin": DEMO_PERSON_IIN}, "count": 1,
                      "records": [{"period": "2025-01", "employer_bin": DEMO_ENTITY_BIN,
                                   "employer_name": None, "paid_on": "2025-02-05"}]}
    assert isinstance(d.connector_for(1), EmbeddedConnector)


def test_demo_entity_in_dataset_module() -> None:
    assert ds.demo_parameters(2) == {"bin": DEMO_ENTITY_BIN}
