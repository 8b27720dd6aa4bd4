"""Three PKCS#11 implementations for the signer contract suite and the end-to-end test.

* ``softhsm``: SoftHSM v2 behind p11-kit-proxy (a new token in the session's store).
* ``tpm2``: tpm2-pkcs11 on the swtpm TPM 2.0 emulator, loaded directly and serialised by
  :mod:`signing.pkcs11_session` (``make system-deps`` takes it out of p11-kit-proxy,
  where it would probe for a TPM in every process). The ``tpm2_impl`` fixture starts
  ``swtpm`` on free loopback ports (the TCTI's control channel is port + 1) with a
  temporary state directory and a temporary tpm2-pkcs11 store, points
  ``TPM2_PKCS11_TCTI``/``TPM2_PKCS11_STORE`` at them before the module is first
  initialised, and stops ``swtpm`` at teardown.
* ``opencryptoki``: openCryptoki's software token (slot 3), loaded directly (Debian does
  not register it with p11-kit) and serialised like tpm2-pkcs11 (3.8 crashed with
  threads signing on separate sessions). The ``opencryptoki_impl``
  fixture starts ``pkcsslotd`` if it is not running. Its token state is machine-global
  (``/var/lib/opencryptoki/swtok``): the token is initialised idempotently with the label
  :data:`OCK_LABEL`, SO PIN :data:`OCK_SO_PIN` and user PIN :data:`OCK_USER_PIN` (a
  token with another label, or one whose user PIN is refused, is re-initialised; see
  ADR 0001), and the keys this suite made are deleted at the start and the end.

Use: ``p11impl`` (function scope, parametrized over :data:`IMPLS`) gives an :class:`Impl`
and logs the token out after the test (a bare TPM holds few loaded objects: every key a
login used stays loaded until logout). Under ``CI=true`` a missing implementation is a
failure, elsewhere a skip. The swtpm and openCryptoki helpers live in :mod:`softhsm.tpm2`
and :mod:`softhsm.ock` (the benches use them too); ``python -m softhsm.ock ock-init`` is
the openCryptoki initialiser (PINs on standard input, never argv).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from signing import Algorithm
from softhsm.ock import (  # noqa: F401  (re-exported: the names tests used from here)
    OCK_FACTORY_SO_PIN,
    OCK_LABEL,
    OCK_SLOT,
    OCK_SO_PIN,
    OCK_USER_PIN,
    PKCSSLOTD_PID,
    ensure_pkcsslotd,
    main,
    ock_library,
)
from softhsm.tpm2 import init_token, start_swtpm, tpm2_library

IN_CI = os.environ.get("CI", "").lower() == "true"
IMPLS = ("softhsm", "tpm2", "opencryptoki")

#: Labels of the keys this suite generates (swept from the machine-global token).
KEY_PREFIX = "ct-"

#: What each implementation signs (ADR 0001, "Implementations"); the rest it refuses.
#: SoftHSM's Ed25519 needs a build with CKM_EDDSA (Debian 12's has it).
SIGNS: dict[str, tuple[Algorithm, ...]] = {
    "softhsm": (Algorithm.ECDSA_P256_SHA256, Algorithm.RSA_PSS_SHA256,
                Algorithm.RSA_PKCS1_SHA256, Algorithm.ED25519),
    "tpm2": (Algorithm.ECDSA_P256_SHA256, Algorithm.RSA_PKCS1_SHA256),
    "opencryptoki": (Algorithm.RSA_PSS_SHA256, Algorithm.RSA_PKCS1_SHA256),
}
#: Every (implementation, algorithm) pair the contract suite signs with.
SIGN_CASES = [(impl, alg) for impl in IMPLS for alg in SIGNS[impl]]

KEY_TYPE = {
    Algorithm.ECDSA_P256_SHA256: "ec",
    Algorithm.RSA_PSS_SHA256: "rsa",
    Algorithm.RSA_PKCS1_SHA256: "rsa",
    Algorithm.ED25519: "ed25519",
}


def missing(reason: str) -> None:
    """Skip, or fail under CI=true (an implementation must not drop out of CI silently)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this is a failure, not a skip)")
    pytest.skip(reason)


@dataclass
class KeyRef:
    label: str
    ck_id: bytes
    uri: str


@dataclass
class Impl:
    """One token on one PKCS#11 implementation (see the module docstring)."""

    name: str
    label: str
    pin: str
    pin_env: str
    module_path: str | None  # None: the default module (p11-kit-proxy)
    #: Algorithms the token signs, and those it cannot (refused with UnsupportedAlgorithm).
    algorithms: tuple[Algorithm, ...]
    refused: tuple[Algorithm, ...]
    #: Threads x signatures each for the concurrency test (a TPM is slow).
    threads: int = 4
    per_thread: int = 25
    keys: list[KeyRef] = field(default_factory=list)

    @property
    def pin_source(self) -> str:
        return f"env:{self.pin_env}"

    def token(self) -> Any:
        from signing.pkcs11_token import Pkcs11Token

        return Pkcs11Token(self.label, pin_source=self.pin_source, module_path=self.module_path)

    def uri(self, object: str | None = None, id: bytes | None = None,
            pin_source: str | None = None) -> str:
        from signing.uri import Pkcs11URI

        return str(Pkcs11URI(
            token=self.label, object=object, id=id, type="private",
            pin_source=pin_source or self.pin_source, module_path=self.module_path,
        ))

    def new_key(self, key_type: str) -> KeyRef:
        label = f"{KEY_PREFIX}{key_type}-{secrets.token_hex(4)}"
        ck_id = self.token().generate_keypair(key_type, label)
        ref = KeyRef(label=label, ck_id=ck_id, uri=self.uri(object=label))
        self.keys.append(ref)
        return ref

    def signer(self, alg: Algorithm) -> Any:
        from signing.pkcs11_signer import Pkcs11Signer

        key = self.new_key(KEY_TYPE[alg])
        return Pkcs11Signer(key.uri, algorithm=alg)

    def release(self) -> None:
        """Log the token out in this process (closes its sessions; TPM objects unload)."""
        from signing.pkcs11_session import shared_session

        shared_session(self.label, self.module_path).close()

    def delete_keys(self) -> None:
        token = self.token()
        for key in self.keys:
            with contextlib.suppress(Exception):
                token.delete(label=key.label)
        self.keys.clear()


# --- helpers -------------------------------------------------------------------------------
def _pin_env(pin: str) -> str:
    name = f"SIOGW_TEST_PIN_{secrets.token_hex(4).upper()}"
    os.environ[name] = pin
    return name


# --- SoftHSM -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def softhsm_impl(softhsm_store: Any) -> Iterator[Impl]:
    label = f"ct-softhsm-{secrets.token_hex(4)}"
    pin = secrets.token_urlsafe(12)
    softhsm_store.init_token(label, secrets.token_urlsafe(12), pin)
    env = _pin_env(pin)
    impl = Impl("softhsm", label, pin, env, None, algorithms=SIGNS["softhsm"], refused=())
    if not impl.token().supports("ed25519"):
        impl.algorithms = tuple(a for a in impl.algorithms if a is not Algorithm.ED25519)
    yield impl
    impl.release()
    os.environ.pop(env, None)


# --- tpm2-pkcs11 on swtpm (softhsm.tpm2: shared with bench/gateway.py) ---------------
@pytest.fixture(scope="session")
def tpm2_impl(softhsm_store: Any) -> Iterator[Impl]:
    from signing.pkcs11_session import close_all_sessions, get_module

    library = tpm2_library()
    if shutil.which("swtpm") is None or library is None:
        missing("tpm2-pkcs11 or swtpm not installed (make system-deps)")
    assert library is not None
    base = Path(tempfile.mkdtemp(prefix="siogw-swtpm-"))
    tpm = start_swtpm(base)
    saved = {k: os.environ.get(k) for k in ("TPM2_PKCS11_TCTI", "TPM2_PKCS11_STORE")}
    try:
        os.environ.update(tpm.env())
        label = f"ct-tpm-{secrets.token_hex(4)}"
        pin, so_pin = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        init_token(library, label, so_pin, pin)
        env = _pin_env(pin)
        impl = Impl(
            "tpm2", label, pin, env, library,
            algorithms=SIGNS["tpm2"], refused=(Algorithm.RSA_PSS_SHA256,),
            threads=4, per_thread=5,
        )
        yield impl
        close_all_sessions()
        os.environ.pop(env, None)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.suppress(Exception):
            get_module(library).lib().finalize()  # let go of the TPM before it stops
        tpm.stop()
        shutil.rmtree(base, ignore_errors=True)


# --- openCryptoki --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def opencryptoki_impl(softhsm_store: Any) -> Iterator[Impl]:
    library = ock_library()
    slotd = shutil.which("pkcsslotd") or "/usr/sbin/pkcsslotd"
    if library is None or not Path(slotd).exists():
        missing("openCryptoki not installed (make system-deps)")
    assert library is not None
    ensure_pkcsslotd()
    proc = subprocess.run(
        [sys.executable, "-m", "softhsm.ock", "ock-init", "--module", library],
        input=json.dumps({"label": OCK_LABEL, "so_pin": OCK_SO_PIN, "user_pin": OCK_USER_PIN}),
        capture_output=True, text=True, timeout=120,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    if proc.returncode != 0:
        pytest.fail(f"openCryptoki token init failed: {proc.stderr.strip()[-800:]}")
    env = _pin_env(OCK_USER_PIN)
    impl = Impl(
        "opencryptoki", OCK_LABEL, OCK_USER_PIN, env, library,
        algorithms=SIGNS["opencryptoki"], refused=(),
    )
    _sweep(impl)
    yield impl
    impl.delete_keys()
    _sweep(impl)
    impl.release()
    os.environ.pop(env, None)


def _sweep(impl: Impl) -> None:
    """Delete every key this suite left on the machine-global token (labels ct-...)."""
    token = impl.token()
    for key in token.list_keys():
        if key.label.startswith(KEY_PREFIX):
            with contextlib.suppress(Exception):
                token.delete(label=key.label)


# --- the parametrized fixture --------------------------------------------------------------
@pytest.fixture(params=IMPLS)
def p11impl(request: pytest.FixtureRequest) -> Iterator[Impl]:
    impl: Impl = request.getfixturevalue(f"{request.param}_impl")
    yield impl
    impl.release()
    if impl.name == "opencryptoki":
        impl.delete_keys()


if __name__ == "__main__":
    sys.exit(main())
