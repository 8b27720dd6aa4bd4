"""``server.worker_threads`` / ``signer.sessions``: settings read only through the config
(``SIOGW_WORKER_THREADS`` and ``SIOGW_PKCS11_SESSIONS`` are documented overrides there)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from server.assembly import install_executor
from server.config import ENV_OVERRIDES, load_config
from siogw_api.errors import ConfigError

DEFAULT = max(2, min(16, 2 * (os.cpu_count() or 1)))


def test_default_is_twice_the_cores_within_bounds(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).effective_worker_threads == DEFAULT
    zero = load_config(tmp_path, env={}, overrides={"server": {"worker_threads": 0}})
    assert zero.worker_threads == 0 and zero.effective_worker_threads == DEFAULT


def test_the_file_and_the_environment_set_it(tmp_path: Path) -> None:
    (tmp_path / "siogw.toml").write_text("[server]\nworker_threads = 5\n")
    assert load_config(tmp_path, env={}).effective_worker_threads == 5
    env = {"SIOGW_WORKER_THREADS": "3"}
    assert load_config(tmp_path, env=env).effective_worker_threads == 3
    assert ENV_OVERRIDES["SIOGW_WORKER_THREADS"] == ("server", "worker_threads")


@pytest.mark.parametrize("bad", ["1", "17", "-2", "many"])
def test_bad_values_are_config_errors_naming_the_key(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.worker_threads"):
        load_config(tmp_path, env={"SIOGW_WORKER_THREADS": bad})


def test_the_loop_executor_has_that_many_threads(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={"SIOGW_WORKER_THREADS": "3"})

    async def run() -> int:
        loop = asyncio.get_running_loop()
        install_executor(loop, config)
        executor = loop._default_executor  # type: ignore[attr-defined]
        return int(executor._max_workers)

    assert asyncio.run(run()) == 3


def test_signer_sessions_come_from_the_config(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).signer.sessions == 0  # 0: one per CPU core
    (tmp_path / "siogw.toml").write_text("[signer]\nsessions = 4\n")
    assert load_config(tmp_path, env={}).signer.sessions == 4
    assert load_config(tmp_path, env={"SIOGW_PKCS11_SESSIONS": "2"}).signer.sessions == 2
    assert ENV_OVERRIDES["SIOGW_PKCS11_SESSIONS"] == ("signer", "sessions")
    for bad in ("-1", "many", "100000"):
        with pytest.raises(ConfigError, match=r"signer\.sessions"):
            load_config(tmp_path, env={"SIOGW_PKCS11_SESSIONS": bad})
