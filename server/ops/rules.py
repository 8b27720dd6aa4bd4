"""Violation rules over the audit stream (R13, R15).

The engine is fed audit records as dicts -- the gateway passes each record it logs,
or a replay of the audit index -- with the keys ``event_type`` (or ``event``),
``actor``, ``outcome``, ``details`` and optionally ``time`` (aware datetime or ISO
text; default: the clock) and ``seq``. Query records carry in ``details``:
``resource``, ``basis``, ``task`` (or ``task_ref``), ``request_id`` and the subject
as ``subject`` / ``iin`` / ``bin`` (or inside ``params``).

Rules keep their sliding windows in memory (rebuild them after a restart by replaying
the last window's worth of records). A hit is stored as an alert (``ops_alerts``) for
the controllers and recorded in the audit log; a rule marked ``blocking`` blocks the
user at once through :meth:`LifecycleService.block_by_rule`, which also notifies the
agency. Once a windowed rule fires for a key, its window restarts, so one burst makes
one alert.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from server.metrics import RULE_ALERTS
from server.ops import schema as s
from server.ops.base import OpsContext, utc, utc_required
from server.ops.errors import NotFound
from server.ops.lifecycle import LifecycleService
from server.ops.roles import Action, Actor, authorize
from siogw_api.errors import InputError, SiogwError
from siogw_api.timeutil import astana_iso, parse_iso

#: ErrorInfo reasons of refusals that mean "the signature did not hold".
SIGNATURE_FAILURE_REASONS = frozenset({
    "BAD_SIGNATURE", "UNKNOWN_SIGNER", "UNTRUSTED_CHAIN", "MALFORMED_ENVELOPE", "REVOKED",
    "EXPIRED", "KEY_USAGE", "CERTIFICATE_NOT_REGISTERED", "SIGNER_MISMATCH",
})


@dataclass(frozen=True)
class Event:
    """One audit record, normalised."""

    event_type: str
    actor: str
    outcome: str
    time: _dt.datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None
    #: The record's ``cert``: the fingerprint of the actor's certificate, or None.
    cert: str | None = None

    @property
    def is_query(self) -> bool:
        """A query, or a refused query attempt (a refusal that names a resource)."""
        return self.event_type == "query" or (
            self.event_type == "refusal" and self.details.get("resource") not in (None, "")
        )

    @property
    def task(self) -> str:
        value = self.details.get("task", self.details.get("task_ref", ""))
        return value.strip() if isinstance(value, str) else ""

    @property
    def subject(self) -> str | None:
        d = self.details
        raw = d.get("params")
        params: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        for value in (d.get("subject"), d.get("iin"), d.get("bin"),
                      params.get("iin"), params.get("bin")):
            if isinstance(value, str) and value:
                return value
        return None


def to_event(record: Mapping[str, Any], default_time: _dt.datetime) -> Event:
    raw_time = record.get("time")
    if isinstance(raw_time, _dt.datetime):
        when = utc_required(raw_time)
    elif isinstance(raw_time, str) and raw_time:
        when = parse_iso(raw_time)
    else:
        when = default_time
    details = record.get("details") or {}
    seq = record.get("seq")
    return Event(
        event_type=str(record.get("event_type", record.get("event", ""))),
        actor=str(record.get("actor", "")),
        outcome=str(record.get("outcome", "")),
        time=when,
        details=details if isinstance(details, Mapping) else {},
        seq=seq if isinstance(seq, int) else None,
        cert=_cert_of(record),
    )


def _cert_of(record: Mapping[str, Any]) -> str | None:
    value = record.get("cert", record.get("cert_fingerprint"))
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Hit:
    rule: str
    user_id: str
    summary: str
    details: Mapping[str, Any]


class Rule(Protocol):
    """A violation rule: looks at each event, may report a hit."""

    name: str
    blocking: bool

    def observe(self, event: Event) -> Hit | None: ...


class _Windowed:
    """Counts distinct items per key within a sliding time window."""

    def __init__(self, threshold: int, window: _dt.timedelta) -> None:
        if threshold < 1:
            raise InputError("a rule threshold must be at least 1")
        self.threshold, self.window = threshold, window
        self._seen: dict[Any, collections.deque[tuple[_dt.datetime, Any]]] = {}

    def reset(self, key: Any) -> None:
        self._seen.pop(key, None)

    def add(self, key: Any, item: Any, when: _dt.datetime) -> int | None:
        """Add; return the count when it reaches the threshold (the window restarts)."""
        q = self._seen.setdefault(key, collections.deque())
        while q and when - q[0][0] > self.window:
            q.popleft()
        if any(existing == item for _, existing in q):
            return None
        q.append((when, item))
        if len(q) >= self.threshold:
            n = len(q)
            del self._seen[key]
            return n
        return None


class RepeatedSignatureFailures:
    """``threshold`` refusals for signature reasons by one user within ``window``.

    A refusal counts against a user only when the certificate that failed is that
    user's: the record names an authenticated actor and its ``cert``, and that
    certificate is among the envelope's signers (``details["signer_certs"]``). Someone
    else's signature on a user's session, or an anonymous caller naming the user
    (``claimed_user``), is not the user's failure.
    """

    name = "repeated_signature_failures"

    def __init__(self, threshold: int = 3, window: _dt.timedelta = _dt.timedelta(minutes=10),
                 *, blocking: bool = False,
                 reasons: frozenset[str] = SIGNATURE_FAILURE_REASONS) -> None:
        self.blocking = blocking
        self.reasons = reasons
        self._w = _Windowed(threshold, window)
        self._n = 0

    @property
    def window(self) -> _dt.timedelta:
        return self._w.window

    def reset_for(self, event: Event) -> None:
        """Restart the window ``event`` counts in (as a hit on it would)."""
        self._w.reset(event.actor)

    def observe(self, event: Event) -> Hit | None:
        if event.event_type != "refusal" or event.actor in ("", "anonymous"):
            return None
        if str(event.details.get("reason", "")) not in self.reasons:
            return None
        signers = event.details.get("signer_certs")
        if event.cert is None or not isinstance(signers, list) or event.cert not in signers:
            return None
        self._n += 1
        n = self._w.add(event.actor, event.seq if event.seq is not None else self._n, event.time)
        if n is None:
            return None
        return Hit(self.name, event.actor,
                   f"{n} signature failures within {self._w.window}",
                   {"count": n, "last_reason": str(event.details.get("reason"))})


class QueryWithoutTask:
    """A query (or query attempt) naming no task or case reference (§3)."""

    name = "query_without_task"

    def __init__(self, *, blocking: bool = False) -> None:
        self.blocking = blocking

    def observe(self, event: Event) -> Hit | None:
        if not event.is_query or event.task:
            return None
        return Hit(self.name, event.actor, "query without a task or case reference",
                   {"request_id": event.details.get("request_id"),
                    "resource": event.details.get("resource")})


class QueryOutsideBasis:
    """A query naming a basis outside the user's basis (§2).

    ``bases_of(user_id)`` returns the bases the user may name, or ``None`` when the
    user is unknown (then the rule stays silent).
    """

    name = "query_outside_basis"

    def __init__(self, bases_of: Callable[[str], frozenset[str] | None], *,
                 blocking: bool = False) -> None:
        self.blocking = blocking
        self.bases_of = bases_of
        self._memo: dict[str, frozenset[str] | None] | None = None

    def begin_batch(self) -> None:
        """Until :meth:`end_batch`, ask ``bases_of`` once per user (one DB read each)."""
        self._memo = {}

    def end_batch(self) -> None:
        self._memo = None

    def _allowed(self, user_id: str) -> frozenset[str] | None:
        memo = self._memo
        if memo is None:
            return self.bases_of(user_id)
        if user_id not in memo:
            memo[user_id] = self.bases_of(user_id)
        return memo[user_id]

    def observe(self, event: Event) -> Hit | None:
        if not event.is_query:
            return None
        basis = event.details.get("basis")
        if not isinstance(basis, str):
            return None
        allowed = self._allowed(event.actor)
        if allowed is None or basis in allowed:
            return None
        return Hit(self.name, event.actor, f"query on basis {basis!r} outside the user's basis",
                   {"basis": basis, "allowed": sorted(allowed),
                    "request_id": event.details.get("request_id")})


class SubjectBurst:
    """``threshold`` distinct queries by one user about one person within ``window``."""

    name = "subject_burst"

    def __init__(self, threshold: int = 10, window: _dt.timedelta = _dt.timedelta(hours=1),
                 *, blocking: bool = False) -> None:
        self.blocking = blocking
        self._w = _Windowed(threshold, window)
        self._n = 0

    @property
    def window(self) -> _dt.timedelta:
        return self._w.window

    def reset_for(self, event: Event) -> None:
        """Restart the window ``event`` counts in (as a hit on it would)."""
        if event.subject is not None:
            self._w.reset((event.actor, event.subject))

    def observe(self, event: Event) -> Hit | None:
        if event.event_type != "query":
            return None
        subject = event.subject
        if subject is None:
            return None
        self._n += 1
        item = event.details.get("request_id") or event.seq or self._n
        n = self._w.add((event.actor, subject), item, event.time)
        if n is None:
            return None
        # The subject's identifier stays out of the summary (personal data, R12).
        return Hit(self.name, event.actor,
                   f"{n} queries about one person within {self._w.window}",
                   {"count": n, "subject_suffix": subject[-4:]})


@dataclass(frozen=True)
class Alert:
    id: int
    raised_at: _dt.datetime
    rule: str
    user_id: str
    blocking: bool
    summary: str
    details: Mapping[str, Any]
    record_seq: int | None
    acknowledged_at: _dt.datetime | None
    acknowledged_by: str | None
    #: True when this alert's rule blocked the user (not stored: set by observe()).
    blocked_user: bool = False


def _alert(row: sa.Row[tuple[object, ...]], blocked: bool = False) -> Alert:
    m = row._mapping
    return Alert(
        id=int(m["id"]), raised_at=utc_required(m["raised_at"]), rule=m["rule"],
        user_id=m["user_id"], blocking=bool(m["blocking"]), summary=m["summary"],
        details=json.loads(m["details_json"]), record_seq=m["record_seq"],
        acknowledged_at=utc(m["acknowledged_at"]), acknowledged_by=m["acknowledged_by"],
        blocked_user=blocked,
    )


def default_rules(lifecycle: LifecycleService) -> list[Rule]:
    """The standard set: signature failures, no task, outside basis (blocking), bursts."""

    def bases_of(user_id: str) -> frozenset[str] | None:
        user = lifecycle.get_user(user_id)
        if user is None or not user.iin:
            return None  # no operations record (enrolled otherwise): no basis to check
        return frozenset({user.basis}) if user.basis else frozenset()

    return [
        RepeatedSignatureFailures(),
        QueryWithoutTask(),
        QueryOutsideBasis(bases_of, blocking=True),
        SubjectBurst(),
    ]


class RuleEngine:
    """Runs the rules over events; stores alerts; blocking rules block at once."""

    def __init__(self, ctx: OpsContext, lifecycle: LifecycleService,
                 rules: Iterable[Rule] | None = None) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.rules: list[Rule] = list(rules) if rules is not None else default_rules(lifecycle)
        self._lock = threading.Lock()  # the rules' windows are shared by all callers

    def observe(self, record: Mapping[str, Any]) -> Sequence[Alert]:
        """Feed one audit record; returns the alerts it raised (usually none)."""
        try:
            event = to_event(record, self.ctx.now())
        except SiogwError:
            return []
        if event.event_type.startswith("ops.") or not event.actor:
            return []  # our own records never trigger rules
        with self._lock:
            hits = [(rule, hit) for rule in self.rules if (hit := rule.observe(event))]
        return [self._raise(rule, hit, event) for rule, hit in hits]

    def observe_many(self, records: Iterable[Mapping[str, Any]]) -> Sequence[Alert]:
        out: list[Alert] = []
        with self.batch():
            for record in records:
                out.extend(self.observe(record))
        return out

    def longest_window(self) -> _dt.timedelta:
        """The longest time window any rule counts over (zero when none counts)."""
        windows = [w for r in self.rules if isinstance(w := getattr(r, "window", None),
                                                      _dt.timedelta)]
        return max(windows, default=_dt.timedelta(0))

    def replay(self, records: Iterable[Mapping[str, Any]], *, since_seq: int) -> Sequence[Alert]:
        """Rebuild the rules' windows from records already in the log (after a restart).

        ``records`` are the log's records from ``since_seq`` on, in order, with their
        ``time``. The alerts already raised from ``since_seq`` on are replayed as they
        happened: at a record that raised an alert, that rule's window restarts, and the
        alert is not raised again. A hit at any other record is one the previous run never
        raised (it stopped between writing the record and running the rules): it is
        raised now. Records before ``since_seq`` are not seen, so the rebuilt counts are
        never higher than the originals: replay cannot invent a burst.
        """
        a = s.alerts.c
        with self.ctx.tx() as conn:
            raised = {(str(rule), int(seq)) for rule, seq in conn.execute(
                sa.select(a.rule, a.record_seq).where(a.record_seq >= since_seq))}
        out: list[Alert] = []
        with self.batch():
            for record in records:
                try:
                    event = to_event(record, self.ctx.now())
                except SiogwError:
                    continue
                if event.event_type.startswith("ops.") or not event.actor:
                    continue
                with self._lock:
                    hits = {}
                    for rule in self.rules:
                        hit = rule.observe(event)
                        if hit is not None:
                            hits[rule.name] = (rule, hit)
                        elif (rule.name, event.seq) in raised and hasattr(rule, "reset_for"):
                            rule.reset_for(event)
                for name, (rule, hit) in hits.items():
                    if (name, event.seq) not in raised:
                        out.append(self._raise(rule, hit, event))
        return out

    @contextmanager
    def batch(self) -> Iterator[None]:
        """A run of :meth:`observe` calls that share lookups (a user's basis is read once).

        A change to a user's basis made while a batch runs is seen from the next batch.
        """
        rules: list[Any] = [r for r in self.rules if hasattr(r, "begin_batch")]
        for rule in rules:
            rule.begin_batch()
        try:
            yield
        finally:
            for rule in rules:
                rule.end_batch()

    def _raise(self, rule: Rule, hit: Hit, event: Event) -> Alert:
        now = self.ctx.now()
        details = {**hit.details, "event_time": astana_iso(event.time)}
        with self.ctx.tx() as conn:
            result = conn.execute(s.alerts.insert().values(
                raised_at=now, rule=hit.rule, user_id=hit.user_id, blocking=rule.blocking,
                summary=hit.summary[:1000], details_json=json.dumps(details, sort_keys=True,
                                                                    default=str),
                record_seq=event.seq,
            ))
            alert_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            self.ctx.record("ops.alert.raised", f"system:rules/{hit.rule}", "success",
                            {"alert_id": alert_id, "rule": hit.rule, "user_id": hit.user_id,
                             "blocking": rule.blocking, "summary": hit.summary})
        RULE_ALERTS.labels(hit.rule).inc()
        blocked = False
        if rule.blocking:
            blocked = self.lifecycle.block_by_rule(
                hit.user_id, hit.rule, f"violation ({hit.rule}): {hit.summary}",
                alert_id=alert_id,
            )
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(s.alerts).where(s.alerts.c.id == alert_id)).one()
        return _alert(row, blocked)

    def alerts(self, actor: Actor, *, open_only: bool = False,
               user_id: str | None = None) -> Sequence[Alert]:
        """Alerts for the controllers, oldest first."""
        authorize(actor.role, Action.ALERT_READ)
        stmt = sa.select(s.alerts).order_by(s.alerts.c.id)
        if open_only:
            stmt = stmt.where(s.alerts.c.acknowledged_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(s.alerts.c.user_id == user_id)
        with self.ctx.tx() as conn:
            return [_alert(r) for r in conn.execute(stmt).all()]

    def acknowledge(self, actor: Actor, alert_id: int) -> Alert:
        authorize(actor.role, Action.ALERT_ACK)
        now = self.ctx.now()
        with self.ctx.tx() as conn:
            row = conn.execute(sa.select(s.alerts).where(s.alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"no alert {alert_id}")
            if row.acknowledged_at is None:
                conn.execute(s.alerts.update().where(s.alerts.c.id == alert_id).values(
                    acknowledged_at=now, acknowledged_by=actor.user_id))
                self.ctx.record("ops.alert.acknowledged", actor.user_id, "success",
                                {"alert_id": alert_id})
            row = conn.execute(sa.select(s.alerts).where(s.alerts.c.id == alert_id)).one()
        return _alert(row)
