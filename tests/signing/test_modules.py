"""PKCS#11 module discovery (signing.modules): explicit, then the environment, then
well-known paths with p11-kit's proxy first (ADR 0001)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from signing import modules
from signing.errors import TokenError
from signing.modules import (
    ENV_MODULE,
    OPENCRYPTOKI_CANDIDATES,
    OPENSC_CANDIDATES,
    P11_KIT_PROXY_CANDIDATES,
    SOFTHSM_CANDIDATES,
    WELL_KNOWN_MODULES,
    find_pkcs11_module,
)

ROOT = Path(__file__).resolve().parents[2]


def test_well_known_order() -> None:
    assert WELL_KNOWN_MODULES == (
        *P11_KIT_PROXY_CANDIDATES, *SOFTHSM_CANDIDATES, *OPENSC_CANDIDATES,
        *OPENCRYPTOKI_CANDIDATES,
    )


def test_installed_default(monkeypatch: pytest.MonkeyPatch, softhsm_store: Any) -> None:
    monkeypatch.delenv(ENV_MODULE, raising=False)
    found = find_pkcs11_module()
    assert found.exists()
    proxy = next((Path(p) for p in P11_KIT_PROXY_CANDIDATES if Path(p).exists()), None)
    if proxy is not None:
        assert found == proxy


def test_explicit_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib = tmp_path / "vendor.so"
    lib.write_bytes(b"")
    other = tmp_path / "other.so"
    other.write_bytes(b"")
    monkeypatch.setenv(ENV_MODULE, str(lib))
    assert find_pkcs11_module() == lib
    assert find_pkcs11_module(str(other)) == other  # configuration / URI module-path wins
    monkeypatch.setenv(ENV_MODULE, str(tmp_path / "missing.so"))
    with pytest.raises(TokenError, match="missing file"):
        find_pkcs11_module()


def test_first_existing_well_known(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_MODULE, raising=False)
    second = tmp_path / "opensc-pkcs11.so"
    second.write_bytes(b"")
    third = tmp_path / "libopencryptoki.so"
    third.write_bytes(b"")
    candidates = (str(tmp_path / "absent-proxy.so"), str(second), str(third))
    monkeypatch.setattr(modules, "WELL_KNOWN_MODULES", candidates)
    assert find_pkcs11_module() == second
    monkeypatch.setattr(modules, "WELL_KNOWN_MODULES", (str(tmp_path / "none.so"),))
    with pytest.raises(TokenError, match="no PKCS#11 module"):
        find_pkcs11_module()


def test_signing_never_imports_softhsm() -> None:
    for path in sorted((ROOT / "signing").glob("*.py")):
        if path.name == "cli.py":
            continue  # the CLI's token commands activate the SoftHSM development store
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "softhsm" for n in names), path
