"""Resource 11 (pension contributions) never carries an amount out of the server (R2).

Its answer is rebuilt from a typed schema; anything else from an upstream is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.resources import (
    CATALOGUE,
    DEMO_ENTITY_BIN,
    DEMO_PERSON_IIN,
    Dispatcher,
    EmbeddedConnector,
    Resource,
    UpstreamRejected,
    apply_access_right,
    get_resource,
    make_iin,
)
from server.resources import dataset as ds
from server.resources.access import check_field
from siogw_api.v1 import query_pb2


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key path, leaf or key) in a nested structure."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}/{k}#key", k
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def test_no_amount_survives_for_any_contributor(engine: sa.Engine) -> None:
    C = ds.res_pension_contribution
    with engine.connect() as c:
        amounts_by_iin: dict[str, set[int]] = {}
        for iin, amount in c.execute(sa.select(C.c.iin, C.c.amount_kzt)):
            amounts_by_iin.setdefault(iin, set()).add(amount)
    assert DEMO_PERSON_IIN in amounts_by_iin and len(amounts_by_iin) > 50
    embedded = EmbeddedConnector(engine)
    dispatcher = Dispatcher({}, embedded)
    res = get_resource(11)

    async def check_all() -> None:
        for iin, amounts in sorted(amounts_by_iin.items()):
            raw = await embedded.fetch(res, {"iin": iin})
            # the register itself has the amounts: the test would catch a leak
            assert {v for p, v in _walk(raw) if p.endswith("/amount_kzt")} == amounts
            query = query_pb2.Query(resource=11, parameters={"iin": iin})
            result = await dispatcher.dispatch(query)
            assert result.truncated and result.data["count"] == raw["count"] > 0
            for path, leaf in _walk(result.data):
                assert "amount" not in path.lower()
                assert not (isinstance(leaf, int | float) and leaf in amounts), path
                assert not (isinstance(leaf, str) and leaf.isdigit() and int(leaf) in amounts)
            struct_text = str(result.to_struct())
            assert "amount" not in struct_text

    asyncio.run(check_all())


_IIN = DEMO_PERSON_IIN
_ROW = {"period": "2024-01", "employer_bin": DEMO_ENTITY_BIN, "employer_name": "Alpha LLP",
        "paid_on": "2024-02-10"}


def test_schema_drops_unknown_keys_and_computes_the_count() -> None:
    res = get_resource(11)
    data = {"subject": {"iin": _IIN}, "count": 187500, "total_kzt": 99,
            "records": [{**_ROW, "amount_kzt": 10, "sum": 10, "nested": {"amount_kzt": 10}},
                        {**_ROW, "employer_name": None, "amount": [7, 8]}]}
    out = apply_access_right(res, data, {"iin": _IIN})
    assert out == {"subject": {"iin": _IIN}, "count": 2,
                   "records": [_ROW, {**_ROW, "employer_name": None}]}
    assert data["total_kzt"] == 99  # input untouched


@pytest.mark.parametrize("records", [
    # issue 14 finding 1: rows as arrays, and bare numbers as rows
    [["2024-01", "120640313373", 187500, "2024-02-10"]],
    [45000, 47000],
    [{**_ROW, "period": {"amount_kzt": 187500}}],  # a nested value under an allowed key
    [{**_ROW, "period": 187500}],  # a number under an allowed key
    [{**_ROW, "employer_name": "187500"}],  # a number dressed as a name
    [{**_ROW, "employer_bin": "000000187500"}],  # not a BIN
    [{**_ROW, "paid_on": "2024-02-30"}],
    [{k: v for k, v in _ROW.items() if k != "paid_on"}],  # a field missing
    ["2024-01"],
    [None],
])
def test_answers_that_do_not_fit_the_schema_are_refused(records: list[Any]) -> None:
    data = {"subject": {"iin": _IIN}, "count": len(records), "records": records}
    with pytest.raises(UpstreamRejected):
        apply_access_right(get_resource(11), data, {"iin": _IIN})


@pytest.mark.parametrize("data", [
    {"records": []},
    {"subject": [_IIN], "records": []},
    {"subject": {"iin": 187500}, "records": []},
    {"subject": {"iin": _IIN}, "records": {"0": _ROW}},
    {"subject": {"iin": _IIN}},
])
def test_subject_and_records_must_have_their_shape(data: dict[str, Any]) -> None:
    with pytest.raises(UpstreamRejected):
        apply_access_right(get_resource(11), data)


def test_answer_about_another_subject_is_refused() -> None:
    other = make_iin(dt.date(1990, 5, 17), "F", 42)
    data = {"subject": {"iin": other}, "count": 0, "records": []}
    with pytest.raises(UpstreamRejected):
        apply_access_right(get_resource(11), data, {"iin": _IIN})


def test_issue_payloads_through_the_dispatcher_are_upstream_rejected() -> None:
    """Issue 14 finding 1, end to end through a connector: refused, never truncated=true."""

    class Upstream:
        def __init__(self, records: list[Any]) -> None:
            self.records = records

        async def fetch(self, resource: Resource, params: Mapping[str, str],
                        options: Any = None) -> dict[str, Any]:
            return {"subject": dict(params), "count": 1, "records": self.records}

    for records in ([["2024-01", "120640313373", 187500, "2024-02-10"]], [45000, 47000]):
        dispatcher = Dispatcher({11: Upstream(records)}, Upstream([]))
        query = query_pb2.Query(resource=11, parameters={"iin": _IIN})
        with pytest.raises(UpstreamRejected) as caught:
            asyncio.run(dispatcher.dispatch(query))
        assert caught.value.reason_code == "UPSTREAM_REJECTED"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["2024-01", "2024-02-10", DEMO_ENTITY_BIN, _IIN]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["subject", "count", "records", "iin", "period",
                                       "employer_bin", "employer_name", "paid_on",
                                       "amount_kzt"]) | st.text(max_size=6),
                      children, max_size=6),
    max_leaves=30,
)
_row = st.fixed_dictionaries(
    {k: st.sampled_from([v, None]) | _json for k, v in _ROW.items()},
    optional={"amount_kzt": _json, "x": _json})
_answer = st.fixed_dictionaries(
    {"subject": st.just({"iin": _IIN}) | _json,
     "records": st.lists(_row | _json, max_size=5) | _json},
    optional={"count": _json, "extra": _json})


def _numbers(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v, f"{path}[]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path


@pytest.mark.parametrize("number", [n for n, r in CATALOGUE.items() if r.truncated])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_answer | _json)
def test_random_shapes_leak_no_number(number: int, data: Any) -> None:
    """Any JSON from an upstream: a schema-valid result or UpstreamRejected, nothing else."""
    res = get_resource(number)
    assert res.schema is not None
    if not isinstance(data, dict):
        return  # the dispatcher refuses non-objects before the access right
    try:
        out = apply_access_right(res, data)
    except UpstreamRejected:
        return
    # the only number is the gateway's count
    assert list(_numbers(out)) == ["/count"]
    assert out["count"] == len(out["records"])
    assert set(out) == {"subject", "count", "records"}
    assert set(out["subject"]) == set(res.schema.subject)
    for name, kind in res.schema.subject.items():
        assert check_field(kind, out["subject"][name])
    for row in out["records"]:
        assert set(row) == set(res.schema.row)
        for name, kind in res.schema.row.items():
            assert (row[name] is None and name in res.schema.nullable) or check_field(
                kind, row[name])


def test_full_resources_pass_through() -> None:
    data = {"records": [{"paid_kzt": 5}]}
    for n, res in CATALOGUE.items():
        if n != 11:
            assert apply_access_right(res, data) is data
