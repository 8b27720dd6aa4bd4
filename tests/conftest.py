"""Shared pytest fixtures for the whole sio-gateway suite.

At import time, if ``SOFTHSM2_CONF`` is not already set, a session-wide temporary SoftHSM
token store is created and ``SOFTHSM2_CONF`` points at it, before anything loads PKCS#11.
Tokens therefore never touch the system token directory.

Fixtures (import nothing; just name them as test arguments):

``softhsm_store`` (session)
    The :class:`softhsm.TokenStore` behind ``SOFTHSM2_CONF``. Under ``CI=true`` a missing
    SoftHSM / p11-kit is a test FAILURE; elsewhere those tests are skipped.

``token_factory`` (function)
    ``token_factory(prefix="t") -> TestToken``: initialises a new token with a unique
    label and random PINs. ``TestToken`` has ``label``, ``pin`` (the user PIN, for tests
    that must call a tool), ``so_pin``, ``pin_env`` (name of an environment variable set
    to the PIN), ``pin_source`` (``"env:VAR"``), ``pin_file`` (a mode-600 file holding
    the PIN), ``uri(object=None, id=None)`` -> a ``pkcs11:`` URI string with ``pin-source``,
    and ``token()`` -> a :class:`signing.pkcs11_token.Pkcs11Token` for key management.

``ec_token_key`` / ``rsa_token_key`` (function)
    A fresh token with one EC P-256 (resp. RSA-2048) key generated on it. The object has
    ``token`` (TestToken), ``label``, ``key_id`` (CKA_ID bytes), ``uri`` and ``signer``
    (a :class:`signing.Pkcs11Signer`; RSA signs RSA-PSS-SHA256).

``pg_url`` (function)
    ``SIOGW_TEST_PG_URL``; skips without it, fails under ``CI=true``.

``pkcs11_module`` (session)
    Path of the PKCS#11 module the signers load (p11-kit-proxy by default).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

_SESSION_STORE_DIR: Path | None = None
if not os.environ.get("SOFTHSM2_CONF"):
    # Must happen before any PKCS#11 module is initialised in this process.
    _SESSION_STORE_DIR = Path(tempfile.mkdtemp(prefix="siogw-test-softhsm-"))
    try:
        from softhsm.store import TokenStore as _TokenStore

        _TokenStore(_SESSION_STORE_DIR).activate()
    except Exception:  # reported by the softhsm_store fixture
        pass


def _missing(reason: str) -> None:
    """Skip, or fail under CI=true (a missing SoftHSM must not pass CI silently)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def softhsm_store() -> Iterator[Any]:
    from signing.errors import TokenError
    from signing.modules import P11_KIT_PROXY_CANDIDATES, find_pkcs11_module
    from softhsm.store import SoftHSMError, TokenStore, find_softhsm_library

    try:
        find_softhsm_library()
        find_pkcs11_module()
    except (SoftHSMError, TokenError) as exc:
        _missing(f"SoftHSM not available: {exc.diagnostics()}")
    if IN_CI and not os.environ.get("SIOGW_PKCS11_MODULE"):
        if not any(Path(p).exists() for p in P11_KIT_PROXY_CANDIDATES):
            pytest.fail("p11-kit-proxy.so missing under CI=true (install p11-kit)")
    conf = Path(os.environ["SOFTHSM2_CONF"])
    if _SESSION_STORE_DIR is not None:
        store = TokenStore(_SESSION_STORE_DIR)
    else:
        # SOFTHSM2_CONF given from outside: its directory must look like a TokenStore.
        store = TokenStore(conf.parent.parent)
        if store.conf_path != conf:
            pytest.fail(f"SOFTHSM2_CONF={conf} is not a softhsm.TokenStore config")
    yield store
    if _SESSION_STORE_DIR is not None:
        from signing import pkcs11_session

        pkcs11_session.close_all_sessions()
        shutil.rmtree(_SESSION_STORE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def pkcs11_module(softhsm_store: Any) -> str:
    from signing.modules import find_pkcs11_module

    return str(find_pkcs11_module())


@dataclass
class TestToken:
    """A token made for one test (see module docstring)."""

    __test__ = False  # not a test class

    label: str
    pin: str
    so_pin: str
    pin_env: str
    pin_file: Path

    @property
    def pin_source(self) -> str:
        return f"env:{self.pin_env}"

    def uri(self, object: str | None = None, id: bytes | None = None) -> str:
        from signing.uri import Pkcs11URI

        return str(Pkcs11URI(token=self.label, object=object, id=id, type="private",
                             pin_source=self.pin_source))

    def token(self) -> Any:
        from signing.pkcs11_token import Pkcs11Token

        return Pkcs11Token(self.label, pin_source=self.pin_source)


@pytest.fixture
def token_factory(
    softhsm_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., TestToken]:
    counter = iter(range(1_000_000))

    def make(prefix: str = "t") -> TestToken:
        label = f"{prefix}-{secrets.token_hex(6)}"[:32]
        pin = secrets.token_urlsafe(12)
        so_pin = secrets.token_urlsafe(12)
        env = f"SIOGW_TEST_PIN_{secrets.token_hex(4).upper()}"
        monkeypatch.setenv(env, pin)
        pin_file = tmp_path / f"pin-{next(counter)}"
        pin_file.write_text(pin + "\n")
        pin_file.chmod(0o600)
        softhsm_store.init_token(label, so_pin, pin)
        return TestToken(label=label, pin=pin, so_pin=so_pin, pin_env=env, pin_file=pin_file)

    return make


@dataclass
class TokenKey:
    """A key generated on a fresh token, with a signer over it."""

    token: TestToken
    label: str
    key_id: bytes
    uri: str
    signer: Any


def _token_key(token_factory: Callable[..., TestToken], key_type: str) -> TokenKey:
    from signing.pkcs11_signer import Pkcs11Signer

    tok = token_factory(key_type)
    label = f"{key_type}-key"
    key_id = tok.token().generate_keypair(key_type, label)
    uri = tok.uri(object=label)
    return TokenKey(token=tok, label=label, key_id=key_id, uri=uri, signer=Pkcs11Signer(uri))


@pytest.fixture
def ec_token_key(token_factory: Callable[..., TestToken]) -> TokenKey:
    return _token_key(token_factory, "ec")


@pytest.fixture
def rsa_token_key(token_factory: Callable[..., TestToken]) -> TokenKey:
    return _token_key(token_factory, "rsa")


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("SIOGW_TEST_PG_URL")
    if not url:
        if IN_CI:
            pytest.fail("SIOGW_TEST_PG_URL is not set under CI=true")
        pytest.skip("SIOGW_TEST_PG_URL not set")
    return url
