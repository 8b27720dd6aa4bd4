"""Connectors: where the answer to a query comes from.

A :class:`Connector` answers ``fetch(resource, params)`` with plain JSON-able data (dicts,
lists, str, int, float, bool, None). The dispatcher has already validated the resource
number and the parameters (exactly one lookup parameter, identifiers checked) and applies
the access right to what the connector returns.

:class:`EmbeddedConnector` answers all 52 resources from the synthetic ``res_*`` tables
(:mod:`server.resources.dataset`). Each handler's statements are built once, with the
subject as a bound parameter, and run as prepared statements (:mod:`server.prepared`):
compiled once per engine, no SQLAlchemy execution overhead per lookup. On SQLite the
lookup runs on the calling thread; elsewhere in a worker thread (:func:`asyncio.to_thread`).
Every answer has the shape::

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
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from server.prepared import Prepared
from server.resources import dataset as ds
from server.resources.catalogue import Resource
from server.resources.errors import InvalidParameters
from server.resources.identifiers import is_valid_bin
from siogw_api.errors import StorageError
from siogw_api.timeutil import astana_iso

__all__ = ["NO_OPTIONS", "Connector", "EmbeddedConnector", "FetchOptions"]

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """What the caller tells a connector about one call (see :class:`Connector`)."""

    #: The query's request id: sent upstream as ``Idempotency-Key`` ("" sends none).
    request_id: str = ""
    #: Seconds left of the client's gRPC deadline; None: the client set none.
    time_remaining: float | None = None


NO_OPTIONS = FetchOptions()


@runtime_checkable
class Connector(Protocol):
    """Something that can answer a query to an information resource.

    ``options`` (:class:`FetchOptions`): the query's request id and what is left of the
    client's deadline; the dispatcher always passes it.
    """

    async def fetch(
        self, resource: Resource, params: Mapping[str, str],
        options: FetchOptions = NO_OPTIONS,
    ) -> JSON:
        """Return the resource's answer for one validated lookup parameter."""
        ...


# --------------------------------------------------------------------------- helpers


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return astana_iso(v if v.tzinfo else v.replace(tzinfo=dt.UTC))
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


class _Statements:
    """The :class:`Prepared` form of each handler statement, per engine (made on first use).

    Statements are kept per object: handlers build each one once (module level or once
    per lookup key) with the looked-up value as a bound parameter.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._prepared: dict[int, tuple[Any, Prepared]] = {}

    def get(self, stmt: Any) -> Prepared:
        hit = self._prepared.get(id(stmt))
        if hit is None or hit[0] is not stmt:
            hit = (stmt, Prepared(self.engine, stmt))
            self._prepared[id(stmt)] = hit
        return hit[1]


class _Db:
    """One lookup's way to the database: its statements on one pooled connection."""

    def __init__(self, statements: _Statements, conn: Any) -> None:
        self._statements = statements
        self._conn = conn

    def rows(self, stmt: Any, **params: Any) -> list[Any]:
        return self._statements.get(stmt).all(params, conn=self._conn)

    def first(self, stmt: Any, **params: Any) -> Any:
        found = self.rows(stmt, **params)
        return found[0] if found else None

    def scalar(self, stmt: Any, **params: Any) -> Any:
        row = self.first(stmt, **params)
        return row[0] if row is not None else None


def _v(name: str = "v") -> sa.BindParameter[Any]:
    """The looked-up value (or another per-call value) as a bound parameter."""
    return sa.bindparam(name)


def _rows(db: _Db, stmt: Any, drop: Sequence[str] = ("id",), **params: Any) -> list[JSON]:
    out = []
    for row in db.rows(stmt, **params):
        out.append({k: _json_value(v) for k, v in row._asdict().items() if k not in drop})
    return out


def _answer(key: str, value: str, records: list[JSON]) -> JSON:
    return {"subject": {key: value}, "count": len(records), "records": records}


def _owner(table: sa.Table, key: str) -> sa.ColumnElement[bool]:
    col = {"iin": "owner_iin", "bin": "owner_bin"}.get(key, key)
    return table.c[col] == _v()


def _per_key(build: Callable[[str], Any]) -> Callable[[str], Any]:
    """``build(key)``, built once per lookup key (statements depend on the key's column)."""
    made: dict[str, Any] = {}

    def get(key: str) -> Any:
        if key not in made:
            made[key] = build(key)
        return made[key]

    return get


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

_Handler = Callable[[_Db, int, str, str], JSON]

P, E = ds.res_person, ds.res_entity


_R = ds.res_record
_GENERIC = (sa.select(_R.c.recorded_on, _R.c.attributes)
            .where(_R.c.resource == _v("n"), _R.c.subject == _v())
            .order_by(_R.c.recorded_on, _R.c.id))


def _generic(db: _Db, n: int, key: str, value: str) -> JSON:
    records = [{"recorded_on": row.recorded_on.isoformat(), **row.attributes}
               for row in db.rows(_GENERIC, n=n, v=value)]
    return _answer(key, value, records)


_PERSON = sa.select(P).where(P.c.iin == _v())


def _person(db: _Db, n: int, key: str, value: str) -> JSON:
    return _answer(key, value, _rows(db, _PERSON, v=value))


_L, _A = ds.res_link, ds.res_address
_ENTITY = sa.select(E).where(E.c.bin == _v())
_LEGAL_ADDRESS = sa.select(_A.c.address).where(_A.c.bin == _v(), _A.c.kind == "legal")
_FOUNDERS_DIRECTORS = (
    sa.select(_L.c.src.label("identifier"), _L.c.relation, _L.c.share_percent,
              _L.c.since, P.c.last_name, P.c.first_name, P.c.patronymic,
              E.c.name.label("entity_name"))
    .select_from(_L.outerjoin(P, P.c.iin == _L.c.src).outerjoin(E, E.c.bin == _L.c.src))
    .where(_L.c.dst == _v(), sa.or_(_L.c.relation == "founder", _L.c.relation == "director"))
    .order_by(_L.c.relation, _L.c.src))


def _entity(db: _Db, n: int, key: str, value: str) -> JSON:
    records = _rows(db, _ENTITY, v=value)
    if records:
        records[0]["legal_address"] = db.scalar(_LEGAL_ADDRESS, v=value)
        founders, directors = [], []
        for row in db.rows(_FOUNDERS_DIRECTORS, v=value):
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
    stmt_for = _per_key(
        lambda key: sa.select(table).where(_owner(table, key), *extra).order_by(table.c.id))

    def handler(db: _Db, n: int, key: str, value: str) -> JSON:
        return _answer(key, value, _rows(db, stmt_for(key), v=value))
    return handler


def _by_subject(table: sa.Table, order: str, drop: Sequence[str] = ("id",)) -> _Handler:
    stmt_for = _per_key(
        lambda key: sa.select(table).where(table.c[key] == _v())
        .order_by(table.c[order], table.c.id))

    def handler(db: _Db, n: int, key: str, value: str) -> JSON:
        return _answer(key, value, _rows(db, stmt_for(key), drop, v=value))
    return handler


_C = ds.res_pension_contribution
_PENSION = (sa.select(_C.c.period, _C.c.employer_bin, E.c.name.label("employer_name"),
                      _C.c.amount_kzt, _C.c.paid_on)
            .select_from(_C.outerjoin(E, E.c.bin == _C.c.employer_bin))
            .where(_C.c.iin == _v()).order_by(_C.c.period, _C.c.id))


def _pension(db: _Db, n: int, key: str, value: str) -> JSON:
    return _answer(key, value, _rows(db, _PENSION, v=value))


_CC = ds.res_court_case
_COURT_CARDS = (sa.select(_CC.c.case_number, _CC.c.court, _CC.c.category, _CC.c.judge,
                          _CC.c.hearings, _CC.c.filed_on, _CC.c.status, _CC.c.decision,
                          _CC.c.decided_on)
                .where(_CC.c.iin == _v()).order_by(_CC.c.filed_on, _CC.c.id))


def _court_cards(db: _Db, n: int, key: str, value: str) -> JSON:
    return _answer(key, value, _rows(db, _COURT_CARDS, v=value))


_S = ds.res_civil_service
_CIVIL_SERVANT = (sa.select(_S).where(_S.c.iin == _v())
                  .order_by(_S.c.started_on.desc(), _S.c.id).limit(1))


def _civil_servant(db: _Db, n: int, key: str, value: str) -> JSON:
    records = _rows(db, _CIVIL_SERVANT, ("id", "iin"), v=value)
    for r in records:
        r["current"] = r["ended_on"] is None
    return _answer(key, value, records)


_PHOTO_DOC = sa.select(P.c.document_number, P.c.document_issued_on).where(P.c.iin == _v())


def _photo(db: _Db, n: int, key: str, value: str) -> JSON:
    doc = db.first(_PHOTO_DOC, v=value)
    records = []
    if doc is not None:
        records.append({"format": "image/png", "taken_on": doc.document_issued_on.isoformat(),
                        "document_number": doc.document_number, "synthetic": True,
                        "image_base64": b64encode(_png(value.encode())).decode("ascii")})
    return _answer(key, value, records)


_ADDRESSES = (sa.select(_A.c.kind, _A.c.address, _A.c.since)
              .where(_A.c.iin == _v()).order_by(_A.c.id))
_PARENTS = (sa.select(P.c.iin, P.c.last_name, P.c.first_name, P.c.patronymic)
            .select_from(_L.join(P, P.c.iin == _L.c.src))
            .where(_L.c.dst == _v(), _L.c.relation == "parent").order_by(P.c.iin))


def _form1(db: _Db, n: int, key: str, value: str) -> JSON:
    records = _rows(db, _PERSON, v=value)
    if records:
        records[0]["addresses"] = _rows(db, _ADDRESSES, v=value)
        parents = db.rows(_PARENTS, v=value)
        records[0]["parents"] = [
            {"iin": r.iin, "name": _person_name(r.last_name, r.first_name, r.patronymic)}
            for r in parents]
    return _answer(key, value, records)


_CS, _OTHER = ds.res_civil_status, P.alias("other")
_CIVIL_STATUS = (
    sa.select(_CS.c.act_type, _CS.c.registered_on, _CS.c.registry_office, _CS.c.record_number,
              _CS.c.other_iin, _OTHER.c.last_name, _OTHER.c.first_name, _OTHER.c.patronymic)
    .select_from(_CS.outerjoin(_OTHER, _OTHER.c.iin == _CS.c.other_iin))
    .where(_CS.c.iin == _v()).order_by(_CS.c.registered_on, _CS.c.id))


def _civil_status(db: _Db, n: int, key: str, value: str) -> JSON:
    records = []
    for r in _rows(db, _CIVIL_STATUS, v=value):
        name = _person_name(r.pop("last_name"), r.pop("first_name"), r.pop("patronymic"))
        records.append({**r, "other_name": name})
    return _answer(key, value, records)


def _crossings(foreigners: bool) -> _Handler:
    B = ds.res_border_crossing
    cond = P.c.citizenship != "KAZ" if foreigners else P.c.citizenship == "KAZ"
    stmt = (sa.select(B.c.crossed_at, B.c.direction, B.c.checkpoint, B.c.country,
                      B.c.document_number, P.c.citizenship)
            .select_from(B.join(P, P.c.iin == B.c.iin))
            .where(B.c.iin == _v(), cond).order_by(B.c.crossed_at, B.c.id))

    def handler(db: _Db, n: int, key: str, value: str) -> JSON:
        return _answer(key, value, _rows(db, stmt, v=value))
    return handler


def _phones(kind: str) -> _Handler:
    T = ds.res_phone

    def build(key: str) -> Any:
        cond = T.c.number == _v() if key == "phone" else _owner(T, key)
        return (sa.select(T.c.number, T.c.operator, T.c.since, T.c.owner_iin, T.c.owner_bin,
                          T.c.egov_mobile, P.c.last_name, P.c.first_name, P.c.patronymic,
                          E.c.name.label("entity_name"))
                .select_from(T.outerjoin(P, P.c.iin == T.c.owner_iin)
                             .outerjoin(E, E.c.bin == T.c.owner_bin))
                .where(cond, T.c.kind == kind).order_by(T.c.id))

    stmt_for = _per_key(build)

    def handler(db: _Db, n: int, key: str, value: str) -> JSON:
        records = []
        for r in _rows(db, stmt_for(key), v=value):
            name = _person_name(r.pop("last_name"), r.pop("first_name"), r.pop("patronymic"))
            entity_name = r.pop("entity_name")
            if kind != "mobile":
                r.pop("egov_mobile")
            records.append({**r, "owner_name": name or entity_name})
        return _answer(key, value, records)
    return handler


_T = ds.res_phone
_PHONE_OWNERS = (sa.select(_T.c.owner_iin).where(_T.c.number == _v(), _T.c.owner_iin.is_not(None))
                 .order_by(_T.c.owner_iin).distinct())
_PERSON_NAME = sa.select(P.c.last_name, P.c.first_name, P.c.patronymic).where(P.c.iin == _v())
_OWNED_PHONES = (sa.select(_T.c.number, _T.c.kind, _T.c.operator)
                 .where(_T.c.owner_iin == _v()).order_by(_T.c.id))


def _addresses_and_phones(db: _Db, n: int, key: str, value: str) -> JSON:
    if key == "phone":
        owners = [r[0] for r in db.rows(_PHONE_OWNERS, v=value)]
    else:
        owners = [value]
    records = []
    for iin in owners:
        person = db.first(_PERSON_NAME, v=iin)
        addresses = _rows(db, _ADDRESSES, v=iin)
        phones = _rows(db, _OWNED_PHONES, v=iin)
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


def _relationships(db: _Db, n: int, key: str, value: str) -> JSON:
    depth = 1 if n == 50 else 2
    nodes: dict[str, JSON] = {}
    subject_name: str | None = None
    for r in db.rows(_RELATIONSHIPS_SQL, subject=value, depth=depth):
        name = _person_name(r.last_name, r.first_name, r.patronymic) or r.entity_name
        if r.depth == 0:
            subject_name = name
            continue
        # the kind comes from the identifier (IIN and BIN never overlap), not from which
        # register has a row: a linked IIN without a person row is still a person
        node = nodes.setdefault(r.node, {
            "identifier": r.node, "kind": "entity" if is_valid_bin(r.node) else "person",
            "name": name, "level": depth})
        if depth == 1:
            rels = node.setdefault("relations", [])
            if r.relation not in rels:
                rels.append(r.relation)
        else:
            via_name = (_person_name(r.via_last_name, r.via_first_name, r.via_patronymic)
                        or r.via_entity_name)
            path = {"via": r.via, "via_name": via_name, "via_relation": r.via_relation,
                    "relation": r.relation}
            paths = node.setdefault("paths", [])
            if path not in paths:  # defensive: only a duplicate edge (now refused) repeats one
                paths.append(path)
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
    8: _owned(V, sa.or_(V.c.registry == "river", V.c.registry == "small")),
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
    Database failures surface as :class:`~siogw_api.errors.StorageError`.
    """

    def __init__(self, engine: Engine, *, inline: bool | None = None) -> None:
        self._engine = engine
        self._statements = _Statements(engine)
        #: Look up on the calling (event loop) thread: by default with SQLite, where a
        #: lookup is shorter than the hop to a worker thread (see
        #: ``server.context.Gateway.inline_blocking``); in a worker thread otherwise.
        self.inline = engine.dialect.name == "sqlite" if inline is None else inline

    async def fetch(
        self, resource: Resource, params: Mapping[str, str],
        options: FetchOptions = NO_OPTIONS,
    ) -> JSON:
        """Look the single parameter up in ``resource``'s register (``options`` unused: a
        local lookup is not cut short)."""
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
        dbapi = self._engine.dialect.dbapi
        errors = (sa.exc.SQLAlchemyError, dbapi.Error if dbapi is not None else sa.exc.DBAPIError)
        try:
            conn = self._engine.raw_connection()  # one checkout for all of the lookup
            try:
                return handler(_Db(self._statements, conn), resource.number, key, value)
            finally:
                conn.close()
        except errors as exc:
            raise StorageError(
                f"resource {resource.number}: the embedded register failed", detail=str(exc)
            ) from exc
