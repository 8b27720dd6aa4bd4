"""ScreeningService on the database (SQLite and PostgreSQL): what the gRPC tests do not
reach -- the index rebuilt after a restart, retention dates, sources, the config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import load_config
from server.screening import ScreeningService, SourcedSubject
from server.screening.errors import InvalidSubject
from server.screening.match import MATCH, Subject
from server.screening.parse import ListEntry
from server.screening.service import check_subject, retention_date
from server.store import Store
from siogw_api.errors import ConfigError, SiogwError

ENTRIES = [ListEntry("X-1", "person", "", ("Қасымов Нұрлан",), "1970-01-01", "KZ", "")]



def publish(service: ScreeningService, entries: list[ListEntry]) -> Any:
    return service.publish(user_id="lena", role="list_officer", list_name="terrorist",
                           fmt="csv", content=repr(entries).encode(), entries=entries)


def test_a_restarted_service_screens_against_the_stored_version(store: Store) -> None:
    publish(ScreeningService(store.engine), ENTRIES)
    fresh = ScreeningService(store.engine)  # a gateway restart: the index comes from the DB
    result = fresh.screen(user_id="kira", role="compliance_officer",
                          subject=Subject(name="Kasymov Nurlan", birth_date="1970-01-01"))
    assert result.outcome == MATCH and result.versions[0].version == 1
    assert [v.list_name for v in fresh.lists("agency_user")] == ["terrorist"]


def test_a_failing_source_does_not_stop_the_rescreening(store: Store) -> None:
    service = ScreeningService(store.engine)

    def broken() -> list[SourcedSubject]:
        raise InvalidSubject("the source is down")

    service.register_subject_source(broken)
    service.register_subject_source(lambda: [SourcedSubject(
        "bin:1", "p-1", Subject(name="Қасымов Нұрлан"))])
    done = publish(service, ENTRIES)
    assert (done.rescreened, done.new_matches) == (1, 1)
    assert publish(service, ENTRIES).new_matches == 0  # not flagged twice


def test_retention_is_whole_years_even_from_29_february() -> None:
    leap = dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC)
    assert retention_date(leap, 5) == dt.datetime(2033, 2, 28, 12, tzinfo=dt.UTC)
    plain = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    assert retention_date(plain, 5) == dt.datetime(2031, 12, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("screening", [
    {"match_threshold": 80, "possible_threshold": 90},
    {"possible_threshold": 0},
    {"retention_years": 4},
    {"match_threshold": "high"},
])
def test_the_screening_settings_are_checked(tmp_path: Path, screening: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={}, overrides={"screening": screening})


def test_the_screening_settings_have_sane_defaults(tmp_path: Path) -> None:
    s = load_config(tmp_path, env={}).screening
    assert (s.match_threshold, s.possible_threshold, s.retention_years) == (92.0, 82.0, 5)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.text(max_size=60), st.text(max_size=12))
def test_a_subject_is_accepted_or_refused_only_as_invalid_subject(
    iin: str, name: str, birth: str
) -> None:
    try:
        subject = check_subject(Subject(iin, name, birth))
    except InvalidSubject as exc:
        assert exc.message
    else:
        assert subject.iin_bin or subject.name
        assert not subject.iin_bin or (len(subject.iin_bin) == 12 and subject.iin_bin.isdigit())


def test_screening_never_fails_on_an_accepted_subject() -> None:
    from server.screening.match import ListIndex, Thresholds

    index = ListIndex.build("terrorist", 1, ENTRIES)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=60), st.sampled_from(["", "1970", "1970-01-01", "1999-12-31"]))
    def run(name: str, birth: str) -> None:
        try:
            subject = check_subject(Subject("", name, birth))
        except SiogwError:
            return
        index.screen(subject, Thresholds())

    run()


def test_a_new_match_and_its_sources_flag_are_written_together(store: Store) -> None:
    """The source's flag (an FM-1 message's ``list_match``) is written in the transaction
    of the match's outbox row: when flagging fails, neither is kept, so the next version
    finds the match new again and flags it then (issue 16)."""
    import sqlalchemy as sa

    from server.store import schema as cp
    from server.store.errors import StoreUnavailable

    service = ScreeningService(store.engine)
    flags: list[str] = []

    def flag(conn: Any) -> None:
        if not flags:
            flags.append("failed")
            raise StoreUnavailable("the message cannot be flagged")
        assert conn.in_transaction()
        flags.append("flagged")

    service.register_subject_source(lambda: [SourcedSubject(
        "bin:1", "fm1:M-1:client", Subject(name="Қасымов Нұрлан"), on_match=flag)])

    def outbox() -> list[Any]:
        with store.engine.connect() as conn:
            return list(conn.execute(sa.select(cp.screening_outbox.c.client_ref)).scalars())

    with pytest.raises(StoreUnavailable):
        publish(service, ENTRIES)
    assert flags == ["failed"] and outbox() == []
    done = publish(service, ENTRIES)
    assert done.new_matches == 1 and flags == ["failed", "flagged"]
    assert outbox() == ["fm1:M-1:client"]
    assert publish(service, ENTRIES).new_matches == 0 and flags == ["failed", "flagged"]
