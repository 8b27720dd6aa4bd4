"""The project-local SoftHSM token store and the ``siogw hsm`` commands."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from siogw_api.errors import ConfigError
from softhsm import SoftHSMError, TokenStore, find_softhsm_library


def test_store_layout_and_config(tmp_path: Path, softhsm_store: Any) -> None:
    store = TokenStore(tmp_path / "home")
    assert store.conf_path == (tmp_path / "home" / "softhsm" / "softhsm2.conf").absolute()
    text = store.conf_path.read_text()
    assert f"directories.tokendir = {store.token_dir}" in text
    assert "/var/lib/softhsm" not in text
    assert stat.S_IMODE(store.token_dir.stat().st_mode) == 0o700
    assert store.env() == {"SOFTHSM2_CONF": str(store.conf_path)}
    TokenStore(tmp_path / "home")  # idempotent
    assert store.conf_path.read_text() == text


def test_default_home_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIOGW_HOME", str(tmp_path / "h"))
    store = TokenStore()
    assert store.root == (tmp_path / "h" / "softhsm").absolute()


def test_init_and_list_tokens(tmp_path: Path, softhsm_store: Any) -> None:
    store = TokenStore(tmp_path)
    info = store.init_token("store-test", "so-pin-123456", "user-pin-123456")
    assert info.label == "store-test" and info.serial
    tokens = [t for t in store.list_tokens() if t.initialized]
    assert [(t.label, t.serial, t.user_pin_initialized) for t in tokens] == [
        ("store-test", info.serial, True)
    ]
    with pytest.raises(SoftHSMError) as err:
        store.init_token("store-test", "so-pin-123456", "user-pin-123456")
    assert "already exists" in err.value.diagnostics()
    # Token files live in the store, not in the system directory.
    assert any(store.token_dir.iterdir())


def test_pins_are_not_on_argv(
    tmp_path: Path, softhsm_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    TokenStore(tmp_path).init_token("argv-test", "so-secret-777", "user-secret-777")
    assert seen
    flat = " ".join(" ".join(cmd) for cmd in seen)
    assert "so-secret-777" not in flat and "user-secret-777" not in flat


@pytest.mark.parametrize(
    ("label", "so_pin", "pin", "message"),
    [
        ("", "so-pin-1", "pin-1234", "label"),
        ("x" * 33, "so-pin-1", "pin-1234", "label"),
        ("ok", "123", "pin-1234", "SO PIN"),
        ("ok", "so-pin-1", "1", "user PIN"),
    ],
)
def test_bad_init_arguments(
    tmp_path: Path, softhsm_store: Any, label: str, so_pin: str, pin: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenStore(tmp_path).init_token(label, so_pin, pin)


def test_softhsm_library_locator(monkeypatch: pytest.MonkeyPatch, softhsm_store: Any) -> None:
    # The production module locator is signing.modules (tests/signing/test_modules.py).
    monkeypatch.delenv("SIOGW_SOFTHSM_LIB", raising=False)
    found = find_softhsm_library()
    assert found.exists()
    monkeypatch.setenv("SIOGW_SOFTHSM_LIB", str(found))
    assert find_softhsm_library() == found
    monkeypatch.setenv("SIOGW_SOFTHSM_LIB", "/nonexistent/libsofthsm2.so")
    with pytest.raises(SoftHSMError, match="missing file"):
        find_softhsm_library()


def _siogw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siogw.cli", *args], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=120, check=False,
    )


def test_cli_setup_init_list(tmp_path: Path, softhsm_store: Any) -> None:
    home = tmp_path / "home"
    env = {"T_SO": "so-pin-cli-1", "T_USER": "user-pin-cli-1"}
    out = _siogw("hsm", "setup", "--home", str(home), env=env)
    assert out.returncode == 0, out.stderr
    assert "SOFTHSM2_CONF=" in out.stdout
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("user-pin-cli-1\n")
    pin_file.chmod(0o600)
    out = _siogw("hsm", "init-token", "cli-token", "--home", str(home),
                 "--so-pin-env", "T_SO", "--pin-file", str(pin_file), env=env)
    assert out.returncode == 0, out.stderr
    assert "so-pin-cli-1" not in out.stdout + out.stderr
    out = _siogw("hsm", "list", "--home", str(home), env=env)
    assert out.returncode == 0 and out.stdout.startswith("cli-token\t")


def test_cli_refuses_readable_pin_file_and_missing_pin(tmp_path: Path, softhsm_store: Any) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("user-pin-cli-1\n")
    pin_file.chmod(0o644)
    out = _siogw("hsm", "init-token", "t", "--home", str(tmp_path), "--so-pin-env", "T_SO",
                 "--pin-file", str(pin_file), env={"T_SO": "so-pin-cli-1"})
    assert out.returncode == 2
    assert "readable by group or others" in out.stderr
    out = _siogw("hsm", "init-token", "t", "--home", str(tmp_path), "--pin-file",
                 str(pin_file), env={})
    assert out.returncode == 2 and "--so-pin-file or --so-pin-env" in out.stderr
