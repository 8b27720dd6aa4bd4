"""The cross-cutting core: Astana time and the CLI's error exit path."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from siogw_api import timeutil
from siogw_api.errors import InputError


def test_astana_is_utc_plus_5_after_2024_reform() -> None:
    instant = dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.UTC)
    assert timeutil.astana_iso(instant) == "2026-11-22T03:00:00+05:00"


def test_astana_was_utc_plus_6_before_2024_03_01() -> None:
    instant = dt.datetime(2024, 1, 15, 12, 0, tzinfo=dt.UTC)
    assert timeutil.astana_iso(instant) == "2024-01-15T18:00:00+06:00"


def test_zone_comes_from_tzdata_package_not_os() -> None:
    zone = timeutil.astana_zone()
    assert str(zone) == "Asia/Almaty"
    # The OS database is never consulted: from_file zones carry no file path to /usr/share.
    assert zone.utcoffset(dt.datetime(2025, 6, 1)) == dt.timedelta(hours=5)


def test_parse_iso_requires_offset() -> None:
    with pytest.raises(InputError):
        timeutil.parse_iso("2026-11-21T10:00:00")
    with pytest.raises(InputError):
        timeutil.parse_iso("yesterday")
    assert timeutil.parse_iso("2026-11-22T03:00:00+05:00") == dt.datetime(
        2026, 11, 21, 22, 0, tzinfo=dt.UTC
    )


def test_naive_datetimes_are_taken_as_utc() -> None:
    assert timeutil.ensure_utc(dt.datetime(2026, 1, 1)).tzinfo is dt.UTC


def test_cli_error_exit_path_prints_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "siogw", "verify", "/nonexistent/envelope.json", "--trust",
         "/nonexistent/ca.pem"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("siogw: error:"), proc.stderr

