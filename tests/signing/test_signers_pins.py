"""PIN sources: env:, file: (private files only), callbacks; errors never show PINs."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.errors import PinError
from signing.pins import (
    CallbackPin,
    EnvPin,
    FilePin,
    as_pin_source,
    parse_pin_source,
    resolve_pin,
)


def test_env_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIOGW_T_PIN", "12345678")
    assert parse_pin_source("env:SIOGW_T_PIN") == EnvPin("SIOGW_T_PIN")
    assert resolve_pin("env:SIOGW_T_PIN", "token 'x'") == "12345678"


def test_env_pin_unset_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIOGW_T_NOPE", raising=False)
    with pytest.raises(PinError, match="SIOGW_T_NOPE is unset"):
        resolve_pin("env:SIOGW_T_NOPE", "token 'x'")


def test_env_pin_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIOGW_T_PIN", "")
    with pytest.raises(PinError, match="empty"):
        resolve_pin("env:SIOGW_T_PIN", "token 'x'")


def test_file_pin_first_line(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\nignored\n")
    pin_file.chmod(0o600)
    assert resolve_pin(f"file:{pin_file}", "token 'x'") == "s3cret-pin"
    assert resolve_pin(f"file://{pin_file}", "token 'x'") == "s3cret-pin"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_file_pin_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\n")
    pin_file.chmod(mode)
    with pytest.raises(PinError) as info:
        resolve_pin(f"file:{pin_file}", "token 'x'")
    text = info.value.diagnostics()
    assert "readable by group or others" in text
    assert "s3cret-pin" not in text


def test_file_pin_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(PinError, match="cannot open PIN file"):
        resolve_pin(f"file:{tmp_path / 'absent'}", "token 'x'")
    empty = tmp_path / "empty"
    empty.write_text("")
    empty.chmod(0o600)
    with pytest.raises(PinError, match="empty"):
        resolve_pin(f"file:{empty}", "token 'x'")


def test_file_pin_symlink_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text("1234\n")
    real.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(PinError):
        FilePin(link).get_pin("token 'x'")


def test_callback_pin_gets_description() -> None:
    seen: list[str] = []

    def callback(description: str) -> str:
        seen.append(description)
        return "from-vault"

    assert resolve_pin(callback, "token 'hsm'") == "from-vault"
    assert seen == ["token 'hsm'"]
    assert isinstance(as_pin_source(callback), CallbackPin)
    with pytest.raises(PinError, match="returned no PIN"):
        resolve_pin(lambda _d: "", "token 'hsm'")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1234", "bare value looks like a PIN"),
        ("env:", "needs a variable name"),
        ("env:1BAD", "needs a variable name"),
        ("env:A-B", "needs a variable name"),
        ("file:", "needs a path"),
        ("file://host/pin", "must be local"),
        ("vault:secret/pin", "unknown PIN source scheme"),
    ],
)
def test_bad_pin_sources(spec: str, message: str) -> None:
    with pytest.raises(PinError) as info:
        parse_pin_source(spec)
    assert message in info.value.diagnostics()
