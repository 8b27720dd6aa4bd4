"""FM-1 deadlines in Astana time (S§35) on Kazakhstan's working days: across a weekend,
a public holiday, Kurban Ait, a transferred day off and a transferred working day, the
24-hour rule, and the [reporting] corrections of a decree."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest

from server.config import load_config
from server.reporting.calendar import WorkCalendar, deadline_for, end_of_day, lateness
from siogw_api.errors import ConfigError
from siogw_api.timeutil import astana_zone, ensure_utc

KZ = WorkCalendar()


def at(text: str) -> _dt.datetime:
    """An Astana wall-clock time, as UTC."""
    naive = _dt.datetime.fromisoformat(text)
    return ensure_utc(naive.replace(tzinfo=astana_zone()))


def next_day_rule(decided: str, cal: WorkCalendar = KZ) -> _dt.datetime | None:
    return deadline_for(cal, "suspicious_before", decided_at=at(decided))


@pytest.mark.parametrize(("decided", "due_end_of"), [
    # an ordinary Tuesday -> Wednesday
    ("2025-11-11 16:00", "2025-11-12"),
    # across a weekend: Friday -> Monday
    ("2025-11-14 18:30", "2025-11-17"),
    # a decision taken on a Saturday -> Monday
    ("2025-11-15 11:00", "2025-11-17"),
    # a public holiday: Independence Day, Tuesday 16 December 2025 -> Wednesday
    ("2025-12-15 09:00", "2025-12-17"),
    # Kurban Ait (Eid al-Adha), Friday 6 June 2025, a moving holiday -> Monday
    ("2025-06-05 12:00", "2025-06-09"),
    # a transferred day off: 8 May 2024 (from Saturday 4 May) between two holidays
    # (Defender of the Fatherland Day 7 May, Victory Day 9 May) -> Friday 10 May
    ("2024-05-06 10:00", "2024-05-10"),
    # a transferred working day: Saturday 4 May 2024 is a working day -> due that Saturday
    ("2024-05-03 17:00", "2024-05-04"),
    # New Year 1-2 January 2025 and the day off moved from Sunday 5 January to Friday
    # 3 January: the Sunday is a working day, the first one after the decision
    ("2024-12-31 15:00", "2025-01-05"),
])
def test_suspicious_before_is_due_by_the_end_of_the_next_working_day(
    decided: str, due_end_of: str
) -> None:
    assert next_day_rule(decided) == end_of_day(_dt.date.fromisoformat(due_end_of))


def test_the_end_of_the_day_is_midnight_astana_time() -> None:
    assert end_of_day(_dt.date(2025, 11, 17)) == at("2025-11-18 00:00")
    assert end_of_day(_dt.date(2025, 11, 17)).utcoffset() == _dt.timedelta(0)


def test_the_other_kinds_follow_the_next_working_day_rule_from_the_decision() -> None:
    for kind in ("threshold", "refusal_relations", "refusal_operation", "termination",
                 "freeze"):
        assert deadline_for(KZ, kind, decided_at=at("2025-11-14 10:00")) == \
            end_of_day(_dt.date(2025, 11, 17))


def test_recognised_after_the_operation_is_due_within_24_hours() -> None:
    # 24 hours, not a working day: across a weekend it stays 24 hours
    due = deadline_for(KZ, "suspicious_after", recognised_at=at("2025-11-14 18:30"),
                       decided_at=at("2025-11-14 18:30"))
    assert due == at("2025-11-15 18:30")
    assert lateness(due, at("2025-11-15 18:30")) == 0
    assert lateness(due, at("2025-11-15 18:30:01")) == 1
    assert lateness(due, at("2025-11-17 10:00")) == (at("2025-11-17 10:00") - due).seconds + \
        86400 * (at("2025-11-17 10:00") - due).days


def test_corrections_and_withdrawals_have_no_deadline() -> None:
    for action in ("correction", "withdrawal"):
        assert deadline_for(KZ, "suspicious_before", action=action,
                            decided_at=at("2025-11-14 10:00")) is None
    assert lateness(None, at("2030-01-01 00:00")) == 0


def test_a_decree_the_package_lacks_is_added_in_the_config(tmp_path: Path) -> None:
    # Suppose a decree moves a day off onto Monday 17 November 2025 and makes Saturday
    # 22 November a working day.
    cfg = load_config(tmp_path, env={}, overrides={"reporting": {
        "holidays": ["2025-11-17"], "workdays": ["2025-11-22"]}})
    cal = WorkCalendar(cfg.reporting.holidays, cfg.reporting.workdays)
    assert next_day_rule("2025-11-14 18:30", cal) == end_of_day(_dt.date(2025, 11, 18))
    assert next_day_rule("2025-11-21 18:30", cal) == end_of_day(_dt.date(2025, 11, 22))
    # a day the package calls a holiday can be made a working day
    cal2 = WorkCalendar(extra_workdays=["2025-12-16"])
    assert next_day_rule("2025-12-15 09:00", cal2) == end_of_day(_dt.date(2025, 12, 16))


def test_a_bad_config_date_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reporting\.holidays"):
        load_config(tmp_path, env={}, overrides={
            "reporting": {"holidays": ["17.11.2025"]}})
    with pytest.raises(ConfigError, match=r"reporting\.workdays"):
        load_config(tmp_path, env={}, overrides={
            "reporting": {"workdays": "2025-11-22"}})
