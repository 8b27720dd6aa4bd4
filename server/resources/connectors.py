"""Connectors: where the answer to a query comes from.

A :class:`Connector` answers ``fetch(resource, params)`` with plain JSON-able data (dicts,
lists, str, int, float, bool, None). The dispatcher has already validated the resource
number and the parameters (exactly one lookup parameter, identifiers checked) and applies
the access right to what the connector returns.

:class:`EmbeddedConnector` answers all 52 resources from the synthetic ``res_*`` tables
(:mod:`server.resources.dataset`); SQLAlchemy runs synchronously in a worker thread
(:func:`asyncio.to_thread`). Every answer has the shape::

    {"subject": {<param>: <value>}, "count": <n>, "records": [ {...}, ... ]}

Dates are ISO 8601 strings; timestamps are rendered in Astana time (R9). Relationships
(50, 51) come from ONE recursive SQL query (``WITH RECURSIVE``, SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import struct
import zlib
from base64 import b64encode
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from server.resources import dataset as ds
from server.resources.catalogue import Resource
from server.resources.errors import InvalidParameters
from siogw.errors import StorageError
from siogw.timeutil import astana_iso

__all__ = ["Connector", "EmbeddedConnector"]

JSON = dict[str, Any]


@runtime_checkable
class Connector(Protocol):
    """Something that can answer a query to an information resource."""

    async def fetch(self, resource: Resource, params: Mapping[str, str]) -> JSON:
        """Return the resource's answer for one validated lookup parameter."""
        ...


# --------------------------------------------------------------------------- helpers


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return astana_iso(v if v.tzinfo else v.replace(tzinfo=dt.UTC))
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _rows(conn: Connection, stmt: sa.Select[Any], drop: Sequence[str] = ("id",)) -> list[JSON]:
    out = []
    for row in conn.execute(stmt).mappings():
        out.append({k: _json_value(v) for k, v in row.items() if k not in drop})
    return out


def _answer(key: str, value: str, records: list[JSON]) -> JSON:
    return {"subject": {key: value}, "count": len(records), "records": records}


def _owner(table: sa.Table, key: str, value: str) -> sa.ColumnElement[bool]:
    col = {"iin": "owner_iin", "bin": "owner_bin"}.get(key, key)
    return table.c[col] == value


def _person_name(last: str | None, first: str | None, patronymic: str | None) -> str | None:
    if last is None:
        return None
    return " ".join(x for x in (last, first, patronymic) if x)


def _png(seed: bytes, size: int = 32) -> bytes:
    """A deterministic grayscale identicon PNG (the synthetic 'photo')."""
    h = hashlib.sha256(seed).digest()
    cell = size // 8
    raw = bytearray()
    for y in range(size):
        raw.append(0)  # filter: none
        for x in range(size):
            cx, cy = min(x // cell, 7 - x // cell), y // cell
            bit = (h[cy * 4 + cx % 4] >> (cx % 8)) & 1
            raw.append(40 if bit else 220)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF
        )

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


# --------------------------------------------------------------------------- handlers

_Handler = Callable[[Connection, int, str, str], JSON]

P, E = ds.res_person, ds.res_entity


def _generic(conn: Connection, n: int, key: str, value: str) -> JSON:
    r = ds.res_record
    stmt = (sa.select(r.c.recorded_on, r.c.attributes)
            .where(r.c.resource == n, r.c.subject == value).order_by(r.c.recorded_on, r.c.id))
    records = [{"recorded_on": row.recorded_on.isoformat(), **row.attributes}
               for row in conn.execute(stmt)]
    return _answer(key, value, records)


def _person(conn: Connection, n: int, key: str, value: str) -> JSON:
    return _answer(key, value, _rows(conn, sa.select(P).where(P.c.iin == value)))


def _entity(conn: Connection, n: int, key: str, value: str) -> JSON:
    records = _rows(conn, sa.select(E).where(E.c.bin == value))
    if records:
        L, A = ds.res_link, ds.res_address
        records[0]["legal_address"] = conn.execute(
            sa.select(A.c.address).where(A.c.bin == value, A.c.kind == "legal")
        ).scalar()
        stmt = (sa.select(L.c.src.label("identifier"), L.c.relation, L.c.share_percent,
                          L.c.since, P.c.last_name, P.c.first_name, P.c.patronymic,
                          E.c.name.label("entity_name"))
                .select_from(L.outerjoin(P, P.c.iin == L.c.src).outerjoin(E, E.c.bin == L.c.src))
                .where(L.c.dst == value, L.c.relation.in_(("founder", "director")))
                .order_by(L.c.relation, L.c.src))
        founders, directors = [], []
        for row in conn.execute(stmt):
            item = {"identifier": row.identifier,
                    "kind": "person" if row.last_name is not None else "entity",
                    "name": _person_name(row.last_name, row.first_name, row.patronymic)
                    or row.entity_name, "since": row.since.isoformat()}
            if row.relation == "founder":
                founders.append({**item, "share_percent": row.share_percent})
            else:
                directors.append(item)
        records[0]["founders"] = founders
        records[0]["directors"] = directors
    return _answer(key, value, records)


def _owned(table: sa.Table, *extra: sa.ColumnElement[bool]) -> _Handler:
    def handler(conn: Connection, n: int, key: str, value: str) -> JSON:
        stmt = sa.select(table).where(_owner(table, key, value), *extra).order_by(table.c.id)
        return _answer(key, value, _rows(conn, stmt))
    return handler


def _by_subject(table: sa.Table, order: str, drop: Sequence[str] = ("id",)) -> _Handler:
    def handler(conn: Connection, n: int, key: str, value: str) -> JSON:
        stmt = sa.select(table).where(table.c[key] == value).order_by(table.c[order], table.c.id)
        return _answer(key, value, _rows(conn, stmt, drop))
    return handler


def _pension(conn: Connection, n: int, key: str, value: str) -> JSON:
    C = ds.res_pension_contribution
    stmt = (sa.select(C.c.period, C.c.employer_bin, E.c.name.label("employer_name"),
                      C.c.amount_kzt, C.c.paid_on)
            .select_from(C.outerjoin(E, E.c.bin == C.c.employer_bin))
            .where(C.c.iin == value).order_by(C.c.period, C.c.id))
    return _answer(key, value, _rows(conn, stmt))


def _court_cards(conn: Connection, n: int, key: str, value: str) -> JSON:
    C = ds.res_court_case
    stmt = (sa.select(C.c.case_number, C.c.court, C.c.category, C.c.judge, C.c.hearings,
                      C.c.filed_on, C.c.status, C.c.decision, C.c.decided_on)
            .where(C.c.iin == value).order_by(C.c.filed_on, C.c.id))
    return _answer(key, value, _rows(conn, stmt))


def _civil_servant(conn: Connection, n: int, key: str, value: str) -> JSON:
    S = ds.res_civil_service
    stmt = sa.select(S).where(S.c.iin == value).order_by(S.c.started_on.desc(), S.c.id).limit(1)
    records = _rows(conn, stmt, ("id", "iin"))
    for r in records:
        r["current"] = r["ended_on"] is None
    return _answer(key, value, records)


def _photo(conn: Connection, n: int, key: str, value: str) -> JSON:
    doc = conn.execute(
        sa.select(P.c.document_number, P.c.document_issued_on).where(P.c.iin == value)
    ).first()
    records = []
    if doc is not None:
        records.append({"format": "image/png", "taken_on": doc.document_issued_on.isoformat(),
                        "document_number": doc.document_number, "synthetic": True,
                        "image_base64": b64encode(_png(value.encode())).decode("ascii")})
    return _answer(key, value, records)


def _form1(conn: Connection, n: int, key: str, value: str) -> JSON:
    A, L = ds.res_address, ds.res_link
    records = _rows(conn, sa.select(P).where(P.c.iin == value))
    if records:
        records[0]["addresses"] = _rows(
            conn, sa.select(A.c.kind, A.c.address, A.c.since)
            .where(A.c.iin == value).order_by(A.c.id))
        parents = conn.execute(
            sa.select(P.c.iin, P.c.last_name, P.c.first_name, P.c.patronymic)
            .select_from(L.join(P, P.c.iin == L.c.src))
            .where(L.c.dst == value, L.c.relation == "parent").order_by(P.c.iin))
        records[0]["parents"] = [
            {"iin": r.iin, "name": _person_name(r.last_name, r.first_name, r.patronymic)}
            for r in parents]
    return _answer(key, value, records)


def _civil_status(conn: Connection, n: int, key: str, value: str) -> JSON:
    C = ds.res_civil_status
    O_ = P.alias("other")
    stmt = (sa.select(C.c.act_type, C.c.registered_on, C.c.registry_office, C.c.record_number,
                      C.c.other_iin, O_.c.last_name, O_.c.first_name, O_.c.patronymic)
            .select_from(C.outerjoin(O_, O_.c.iin == C.c.other_iin))
            .where(C.c.iin == value).order_by(C.c.registered_on, C.c.id))
    records = []
    for r in _rows(conn, stmt):
        name = _person_name(r.pop("last_name"), r.pop("first_name"), r.pop("patronymic"))
        records.append({**r, "other_name": name})
    return _answer(key, value, records)


def _crossings(foreigners: bool) -> _Handler:
    def handler(conn: Connection, n: int, key: str, value: str) -> JSON:
        B = ds.res_border_crossing
        cond = P.c.citizenship != "KAZ" if foreigners else P.c.citizenship == "KAZ"
        stmt = (sa.select(B.c.crossed_at, B.c.direction, B.c.checkpoint, B.c.country,
                          B.c.document_number, P.c.citizenship)
                .select_from(B.join(P, P.c.iin == B.c.iin))
                .where(B.c.iin == value, cond).order_by(B.c.crossed_at, B.c.id))
        return _answer(key, value, _rows(conn, stmt))
    return handler


def _phones(kind: str) -> _Handler:
    def handler(conn: Connection, n: int, key: str, value: str) -> JSON:
        T = ds.res_phone
        cond = T.c.number == value if key == "phone" else _owner(T, key, value)
        stmt = (sa.select(T.c.number, T.c.operator, T.c.since, T.c.owner_iin, T.c.owner_bin,
                          T.c.egov_mobile, P.c.last_name, P.c.first_name, P.c.patronymic,
                          E.c.name.label("entity_name"))
                .select_from(T.outerjoin(P, P.c.iin == T.c.owner_iin)
                             .outerjoin(E, E.c.bin == T.c.owner_bin))
                .where(cond, T.c.kind == kind).order_by(T.c.id))
        records = []
        for r in _rows(conn, stmt):
            name = _person_name(r.pop("last_name"), r.pop("first_name"), r.pop("patronymic"))
            entity_name = r.pop("entity_name")
            if kind != "mobile":
                r.pop("egov_mobile")
            records.append({**r, "owner_name": name or entity_name})
        return _answer(key, value, records)
    return handler


def _addresses_and_phones(conn: Connection, n: int, key: str, value: str) -> JSON:
    A, T = ds.res_address, ds.res_phone
    if key == "phone":
        owners = [r[0] for r in conn.execute(
            sa.select(T.c.owner_iin).where(T.c.number == value, T.c.owner_iin.is_not(None))
            .order_by(T.c.owner_iin).distinct())]
    else:
        owners = [value]
    records = []
    for iin in owners:
        person = conn.execute(sa.select(P.c.last_name, P.c.first_name, P.c.patronymic)
                              .where(P.c.iin == iin)).first()
        addresses = _rows(conn, sa.select(A.c.kind, A.c.address, A.c.since)
                          .where(A.c.iin == iin).order_by(A.c.id))
        phones = _rows(conn, sa.select(T.c.number, T.c.kind, T.c.operator)
                       .where(T.c.owner_iin == iin).order_by(T.c.id))
        if person is None and not addresses and not phones:
            continue
        records.append({"iin": iin, "name": _person_name(*person) if person else None,
                        "addresses": addresses, "phones": phones})
    return _answer(key, value, records)


# Relationships, levels 1 and 2 (resources 50, 51): one recursive query. Edges are walked
# in both directions; ``relation`` is the role of the reached node relative to the node it
# was reached from ("founder" of it, its "child", the entity it "founded" ...). ``path``
# prevents cycles. Each step finds the node's links through the src and dst indexes (one
# OR join), so a query reads only the links around the subject, never the whole table.
# Rows at depth 0 (the subject itself) and at the requested depth that are not reachable
# more directly are returned, with names joined in the same statement.
_RELATIONSHIPS_SQL = sa.text("""
WITH RECURSIVE walk(node, depth, via, relation, via_relation, path) AS (
    SELECT CAST(:subject AS VARCHAR(12)), 0, CAST(NULL AS VARCHAR(12)),
           CAST(NULL AS VARCHAR(16)), CAST(NULL AS VARCHAR(16)),
           CAST('/' || :subject || '/' AS VARCHAR(256))
    UNION ALL
    SELECT CAST(CASE WHEN l.dst = w.node THEN l.src ELSE l.dst END AS VARCHAR(12)),
           w.depth + 1, CAST(w.node AS VARCHAR(12)),
           CAST(CASE WHEN l.dst = w.node THEN l.relation
                     WHEN l.relation = 'parent' THEN 'child'
                     WHEN l.relation = 'founder' THEN 'founded_entity'
                     WHEN l.relation = 'director' THEN 'directed_entity'
                     ELSE l.relation END AS VARCHAR(16)),
           CAST(w.relation AS VARCHAR(16)),
           CAST(w.path || CASE WHEN l.dst = w.node THEN l.src ELSE l.dst END || '/'
                AS VARCHAR(256))
    FROM walk w JOIN res_link l ON l.dst = w.node OR l.src = w.node
    WHERE w.depth < :depth
      AND w.path NOT LIKE '%/' || CASE WHEN l.dst = w.node THEN l.src ELSE l.dst END || '/%'
)
SELECT w.node, w.depth, w.via, w.relation, w.via_relation,
       p.last_name, p.first_name, p.patronymic, en.name AS entity_name,
       vp.last_name AS via_last_name, vp.first_name AS via_first_name,
       vp.patronymic AS via_patronymic, ve.name AS via_entity_name
FROM walk w
LEFT JOIN res_person p ON p.iin = w.node
LEFT JOIN res_entity en ON en.bin = w.node
LEFT JOIN res_person vp ON vp.iin = w.via
LEFT JOIN res_entity ve ON ve.bin = w.via
WHERE w.depth = 0
   OR (w.depth = :depth
       AND NOT EXISTS (SELECT 1 FROM walk w2 WHERE w2.node = w.node AND w2.depth < w.depth))
ORDER BY w.depth, w.node, w.via, w.relation, w.via_relation
""")


def _relationships(conn: Connection, n: int, key: str, value: str) -> JSON:
    depth = 1 if n == 50 else 2
    nodes: dict[str, JSON] = {}
    subject_name: str | None = None
    for r in conn.execute(_RELATIONSHIPS_SQL, {"subject": value, "depth": depth}):
        name = _person_name(r.last_name, r.first_name, r.patronymic) or r.entity_name
        if r.depth == 0:
            subject_name = name
            continue
        node = nodes.setdefault(r.node, {
            "identifier": r.node, "kind": "person" if r.last_name is not None else "entity",
            "name": name, "level": depth})
        if depth == 1:
            rels = node.setdefault("relations", [])
            if r.relation not in rels:
                rels.append(r.relation)
        else:
            via_name = (_person_name(r.via_last_name, r.via_first_name, r.via_patronymic)
                        or r.via_entity_name)
            node.setdefault("paths", []).append({
                "via": r.via, "via_name": via_name, "via_relation": r.via_relation,
                "relation": r.relation})
    answer = _answer(key, value, list(nodes.values()))
    answer["subject"]["name"] = subject_name
    answer["level"] = depth
    return answer


V, R, L_ = ds.res_vessel, ds.res_real_estate, ds.res_land_plot
_HANDLERS: Mapping[int, _Handler] = {
    1: _person,
    2: _entity,
    3: _owned(R),
    4: _owned(L_),
    5: _owned(ds.res_vehicle),
    6: _owned(ds.res_weapon),
    8: _owned(V, V.c.registry.in_(("river", "small"))),
    9: _owned(V, V.c.registry == "sea"),
    11: _pension,
    16: _by_subject(ds.res_court_case, "filed_on"),
    17: _court_cards,
    18: _civil_servant,
    19: _photo,
    20: _form1,
    21: _by_subject(ds.res_notary_act, "performed_on"),
    22: _civil_status,
    23: _crossings(foreigners=False),
    24: _crossings(foreigners=True),
    25: _by_subject(ds.res_taxpayer, "registered_on"),
    36: _phones("landline"),
    40: _addresses_and_phones,
    41: _by_subject(ds.res_civil_service, "started_on", ("id", "iin")),
    50: _relationships,
    51: _relationships,
    52: _phones("mobile"),
}


class EmbeddedConnector:
    """Answers every resource from the synthetic dataset in ``engine``.

    The tables must exist and be seeded (:func:`server.resources.dataset.seed_dataset`).
    Database failures surface as :class:`~siogw.errors.StorageError`.
    """

    def __init__(self, engine: Engine, *, inline: bool | None = None) -> None:
        self._engine = engine
        #: Look up on the calling (event loop) thread: by default with SQLite, where a
        #: lookup is shorter than the hop to a worker thread (see
        #: ``server.auth.Gateway.inline_blocking``); in a worker thread otherwise.
        self.inline = engine.dialect.name == "sqlite" if inline is None else inline

    async def fetch(self, resource: Resource, params: Mapping[str, str]) -> JSON:
        """Look the single parameter up in ``resource``'s register."""
        if self.inline:
            return self.fetch_sync(resource, params)
        return await asyncio.to_thread(self.fetch_sync, resource, params)

    def fetch_sync(self, resource: Resource, params: Mapping[str, str]) -> JSON:
        """The blocking lookup behind :meth:`fetch`.

        Expects parameters already validated by the dispatcher; it only re-checks their
        shape (one accepted key) so that a direct caller gets an error, not a crash.
        """
        if len(params) != 1 or not set(params) <= set(resource.parameters):
            raise InvalidParameters(
                f"resource {resource.number} takes exactly one of: {', '.join(resource.parameters)}"
            )
        ((key, value),) = params.items()
        handler = _HANDLERS.get(resource.number, _generic)
        try:
            with self._engine.connect() as conn:
                return handler(conn, resource.number, key, value)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(
                f"resource {resource.number}: the embedded register failed", detail=str(exc)
            ) from exc
