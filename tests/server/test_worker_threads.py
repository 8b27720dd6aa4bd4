"""server.app.worker_threads: the size of the gateway's bounded worker pool."""

from __future__ import annotations

import os

import pytest

from server.app import worker_threads
from siogw_api.errors import ConfigError


def test_default_is_twice_the_cores_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIOGW_WORKER_THREADS", raising=False)
    assert worker_threads() == max(2, min(16, 2 * (os.cpu_count() or 1)))


def test_environment_sets_it_and_bad_values_are_config_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIOGW_WORKER_THREADS", "3")
    assert worker_threads() == 3
    for bad in ("0", "many"):
        monkeypatch.setenv("SIOGW_WORKER_THREADS", bad)
        with pytest.raises(ConfigError):
            worker_threads()
