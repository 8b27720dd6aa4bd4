"""Kazakhstan's working days and the FM-1 deadlines, in Astana time (S§35, R17).

**Working days** come from the ``holidays`` package (``holidays.country_holidays("KZ")``):
Saturdays and Sundays, the public holidays (the moving Kurban Ait included, from the
Islamic calendar), the days off the government's decrees move onto a weekday and the
Saturdays they make working days (``weekend_workdays``); ``is_working_day`` takes all of
it into account. A decree the package does not have yet, or gets wrong, is corrected
in ``siogw.toml``::

    [reporting]
    holidays = ["2027-01-04"]   # extra days off
    workdays = ["2027-01-09"]   # working days (a transferred Saturday, a wrong holiday)

A date in ``workdays`` is a working day whatever else says; one in ``holidays`` is not.

**Deadlines** (:func:`deadline_for`):

* an operation recognised as suspicious *before* it was carried out (``suspicious_before``)
  and, by the same rule of S§35 ("не позднее рабочего дня, следующего за днем принятия
  решения (совершения действия)"), a threshold operation, a refusal, a termination or a
  freeze: by the end (24:00 Astana time) of the first working day after the day of the
  decision / action (``decided_at``);
* an operation already carried out and recognised as suspicious afterwards
  (``suspicious_after``): within 24 hours of ``recognised_at``;
* a correction or a withdrawal: no deadline of its own.

A message received after its deadline is accepted and flagged late; the lateness (whole
seconds past the deadline) is in its receipt.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from functools import lru_cache

import holidays

from siogw_api.timeutil import astana_zone, ensure_utc, to_astana

#: The kinds whose deadline is the end of the next working day after ``decided_at``.
NEXT_WORKING_DAY_KINDS = frozenset({
    "suspicious_before", "threshold", "refusal_relations", "refusal_operation",
    "termination", "freeze",
})
#: The kind whose deadline is 24 hours after ``recognised_at``.
WITHIN_24_HOURS_KINDS = frozenset({"suspicious_after"})
RECOGNITION_WINDOW = _dt.timedelta(hours=24)
#: How far ahead :meth:`WorkCalendar.next_working_day` looks before giving up.
_MAX_SCAN_DAYS = 60


@lru_cache(maxsize=64)
def _kz(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("KZ", years=year)


class WorkCalendar:
    """Kazakhstan's working days with the configured corrections (module docstring)."""

    def __init__(self, extra_holidays: Iterable[str | _dt.date] = (),
                 extra_workdays: Iterable[str | _dt.date] = ()) -> None:
        self.extra_holidays = frozenset(_date(d) for d in extra_holidays)
        self.extra_workdays = frozenset(_date(d) for d in extra_workdays)

    def is_working_day(self, day: _dt.date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        return bool(_kz(day.year).is_working_day(day))

    def next_working_day(self, day: _dt.date) -> _dt.date:
        """The first working day strictly after ``day``."""
        for step in range(1, _MAX_SCAN_DAYS + 1):
            candidate = day + _dt.timedelta(days=step)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {day}")


def _date(value: str | _dt.date) -> _dt.date:
    return value if isinstance(value, _dt.date) else _dt.date.fromisoformat(value)


def end_of_day(day: _dt.date) -> _dt.datetime:
    """24:00 Astana time at the end of ``day`` (the next day's midnight), in UTC."""
    nxt = day + _dt.timedelta(days=1)
    return ensure_utc(_dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=astana_zone()))


def deadline_for(
    calendar: WorkCalendar, kind: str, *, action: str = "report",
    decided_at: _dt.datetime | None = None, recognised_at: _dt.datetime | None = None,
) -> _dt.datetime | None:
    """The last instant a message may arrive on time (UTC), or None (no deadline)."""
    if action != "report":
        return None
    if kind in WITHIN_24_HOURS_KINDS:
        return None if recognised_at is None else ensure_utc(recognised_at) + RECOGNITION_WINDOW
    if kind in NEXT_WORKING_DAY_KINDS and decided_at is not None:
        day = to_astana(decided_at).date()
        return end_of_day(calendar.next_working_day(day))
    return None


def lateness(deadline: _dt.datetime | None, received_at: _dt.datetime) -> int:
    """Whole seconds ``received_at`` is past ``deadline`` (0: on time or no deadline)."""
    if deadline is None:
        return 0
    late_by = (ensure_utc(received_at) - deadline).total_seconds()
    return max(0, int(late_by) + (1 if late_by > int(late_by) else 0))
