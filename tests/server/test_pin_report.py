"""§12: the ``pin_changed_at`` a client reports at login (``server.auth``) -- outside
input, parsed before anything reads it: any text is a time or a precise refusal."""

from __future__ import annotations

import datetime as _dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.auth import pin_age_notice, reported_pin_change
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso, now_utc


@given(st.text(max_size=64))
def test_any_text_is_a_past_aware_time_or_an_input_error(text: str) -> None:
    try:
        when = reported_pin_change(text, 120)
    except InputError as exc:
        assert "pin_changed_at" in str(exc)
        return
    if not text:
        assert when is None
    else:
        assert when is not None and when.utcoffset() is not None
        assert when <= now_utc() + _dt.timedelta(seconds=120)


@given(st.datetimes(min_value=_dt.datetime(2000, 1, 1), max_value=_dt.datetime(2025, 1, 1),
                    timezones=st.just(_dt.UTC)))
def test_a_past_time_round_trips(when: _dt.datetime) -> None:
    parsed = reported_pin_change(astana_iso(when), 120)
    assert parsed is not None and abs(parsed - when) < _dt.timedelta(seconds=1)


def test_future_and_naive_times_are_refused() -> None:
    with pytest.raises(InputError, match="in the future"):
        reported_pin_change(astana_iso(now_utc() + _dt.timedelta(hours=1)), 120)
    with pytest.raises(InputError, match="ISO 8601"):
        reported_pin_change("2026-01-01T00:00:00", 120)  # no offset


def test_the_notice_warns_past_30_days_or_when_unknown() -> None:
    now = now_utc()
    assert pin_age_notice(now - _dt.timedelta(days=29), now) is None
    old = pin_age_notice(now - _dt.timedelta(days=31), now)
    assert old is not None and "31 days ago" in old and "siogw token change-pin" in old
    unknown = pin_age_notice(None, now)
    assert unknown is not None and "did not report" in unknown
