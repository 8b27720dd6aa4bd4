"""Astana time (R9): store UTC, render in Asia/Almaty from the ``tzdata`` package.

Kazakhstan moved to a single zone, UTC+05:00, on 2024-03-01 (it was +06:00 before).
The machine's own zone database may predate that change, so the zone is always loaded
from the ``tzdata`` wheel, never from ``/usr/share/zoneinfo`` or the local zone.
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from siogw_api.errors import InputError

UTC = _dt.UTC


@lru_cache(maxsize=1)
def astana_zone() -> ZoneInfo:
    """Asia/Almaty from the bundled tzdata package (not the OS database)."""
    ref = resources.files("tzdata.zoneinfo").joinpath("Asia/Almaty")
    with ref.open("rb") as fh:
        return ZoneInfo.from_file(fh, key="Asia/Almaty")


def now_utc() -> _dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return _dt.datetime.now(UTC)


def ensure_utc(value: _dt.datetime) -> _dt.datetime:
    """Convert an aware datetime to UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_astana(value: _dt.datetime) -> _dt.datetime:
    """The same instant in Astana time."""
    return ensure_utc(value).astimezone(astana_zone())


def astana_iso(value: _dt.datetime | None = None) -> str:
    """ISO 8601 in Astana time with its offset, e.g. ``2026-11-22T03:45:07+05:00``."""
    return to_astana(value if value is not None else now_utc()).isoformat(timespec="seconds")


def parse_iso(text: str) -> _dt.datetime:
    """Parse an ISO 8601 timestamp with an offset into aware UTC."""
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"not an ISO 8601 timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        raise InputError(f"timestamp without a UTC offset: {text!r}")
    return parsed.astimezone(UTC)
