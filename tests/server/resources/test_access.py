"""Resource 11 (pension contributions) never carries an amount out of the server (R2)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from server.resources import (
    CATALOGUE,
    DEMO_PERSON_IIN,
    Dispatcher,
    EmbeddedConnector,
    apply_access_right,
    get_resource,
)
from server.resources import dataset as ds
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


def test_allowlist_strips_unknown_and_nested_amounts() -> None:
    res = get_resource(11)
    data = {"subject": {"iin": "x", "amount": 5}, "count": 2, "total_kzt": 99,
            "records": [{"period": "2025-01", "amount_kzt": 10, "sum": 10,
                         "nested": {"amount_kzt": 10}},
                        [{"amount": 7, "paid_on": "2025-02-05"}]]}
    out = apply_access_right(res, data)
    assert out == {"subject": {"iin": "x"}, "count": 2,
                   "records": [{"period": "2025-01"}, [{"paid_on": "2025-02-05"}]]}
    assert data["total_kzt"] == 99  # input untouched


def test_full_resources_pass_through() -> None:
    data = {"records": [{"paid_kzt": 5}]}
    for n, res in CATALOGUE.items():
        if n != 11:
            assert apply_access_right(res, data) is data
