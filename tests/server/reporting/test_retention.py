"""Retention of FM-1 messages (R18, S§10.14, S§29, S§33): each stored message carries its
retention date, and housekeeping never deletes one -- not even long after that date."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import sqlalchemy as sa

from server.reporting.fm1 import parse_fm1
from server.reporting.samples import CLIENT_IIN, PROVIDER_BIN, sample
from server.reporting.store import ReportingStore, iter_parties, retention_until
from server.store import Store
from server.store.schema import fm1_messages, fm1_parties, provider_officers
from siogw_api.timeutil import now_utc, to_astana

NOW = now_utc()


def parsed(kind: str, **changes: object) -> object:
    msg = sample(kind, now=NOW)
    msg.update(changes)
    return parse_fm1(json.dumps(msg).encode(), now=NOW)


def test_retention_is_five_years_after_the_relationship_ends() -> None:
    msg = parsed("termination", relationship_ended_on="2024-02-29")
    until = retention_until(msg, NOW)  # type: ignore[arg-type]
    assert until is not None
    # the later of the end (day after 29 Feb 2024) and the receipt, plus five years
    received = to_astana(NOW).date()
    expected = max(_dt.date(2024, 3, 1), received)
    assert to_astana(until).date() == expected.replace(year=expected.year + 5)
    assert to_astana(until).time() == _dt.time(0, 0)


def test_a_refusal_to_establish_relations_and_a_one_off_count_from_the_decision() -> None:
    for msg in (parsed("refusal_relations"), parsed("threshold", one_off=True)):
        until = retention_until(msg, NOW)  # type: ignore[arg-type]
        assert until is not None
        assert to_astana(until).date().year == to_astana(NOW).date().year + 5


def test_an_ongoing_relationship_keeps_the_message_without_an_end_date() -> None:
    assert retention_until(parsed("suspicious_before"), NOW) is None  # type: ignore[arg-type]



def test_housekeeping_never_deletes_fm1_messages(store: Store) -> None:
    rs = ReportingStore(store.engine)
    store.add_user(user_id="kora", full_name="Kora", role="compliance_officer")
    rs.set_provider("kora", PROVIDER_BIN)
    old = NOW - _dt.timedelta(days=365 * 12)
    msg = parsed("termination", relationship_ended_on="2026-01-05")
    row = rs.insert(msg, submitted_by="kora", cert_fingerprint="f" * 64,  # type: ignore[arg-type]
                    received_at=old, deadline_at=None, lateness_seconds=0,
                    envelope=b"env", envelope_sha256="0" * 64, request_seq=1)
    assert row.retention_until is not None
    # housekeeping run twenty years on, far past the retention date
    later = NOW + _dt.timedelta(days=365 * 20)
    assert row.retention_until < later
    store.prune(clock_skew_seconds=300, now=later)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(fm1_messages)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(fm1_parties)).scalar() == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(
            provider_officers)).scalar() == 1
    # every party of every stored message, for re-screening after a list change
    parties = list(iter_parties(store.engine))
    assert [(bin_, p.role) for bin_, p in parties] == [
        (PROVIDER_BIN, "client"), (PROVIDER_BIN, "beneficial_owner"),
        (PROVIDER_BIN, "representative")]
    assert parties[0][1].idn == CLIENT_IIN and parties[0][1].message_id == msg.message_id
    assert parties[0][1].birth_date == _dt.date(1985, 5, 17)
    assert rs.mark_list_match(PROVIDER_BIN, msg.message_id)
    assert rs.find(PROVIDER_BIN, msg.message_id).list_match  # type: ignore[union-attr]


def test_no_code_deletes_from_the_fm1_tables() -> None:
    """A guard on the source: nothing in server/ issues a delete on these tables."""
    root = Path(__file__).resolve().parents[3] / "server"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        for table in ("fm1_messages", "fm1_parties"):
            if f"{table}.delete(" in text or f"delete({table}" in text or \
                    f"DELETE FROM {table}" in text:
                offenders.append(f"{path.name}: {table}")
    assert offenders == []
