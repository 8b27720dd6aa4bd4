"""The List and the Lists: publishing, screening, monitoring and re-screening
(issue 16, point 6; SPEC R18; S§17.4, S§30).

A plain synchronous service over the control-plane database (tables of migration 6 in
:mod:`server.store.schema`); the gRPC servicer (:mod:`server.screening.servicer`) runs it
in a worker thread after writing the request ahead (:mod:`server.writeahead`).

* **Publishing** (:meth:`ScreeningService.publish`): the agency's list officer
  (:data:`LIST_OFFICER`) publishes a new version of one list from a CSV or XML file
  (:mod:`server.screening.parse`). The version is numbered per list (1, 2, ...), keeps the
  file's SHA-256, the signed envelope it came in and its write-ahead record's seq; its
  entries replace the list's entries in the in-memory index at once.
* **Screening** (:meth:`ScreeningService.screen`): a provider's compliance officer
  (:data:`COMPLIANCE_OFFICER`) screens a client by IIN/BIN and/or name + date of birth
  against the current version of every list (:mod:`server.screening.match`). Each result
  is stored with the list versions it used and its retention date.
* **Monitoring** (:meth:`ScreeningService.watch`): a provider registers a client; it is
  screened at once and again whenever a list changes (:meth:`ScreeningService.rescreen`,
  run by every publication), together with the subjects of every source registered with
  :meth:`ScreeningService.register_subject_source` (the FM-1 part feeds it the parties
  of stored messages). A match not flagged before goes to the provider's outbox
  (``screening_outbox``; the operations domain's outbox is the agency's own notices
  about its users, so the providers get one of their own) and is flagged to the agency
  as an alert (``ops_alerts``, rule ``lists.match``, read with ``list_alerts``).
* **Retention** (R18, S§10.14, S§29): every result carries ``retain_until`` (at least
  five years after the screening); nothing deletes results (housekeeping prunes only
  request ids, sessions and logins).

Who is a provider: the user's ``provider_bin`` (the FM-1 part adds that column to
``users``), else ``user:<user_id>`` until it lands.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from server.errors import NotPermitted
from server.ops import schema as ops_schema
from server.resources.catalogue import Role
from server.screening.errors import InvalidSubject, UnknownList
from server.screening.match import (
    MATCH,
    Hit,
    ListIndex,
    Subject,
    Thresholds,
    normalise_name,
    overall,
)
from server.screening.parse import (
    FORMATS,
    LIST_NAMES,
    ListEntry,
    parse_list_file,
)
from server.store import schema as cp
from server.store.errors import StoreUnavailable
from siogw_api.errors import SiogwError
from siogw_api.timeutil import ensure_utc, now_utc

log = logging.getLogger("siogw.screening")

#: The roles (issue 16): the agency's list officer publishes; a provider's compliance
#: officer screens and monitors its clients.
LIST_OFFICER = Role.LIST_OFFICER.value
COMPLIANCE_OFFICER = Role.COMPLIANCE_OFFICER.value

#: What each role may do here (one table, checked first thing by every entry point).
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "publish": frozenset({LIST_OFFICER}),
    "read_lists": frozenset({LIST_OFFICER, COMPLIANCE_OFFICER, Role.AGENCY_USER.value,
                             Role.CONTROLLER.value}),
    "screen": frozenset({COMPLIANCE_OFFICER}),
    "watch": frozenset({COMPLIANCE_OFFICER}),
    "outbox": frozenset({COMPLIANCE_OFFICER}),
}

#: The alert rule of a new match flagged to the agency.
ALERT_RULE = "lists.match"
MAX_CLIENT_REF = 128
MAX_SUBJECT_NAME = 300


class Recorder(Protocol):
    """The audit callable (``server.ops.base.audit_log_recorder``)."""

    def __call__(self, event_type: str, actor: str, outcome: str,
                 details: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class SourcedSubject:
    """A subject a registered source wants re-screened, and whose it is."""

    provider: str
    client_ref: str
    subject: Subject
    #: Called when this subject has a new match, in the transaction that writes the
    #: match's outbox row (both or neither): the FM-1 source flags its stored message
    #: (``list_match``). Raising rolls the re-screening's writes back.
    on_match: Callable[[Connection], object] | None = None
    #: The user the agency's alert of a new match names (e.g. the officer who submitted
    #: the FM-1 message); "" names the publication's actor.
    registered_by: str = ""


#: A source of subjects to re-screen (e.g. the parties of stored FM-1 messages).
SubjectSource = Callable[[], Iterable[SourcedSubject]]


@dataclass(frozen=True)
class ListVersion:
    list_name: str
    version: int
    digest: str
    entries: int
    published_at: _dt.datetime
    published_by: str
    source_reference: str
    format: str


@dataclass(frozen=True)
class ScreeningResult:
    result_id: str
    provider: str
    client_ref: str
    outcome: str
    versions: tuple[ListVersion, ...]
    hits: tuple[Hit, ...]
    screened_at: _dt.datetime
    retain_until: _dt.datetime


@dataclass(frozen=True)
class Publication:
    version: ListVersion
    rescreened: int
    new_matches: int


@dataclass(frozen=True)
class OutboxItem:
    id: int
    client_ref: str
    list_name: str
    version: int
    entry_ref: str
    outcome: str
    summary: str
    result_id: str
    created_at: _dt.datetime
    read_at: _dt.datetime | None


def authorize(role: str, action: str) -> None:
    """Return if ``role`` may ``action`` (:data:`PERMISSIONS`); else :class:`NotPermitted`."""
    if role not in PERMISSIONS[action]:
        raise NotPermitted(f"role {role!r} may not {action.replace('_', ' ')} "
                           "(the List and the Lists)")


def check_list_name(name: str) -> str:
    if name not in LIST_NAMES:
        raise UnknownList(f"unknown list {name!r}: one of {', '.join(LIST_NAMES)}")
    return name


def check_subject(subject: Subject) -> Subject:
    """A subject with an IIN/BIN or a name, each well-formed (:class:`InvalidSubject`)."""
    iin = subject.iin_bin.strip()
    name = subject.name.strip()
    dob = subject.birth_date.strip()
    if not iin and not name:
        raise InvalidSubject("a subject needs an IIN/BIN or a name")
    if iin and not (len(iin) == 12 and iin.isascii() and iin.isdigit()):
        raise InvalidSubject("iin_bin must be 12 digits")
    if len(name) > MAX_SUBJECT_NAME:
        raise InvalidSubject(f"name is longer than {MAX_SUBJECT_NAME} characters")
    if name and not normalise_name(name):
        raise InvalidSubject("name holds no letters")
    if dob:
        ok = len(dob) == 4 and dob.isascii() and dob.isdigit()
        if not ok:
            try:
                ok = len(dob) == 10 and bool(_dt.date.fromisoformat(dob))
            except ValueError:
                ok = False
        if not ok:
            raise InvalidSubject("birth_date must be YYYY-MM-DD or YYYY")
    return Subject(iin_bin=iin, name=name, birth_date=dob)


def check_client_ref(ref: str) -> str:
    ref = ref.strip()
    if not ref:
        raise InvalidSubject("client_ref is empty: name the client in your own records")
    if len(ref) > MAX_CLIENT_REF:
        raise InvalidSubject(f"client_ref is longer than {MAX_CLIENT_REF} characters")
    return ref


def retention_date(at: _dt.datetime, years: int) -> _dt.datetime:
    """``at`` plus ``years`` calendar years (29 February -> 28 February)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def _utc(value: _dt.datetime | None) -> _dt.datetime | None:
    return ensure_utc(value) if value is not None else None


def _version(row: Any) -> ListVersion:
    return ListVersion(list_name=row.list_name, version=int(row.version), digest=row.digest,
                       entries=int(row.entry_count),
                       published_at=ensure_utc(row.published_at),
                       published_by=row.published_by,
                       source_reference=row.source_reference, format=row.format)


def _hit_json(hit: Hit) -> dict[str, Any]:
    e = hit.entry
    return {"list_name": hit.list_name, "version": hit.version, "entry_ref": e.ref,
            "kind": e.kind, "outcome": hit.outcome, "basis": hit.basis, "score": hit.score,
            "matched_name": hit.matched_name, "names": list(e.names),
            "iin_bin": e.iin_bin, "birth_date": e.birth_date, "country": e.country,
            "reference": e.reference}


class ScreeningService:
    """See the module docstring. Thread-safe; one per gateway process that serves it."""

    def __init__(
        self,
        engine: Engine,
        *,
        thresholds: Thresholds | None = None,
        retention_years: int = 5,
        record: Recorder | None = None,
        clock: Callable[[], _dt.datetime] = now_utc,
    ) -> None:
        self.engine = engine
        self.thresholds = thresholds or Thresholds()
        self.retention_years = retention_years
        self.record = record
        self.clock = clock
        self._indexes: dict[str, ListIndex] | None = None
        self._lock = threading.RLock()
        self._sources: list[SubjectSource] = []
        self._alerts: sa.Table | None = None
        self._alerts_known = False

    # -- plumbing ------------------------------------------------------------------------
    def now(self) -> _dt.datetime:
        return ensure_utc(self.clock())

    def _tx(self) -> Any:
        return _transaction(self.engine)

    def register_subject_source(self, fn: SubjectSource) -> None:
        """Add a source of subjects re-screened whenever a list changes (the FM-1 part
        registers the parties of stored messages)."""
        with self._lock:
            self._sources.append(fn)

    def provider_of(self, conn: Connection, user_id: str) -> str:
        """The provider a user acts for: the ``provider_bin`` the operator enrolled the
        compliance officer with (``provider_officers``), else ``user:<user_id>``."""
        po = cp.provider_officers.c
        value = conn.execute(sa.select(po.provider_bin).where(po.user_id == user_id)
                             ).scalar_one_or_none()
        return str(value) if value else f"user:{user_id}"

    def _emit(self, event: str, actor: str, details: Mapping[str, Any]) -> None:
        if self.record is not None:
            self.record(event, actor, "success", details)

    # -- the index -----------------------------------------------------------------------
    def indexes(self) -> dict[str, ListIndex]:
        """The current version of every published list, indexed (loaded on first use)."""
        with self._lock:
            if self._indexes is None:
                self._indexes = self._load_indexes()
            return self._indexes

    def _load_indexes(self) -> dict[str, ListIndex]:
        v, e = cp.screening_list_versions.c, cp.screening_list_entries.c
        out: dict[str, ListIndex] = {}
        with self._tx() as conn:
            for name in LIST_NAMES:
                row = conn.execute(sa.select(cp.screening_list_versions)
                                   .where(v.list_name == name)
                                   .order_by(v.version.desc()).limit(1)).first()
                if row is None:
                    continue
                rows = conn.execute(sa.select(cp.screening_list_entries)
                                    .where(e.version_id == row.id).order_by(e.id))
                out[name] = ListIndex.build(name, int(row.version), (
                    ListEntry(ref=r.ref, kind=r.kind, iin_bin=r.iin_bin,
                              names=tuple(json.loads(r.names_json)),
                              birth_date=r.birth_date, country=r.country,
                              reference=r.reference) for r in rows))
        return out

    # -- lists ---------------------------------------------------------------------------
    def lists(self, role: str) -> list[ListVersion]:
        """The current version of each published list."""
        authorize(role, "read_lists")
        v = cp.screening_list_versions.c
        out: list[ListVersion] = []
        with self._tx() as conn:
            for name in LIST_NAMES:
                row = conn.execute(sa.select(cp.screening_list_versions)
                                   .where(v.list_name == name)
                                   .order_by(v.version.desc()).limit(1)).first()
                if row is not None:
                    out.append(_version(row))
        return out

    def check_publication(self, role: str, list_name: str, fmt: str,
                          content: bytes) -> tuple[ListEntry, ...]:
        """The entries of a file about to be published (nothing changes): role, list
        name, format and the file's content checked."""
        authorize(role, "publish")
        check_list_name(list_name)
        if fmt not in FORMATS:
            raise UnknownList(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        return parse_list_file(content, fmt, list_name=list_name)

    def publish(
        self,
        *,
        user_id: str,
        role: str,
        list_name: str,
        fmt: str,
        content: bytes,
        entries: Sequence[ListEntry] | None = None,
        source_reference: str = "",
        envelope: bytes = b"",
        cert_fingerprint: str = "",
        request_seq: int | None = None,
    ) -> Publication:
        """Store a new version of ``list_name`` (numbered, with its digest), make it the
        current one, then re-screen every monitored subject against it."""
        if entries is None:
            entries = self.check_publication(role, list_name, fmt, content)
        else:
            authorize(role, "publish")
            check_list_name(list_name)
        digest = hashlib.sha256(content).hexdigest()
        now = self.now()
        v = cp.screening_list_versions.c
        with self._lock:
            with self._tx() as conn:
                last = conn.execute(sa.select(sa.func.max(v.version))
                                    .where(v.list_name == list_name)).scalar()
                number = int(last or 0) + 1
                version_id = conn.execute(cp.screening_list_versions.insert().values(
                    list_name=list_name, version=number, digest=digest, format=fmt,
                    entry_count=len(entries), source_reference=source_reference[:500],
                    published_at=now, published_by=user_id,
                    cert_fingerprint=cert_fingerprint, envelope=envelope,
                    request_seq=request_seq,
                )).inserted_primary_key[0]
                rows = [{"version_id": version_id, "ref": e.ref, "kind": e.kind,
                         "iin_bin": e.iin_bin,
                         "names_json": json.dumps(list(e.names), ensure_ascii=False),
                         "birth_date": e.birth_date, "country": e.country,
                         "reference": e.reference} for e in entries]
                for start in range(0, len(rows), 5000):
                    conn.execute(cp.screening_list_entries.insert(), rows[start:start + 5000])
                self._emit("screening.list_published", user_id, {
                    "list_name": list_name, "version": number, "digest": digest,
                    "entries": len(entries), "request_seq": request_seq})
                row = conn.execute(sa.select(cp.screening_list_versions)
                                   .where(v.id == version_id)).one()
            version = _version(row)
            indexes = dict(self.indexes())
            indexes[list_name] = ListIndex.build(list_name, number, entries)
            self._indexes = indexes
            rescreened, new = self.rescreen(list_name, actor=user_id)
        return Publication(version=version, rescreened=rescreened, new_matches=new)

    # -- screening -----------------------------------------------------------------------
    def _screen(self, subject: Subject, names: Iterable[str] | None = None
                ) -> tuple[list[Hit], tuple[ListVersion, ...]]:
        indexes = self.indexes()
        hits: list[Hit] = []
        for name in names if names is not None else LIST_NAMES:
            index = indexes.get(name)
            if index is not None:
                hits.extend(index.screen(subject, self.thresholds))
        return hits, ()

    def _versions(self, conn: Connection, names: Iterable[str]) -> tuple[ListVersion, ...]:
        indexes = self.indexes()
        v = cp.screening_list_versions.c
        out = []
        for name in names:
            index = indexes.get(name)
            if index is None:
                continue
            row = conn.execute(sa.select(cp.screening_list_versions).where(
                v.list_name == name, v.version == index.version)).first()
            if row is not None:
                out.append(_version(row))
        return tuple(out)

    def _store_result(self, conn: Connection, *, provider: str, client_ref: str,
                      trigger: str, requested_by: str, subject: Subject, hits: Sequence[Hit],
                      versions: Sequence[ListVersion], now: _dt.datetime) -> ScreeningResult:
        result = ScreeningResult(
            result_id=secrets.token_hex(12), provider=provider, client_ref=client_ref,
            outcome=overall(hits), versions=tuple(versions), hits=tuple(hits),
            screened_at=now, retain_until=retention_date(now, self.retention_years))
        conn.execute(cp.screening_results.insert().values(**self._result_row(
            result, trigger, requested_by, subject)))
        return result

    @staticmethod
    def _result_row(result: ScreeningResult, trigger: str, requested_by: str,
                    subject: Subject) -> dict[str, Any]:
        return {
            "id": result.result_id, "provider": result.provider,
            "client_ref": result.client_ref, "trigger": trigger,
            "requested_by": requested_by, "iin_bin": subject.iin_bin,
            "name": subject.name[:MAX_SUBJECT_NAME], "birth_date": subject.birth_date,
            "outcome": result.outcome,
            "versions_json": json.dumps([[v.list_name, v.version, v.digest]
                                         for v in result.versions]),
            "matches_json": json.dumps([_hit_json(h) for h in result.hits],
                                       ensure_ascii=False),
            "screened_at": result.screened_at, "retain_until": result.retain_until,
        }

    def screen(self, *, user_id: str, role: str, subject: Subject,
               client_ref: str = "") -> ScreeningResult:
        """Screen ``subject`` against the current version of every list; the result is
        stored (retention date included) and returned. Independent of any risk level."""
        authorize(role, "screen")
        subject = check_subject(subject)
        client_ref = client_ref.strip()[:MAX_CLIENT_REF]
        hits, _ = self._screen(subject)
        now = self.now()
        with self._tx() as conn:
            provider = self.provider_of(conn, user_id)
            versions = self._versions(conn, LIST_NAMES)
            result = self._store_result(conn, provider=provider, client_ref=client_ref,
                                        trigger="screen", requested_by=user_id,
                                        subject=subject, hits=hits, versions=versions,
                                        now=now)
        return result

    def watch(self, *, user_id: str, role: str, client_ref: str,
              subject: Subject) -> ScreeningResult:
        """Register a client for monitoring (or update its details) and screen it now;
        its matches are flagged like a re-screening's."""
        authorize(role, "watch")
        subject = check_subject(subject)
        client_ref = check_client_ref(client_ref)
        hits, _ = self._screen(subject)
        now = self.now()
        w = cp.screening_watch.c
        with self._lock, self._tx() as conn:
            provider = self.provider_of(conn, user_id)
            values = {"iin_bin": subject.iin_bin, "name": subject.name,
                      "birth_date": subject.birth_date, "registered_by": user_id,
                      "registered_at": now}
            updated = conn.execute(cp.screening_watch.update().where(
                w.provider == provider, w.client_ref == client_ref).values(**values)).rowcount
            if not updated:
                conn.execute(cp.screening_watch.insert().values(
                    provider=provider, client_ref=client_ref, **values))
            versions = self._versions(conn, LIST_NAMES)
            result = self._store_result(conn, provider=provider, client_ref=client_ref,
                                        trigger="watch", requested_by=user_id,
                                        subject=subject, hits=hits, versions=versions,
                                        now=now)
            self._flag(conn, result, registered_by=user_id, now=now)
        return result

    def watched(self, conn: Connection) -> Iterable[SourcedSubject]:
        for r in conn.execute(sa.select(cp.screening_watch).order_by(cp.screening_watch.c.id)):
            yield SourcedSubject(r.provider, r.client_ref,
                                 Subject(r.iin_bin, r.name, r.birth_date))

    def rescreen(self, list_name: str, *, actor: str = "gateway") -> tuple[int, int]:
        """Screen every monitored client and every registered source's subject against
        the current version of ``list_name``; store each result, flag new matches.
        Returns (subjects screened, new matches flagged).

        The subjects are read in one short transaction, screened outside any (the
        database's write lock is not held while rapidfuzz runs), and the results, the
        outbox rows and the alerts written in a second one, in bulk.
        """
        check_list_name(list_name)
        index = self.indexes().get(list_name)
        if index is None:
            return 0, 0
        o, w = cp.screening_outbox.c, cp.screening_watch.c
        with self._lock:
            with self._tx() as conn:
                versions = self._versions(conn, [list_name])
                subjects: list[SourcedSubject] = list(self.watched(conn))
                registered_by = {(r.provider, r.client_ref): r.registered_by
                                 for r in conn.execute(sa.select(
                                     w.provider, w.client_ref, w.registered_by))}
                flagged_before = {(r.provider, r.client_ref, r.entry_ref)
                                  for r in conn.execute(sa.select(
                                      o.provider, o.client_ref, o.entry_ref)
                                      .where(o.list_name == list_name))}
            for source in list(self._sources):
                try:
                    subjects.extend(source())
                except SiogwError as exc:
                    log.warning("a re-screening source failed: %s", exc.diagnostics())
            now = self.now()
            retain = retention_date(now, self.retention_years)
            results, outbox, alerts, flagged = [], [], [], []
            matched_hooks: list[Callable[[Connection], object]] = []
            for item in subjects:
                hits = index.screen(item.subject, self.thresholds)
                result = ScreeningResult(
                    result_id=secrets.token_hex(12), provider=item.provider,
                    client_ref=item.client_ref, outcome=overall(hits), versions=versions,
                    hits=tuple(hits), screened_at=now, retain_until=retain)
                results.append(self._result_row(result, "rescreen", actor, item.subject))
                who = item.registered_by or registered_by.get(
                    (item.provider, item.client_ref), actor)
                for hit in hits:
                    key = (item.provider, item.client_ref, hit.entry.ref)
                    if key in flagged_before:
                        continue
                    flagged_before.add(key)
                    row, alert = self._flag_rows(result, hit, who, now)
                    outbox.append(row)
                    alerts.append(alert)
                    flagged.append([item.client_ref, hit.entry.ref, hit.outcome])
                    if item.on_match is not None:
                        matched_hooks.append(item.on_match)
            with self._tx() as conn:
                for table, rows in ((cp.screening_results, results),
                                    (cp.screening_outbox, outbox)):
                    for start in range(0, len(rows), 5000):
                        conn.execute(table.insert(), rows[start:start + 5000])
                alert_table = self._alerts_table(conn)
                if alert_table is not None and alerts:
                    for start in range(0, len(alerts), 5000):
                        conn.execute(alert_table.insert(), alerts[start:start + 5000])
                # a new match and its source's flag (an FM-1 message's list_match) are
                # written together: an outbox row is never "not new" for a later version
                # while its message is left unflagged
                for hook in matched_hooks:
                    hook(conn)
                self._emit("screening.rescreened", actor, {
                    "list_name": list_name, "version": index.version,
                    "screened": len(results), "new_matches": len(flagged),
                    # the first ones named (the outbox and the alerts hold them all)
                    "flagged": flagged[:200]})
        return len(results), len(flagged)

    def _flag_rows(self, result: ScreeningResult, hit: Hit, registered_by: str,
                   now: _dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """The provider's outbox row and the agency's alert row of one new match."""
        word = "matches" if hit.outcome == MATCH else "possibly matches"
        summary = (f"client {result.client_ref} {word} entry {hit.entry.ref} of the "
                   f"{hit.list_name} list, version {hit.version} ({hit.basis}, score "
                   f"{hit.score:g}: {hit.matched_name})")[:1000]
        outbox = {"provider": result.provider, "client_ref": result.client_ref,
                  "list_name": hit.list_name, "version": hit.version,
                  "entry_ref": hit.entry.ref, "outcome": hit.outcome, "summary": summary,
                  "result_id": result.result_id, "created_at": now}
        alert = {"raised_at": now, "rule": ALERT_RULE, "user_id": registered_by[:64],
                 "blocking": False, "summary": f"provider {result.provider}: {summary}"[:1000],
                 "details_json": json.dumps({
                     "provider": result.provider, "client_ref": result.client_ref,
                     "result_id": result.result_id, "match": _hit_json(hit)},
                     ensure_ascii=False)}
        return outbox, alert

    def _alerts_table(self, conn: Connection) -> sa.Table | None:
        if not self._alerts_known:
            if sa.inspect(conn).has_table("ops_alerts"):
                self._alerts = ops_schema.alerts
            self._alerts_known = True
        return self._alerts

    def _flag(self, conn: Connection, result: ScreeningResult, *, registered_by: str,
              now: _dt.datetime) -> int:
        """Put each match of ``result`` not flagged before for this client into the
        provider's outbox and raise an alert for the agency; the number flagged."""
        o = cp.screening_outbox.c
        count = 0
        for hit in result.hits:
            exists = conn.execute(sa.select(o.id).where(
                o.provider == result.provider, o.client_ref == result.client_ref,
                o.list_name == hit.list_name, o.entry_ref == hit.entry.ref)).first()
            if exists is not None:
                continue
            row, alert = self._flag_rows(result, hit, registered_by, now)
            conn.execute(cp.screening_outbox.insert().values(**row))
            alerts = self._alerts_table(conn)
            if alerts is not None:
                conn.execute(alerts.insert().values(**alert))
            self._emit("screening.match_flagged", registered_by, {
                "provider": result.provider, "client_ref": result.client_ref,
                "list_name": hit.list_name, "version": hit.version,
                "entry_ref": hit.entry.ref, "outcome": hit.outcome,
                "result_id": result.result_id})
            count += 1
        return count

    # -- the provider's outbox -----------------------------------------------------------
    def outbox(self, *, user_id: str, role: str, include_read: bool = False,
               mark_read: bool = True) -> list[OutboxItem]:
        """The provider's flagged matches (unread only unless ``include_read``); those
        returned are marked read unless ``mark_read`` is false."""
        authorize(role, "outbox")
        o = cp.screening_outbox.c
        now = self.now()
        with self._tx() as conn:
            provider = self.provider_of(conn, user_id)
            stmt = sa.select(cp.screening_outbox).where(o.provider == provider).order_by(o.id)
            if not include_read:
                stmt = stmt.where(o.read_at.is_(None))
            rows = list(conn.execute(stmt.limit(1000)))
            unread = [r.id for r in rows if r.read_at is None]
            if mark_read and unread:
                conn.execute(cp.screening_outbox.update().where(o.id.in_(unread))
                             .values(read_at=now))
        return [OutboxItem(id=int(r.id), client_ref=r.client_ref, list_name=r.list_name,
                           version=int(r.version), entry_ref=r.entry_ref,
                           outcome=r.outcome, summary=r.summary, result_id=r.result_id,
                           created_at=ensure_utc(r.created_at), read_at=_utc(r.read_at))
                for r in rows]

    def result(self, result_id: str) -> Mapping[str, Any] | None:
        """A stored result's row (tests, the FM-1 part)."""
        with self._tx() as conn:
            row = conn.execute(sa.select(cp.screening_results).where(
                cp.screening_results.c.id == result_id)).first()
        return dict(row._mapping) if row is not None else None


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` with database failures as the store's neutral errors."""
    try:
        with engine.begin() as conn:
            yield conn
    except SiogwError:
        raise
    except SQLAlchemyError as exc:
        raise StoreUnavailable("the screening tables cannot be read or written",
                               detail=str(exc)[:500]) from exc
