"""The embedded connector answers all 52 resources; relationships in one recursive query."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2

from server.resources import (
    CATALOGUE,
    DEMO_ENTITY_BIN,
    DEMO_FOREIGNER_IIN,
    DEMO_PERSON_IIN,
    EmbeddedConnector,
    demo_parameters,
    get_resource,
    make_iin,
)
from server.resources import dataset as ds
from tests.server.resources.dbutil import sqlite_engine

SUBJECTS = {"iin": DEMO_PERSON_IIN, "bin": DEMO_ENTITY_BIN}


def _cases() -> Iterator[tuple[int, dict[str, str]]]:
    for n, res in CATALOGUE.items():
        yield n, demo_parameters(n)
        if n not in ds.FOREIGNER_RESOURCES:
            for key in ("iin", "bin"):
                if key in res.parameters and key not in demo_parameters(n):
                    yield n, {key: SUBJECTS[key]}


CASES = list(_cases())


def test_every_resource_has_a_demo_case() -> None:
    assert {n for n, _ in CASES} == set(range(1, 53))


@pytest.mark.parametrize(
    ("number", "params"), CASES, ids=[f"{n}-{next(iter(p))}" for n, p in CASES]
)
def test_resource_returns_well_formed_non_empty_data(
    embedded: EmbeddedConnector, number: int, params: dict[str, str]
) -> None:
    data = asyncio.run(embedded.fetch(get_resource(number), params))
    assert data["subject"][next(iter(params))] == next(iter(params.values()))
    assert data["count"] == len(data["records"]) >= 1
    assert all(isinstance(r, dict) and r for r in data["records"])
    json.dumps(data, allow_nan=False)  # plain JSON
    struct_pb2.Struct().update(data)  # and fits a protobuf Struct


def test_unknown_subject_gives_empty_records(embedded: EmbeddedConnector) -> None:
    ghost = "850312312343"  # valid IIN, not in the dataset
    for n in (1, 11, 19, 22, 50, 51):
        data = embedded.fetch_sync(get_resource(n), {"iin": ghost})
        assert data["count"] == 0 and data["records"] == []


def test_pension_connector_reads_amounts(embedded: EmbeddedConnector) -> None:
    """The raw register has amounts: stripping them is the dispatcher's job (see test_access)."""
    data = embedded.fetch_sync(get_resource(11), {"iin": DEMO_PERSON_IIN})
    assert all(isinstance(r["amount_kzt"], int) for r in data["records"])
    assert {r["employer_bin"] for r in data["records"]} == {DEMO_ENTITY_BIN}


def test_lookup_by_plate_and_phone(embedded: EmbeddedConnector) -> None:
    cars = embedded.fetch_sync(get_resource(5), {"iin": DEMO_PERSON_IIN})["records"]
    by_plate = embedded.fetch_sync(get_resource(5), {"plate": cars[0]["plate"]})["records"]
    assert [c["vin"] for c in by_plate] == [cars[0]["vin"]]
    mobile = embedded.fetch_sync(get_resource(52), {"iin": DEMO_PERSON_IIN})["records"][0]
    assert mobile["egov_mobile"] is True
    found = embedded.fetch_sync(get_resource(40), {"phone": mobile["number"]})["records"]
    assert [r["iin"] for r in found] == [DEMO_PERSON_IIN]


def test_foreigner_resources_split(embedded: EmbeddedConnector) -> None:
    citizens = get_resource(23)
    foreigners = get_resource(24)
    assert embedded.fetch_sync(citizens, {"iin": DEMO_FOREIGNER_IIN})["count"] == 0
    assert embedded.fetch_sync(foreigners, {"iin": DEMO_PERSON_IIN})["count"] == 0
    crossing = embedded.fetch_sync(citizens, {"iin": DEMO_PERSON_IIN})["records"][0]
    assert crossing["crossed_at"].endswith(("+05:00", "+06:00"))  # Astana time (R9)


# ----------------------------------------------------------------- relationships


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


@pytest.mark.parametrize("number", [50, 51])
@pytest.mark.parametrize("key", ["iin", "bin"])
def test_relationships_use_one_recursive_statement(
    engine: sa.Engine, embedded: EmbeddedConnector, number: int, key: str
) -> None:
    with _statements(engine) as seen:
        data = asyncio.run(embedded.fetch(get_resource(number), {key: SUBJECTS[key]}))
    assert data["count"] >= 1
    assert len(seen) == 1, seen
    assert "WITH RECURSIVE" in seen[0]


def _graph(engine: sa.Engine) -> dict[str, dict[str, set[str]]]:
    inverse = {"parent": "child", "founder": "founded_entity", "director": "directed_entity",
               "spouse": "spouse"}
    g: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    with engine.connect() as c:
        for src, dst, rel in c.execute(sa.select(ds.res_link.c.src, ds.res_link.c.dst,
                                                 ds.res_link.c.relation)):
            g[dst][src].add(rel)
            g[src][dst].add(inverse[rel])
    return g


def test_relationship_levels_match_breadth_first_search(
    engine: sa.Engine, embedded: EmbeddedConnector
) -> None:
    g = _graph(engine)
    rng = random.Random(5)
    subjects = [DEMO_PERSON_IIN, DEMO_ENTITY_BIN, DEMO_FOREIGNER_IIN, *rng.sample(sorted(g), 25)]
    for s in subjects:
        level1 = set(g[s]) - {s}
        level2 = {n for m in level1 for n in g[m]} - level1 - {s}
        key = "bin" if s[4] in "456" else "iin"
        one = embedded.fetch_sync(get_resource(50), {key: s})
        two = embedded.fetch_sync(get_resource(51), {key: s})
        assert {r["identifier"] for r in one["records"]} == level1
        assert {r["identifier"] for r in two["records"]} == level2
        for r in one["records"]:
            assert set(r["relations"]) == g[s][r["identifier"]]
        for r in two["records"]:
            vias = {p["via"] for p in r["paths"]}
            assert vias == {m for m in level1 if r["identifier"] in g[m]}
            for p in r["paths"]:
                assert p["relation"] in g[p["via"]][r["identifier"]]
                assert p["via_relation"] in g[s][p["via"]]


def test_demo_relationships_read_naturally(embedded: EmbeddedConnector) -> None:
    one = embedded.fetch_sync(get_resource(50), {"iin": DEMO_PERSON_IIN})
    rel = {r["identifier"]: r["relations"] for r in one["records"]}
    assert rel[DEMO_FOREIGNER_IIN] == ["spouse"]
    assert sorted(rel[DEMO_ENTITY_BIN]) == ["directed_entity", "founded_entity"]
    assert one["subject"]["name"] == "Serikbayev Arman Nurlanovich"
    two = embedded.fetch_sync(get_resource(51), {"bin": DEMO_ENTITY_BIN})
    names = {r["name"] for r in two["records"]}
    # the founder of the co-founding entity "Altyn Invest"
    assert any(n.startswith("Omarov Bolat ") for n in names), names


def test_direct_call_with_bad_parameters_is_an_input_error(embedded: EmbeddedConnector) -> None:
    from server.resources import InvalidParameters

    with pytest.raises(InvalidParameters):
        embedded.fetch_sync(get_resource(1), {"bin": DEMO_ENTITY_BIN})
    with pytest.raises(InvalidParameters):
        embedded.fetch_sync(get_resource(3), {"iin": DEMO_PERSON_IIN, "bin": DEMO_ENTITY_BIN})


def test_photo_is_a_valid_png(embedded: EmbeddedConnector) -> None:
    import base64
    import struct
    import zlib

    rec = embedded.fetch_sync(get_resource(19), {"iin": DEMO_PERSON_IIN})["records"][0]
    png = base64.b64decode(rec["image_base64"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        tag, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body)
        chunks[tag] = body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (width + 1)
    other = embedded.fetch_sync(get_resource(19), {"iin": DEMO_FOREIGNER_IIN})["records"][0]
    assert other["image_base64"] != rec["image_base64"]


# ----------------------------------------------------------------- where lookups run
def test_lookups_run_inline_on_sqlite_and_in_a_worker_thread_on_a_server_db(
    engine: sa.Engine,
) -> None:
    """SQLite lookups are shorter than a thread hop; PostgreSQL ones overlap in threads."""
    import threading

    threads: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def where(*_args: Any) -> None:
        threads.append(threading.current_thread().name)

    try:
        connector = EmbeddedConnector(engine)
        resource = get_resource(1)
        data = asyncio.run(connector.fetch(resource, ds.demo_parameters(1)))
        assert data["records"]
        on_loop = {threading.main_thread().name}
        if engine.dialect.name == "sqlite":
            assert connector.inline and set(threads) == on_loop
        else:
            assert not connector.inline and threads and on_loop.isdisjoint(threads)
        # Explicit choice wins over the default.
        threads.clear()
        forced = EmbeddedConnector(engine, inline=not connector.inline)
        asyncio.run(forced.fetch(resource, ds.demo_parameters(1)))
        assert (set(threads) == on_loop) == forced.inline
    finally:
        sa.event.remove(engine, "before_cursor_execute", where)


def test_a_lookup_uses_one_pooled_connection_for_all_its_statements(
    engine: sa.Engine, embedded: EmbeddedConnector
) -> None:
    """Resource 2 runs three statements: one checkout (one pre-ping on PostgreSQL)."""
    checkouts: list[object] = []

    def on_checkout(*_args: Any) -> None:
        checkouts.append(object())

    sa.event.listen(engine, "checkout", on_checkout)
    try:
        with _statements(engine) as seen:
            data = embedded.fetch_sync(get_resource(2), {"bin": DEMO_ENTITY_BIN})
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
    assert data["records"] and len(seen) == 3
    assert len(checkouts) == 1


def test_duplicate_link_is_refused(engine: sa.Engine) -> None:
    """Issue 14 finding 3: one edge per (src, dst, relation), so no duplicate level-2 path."""
    L = ds.res_link
    with engine.connect() as c:
        edge = c.execute(sa.select(L).where(L.c.dst == DEMO_ENTITY_BIN).limit(1)).one()
    row = {k: v for k, v in edge._mapping.items() if k != "id"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        c.execute(L.insert(), [row])


def test_linked_iin_without_person_row_is_a_person(tmp_path: Path) -> None:
    """Issue 14 finding 3: the kind follows the identifier, not which register has a row."""
    engine = sqlite_engine(tmp_path / "links.db")
    ds.metadata.create_all(engine)
    ghost = make_iin(dt.date(1975, 3, 3), "M", 77)  # no res_person row
    with engine.begin() as c:
        c.execute(ds.res_link.insert(), [
            {"src": ghost, "dst": DEMO_ENTITY_BIN, "relation": "founder",
             "share_percent": 100.0, "since": dt.date(2012, 6, 20)}])
    connector = EmbeddedConnector(engine)
    data = asyncio.run(connector.fetch(get_resource(50), {"bin": DEMO_ENTITY_BIN}))
    ((node,),) = [data["records"]]
    assert node["identifier"] == ghost and node["kind"] == "person"
    engine.dispose()
