"""The signer contract on three PKCS#11 implementations (issue 17, ADR 0001 "Implementations").

SoftHSM (behind p11-kit-proxy), tpm2-pkcs11 on the swtpm TPM 2.0 emulator (behind the
proxy) and openCryptoki's software token (loaded directly): sign/verify for every key
type and algorithm the implementation has, refusal of the ones it has not, key lookup
by URI, a wrong PIN, session self-healing and concurrent signing. Fixtures:
``tests/p11impls.py``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signing import Algorithm, Pkcs11Signer, key_id_for, load_signer, verify_signature
from signing.errors import BadSignature, KeyNotFound, PinError, UnsupportedAlgorithm
from signing.pkcs11_session import get_module, shared_session
from tests.p11impls import KEY_TYPE, SIGN_CASES, Impl

PAYLOAD = b'{"query":"iin=900101300123","resource":"gbd-fl"}'


def _verify_with_cryptography(signer: Any, payload: bytes, sig: bytes) -> None:
    key = signer.public_key
    if signer.algorithm is Algorithm.ECDSA_P256_SHA256:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    elif signer.algorithm is Algorithm.RSA_PSS_SHA256:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(sig, payload, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    elif signer.algorithm is Algorithm.RSA_PKCS1_SHA256:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(sig, payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(sig, payload)


def _sign_ok(signer: Any, payload: bytes = PAYLOAD) -> None:
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))


@pytest.mark.parametrize(("p11impl", "alg"), SIGN_CASES, indirect=["p11impl"],
                         ids=[f"{i}-{a.value}" for i, a in SIGN_CASES])
def test_sign_and_verify(p11impl: Impl, alg: Algorithm) -> None:
    if alg not in p11impl.algorithms:  # only a SoftHSM built without CKM_EDDSA
        pytest.skip(f"this {p11impl.name} has no {alg.value}")
    signer = p11impl.signer(alg)
    assert signer.algorithm is alg
    sig = signer.sign(PAYLOAD)
    verify_signature(signer.public_key, alg, PAYLOAD, sig)
    _verify_with_cryptography(signer, PAYLOAD, sig)
    with pytest.raises(BadSignature):
        verify_signature(signer.public_key, alg, PAYLOAD + b" ", sig)
    flipped = bytearray(sig)
    flipped[-1] ^= 1
    with pytest.raises(BadSignature):
        verify_signature(signer.public_key, alg, PAYLOAD, bytes(flipped))
    # The public key read from the token is the key's: the token's own export agrees.
    exported = p11impl.token().public_key(label=p11impl.keys[-1].label)
    assert key_id_for(exported) == signer.key_id


def test_every_algorithm_is_either_signed_or_refused(p11impl: Impl) -> None:
    """The implementation's table in ADR 0001 is the truth: nothing else is claimed."""
    token = p11impl.token()
    key_types = {KEY_TYPE[a] for a in p11impl.algorithms}
    for key_type in ("ec", "rsa", "ed25519"):
        assert token.supports(key_type) == (key_type in key_types), key_type
    for alg in p11impl.refused:
        key = p11impl.new_key(KEY_TYPE[alg])
        with pytest.raises(UnsupportedAlgorithm, match="cannot sign"):
            Pkcs11Signer(key.uri, algorithm=alg)


def test_generated_key_is_sign_only(p11impl: Impl) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    alg = p11impl.algorithms[0]
    key = p11impl.new_key(KEY_TYPE[alg])

    def attrs(session: Any) -> dict[Any, Any]:
        obj = next(session.get_objects({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key.label,
        }))
        values: dict[Any, Any] = {a: obj[a] for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE,
                                      Attribute.SIGN, Attribute.DECRYPT, Attribute.ID)}
        try:
            obj[Attribute.VALUE]
            values["value"] = "readable"
        except pkcs11.PKCS11Error as exc:
            values["value"] = type(exc).__name__
        return values

    values = shared_session(p11impl.label, p11impl.module_path).run(
        attrs, pin_spec=p11impl.pin_source, what="test"
    )
    assert values[Attribute.SENSITIVE] is True
    assert values[Attribute.EXTRACTABLE] is False
    assert values[Attribute.SIGN] is True
    assert values[Attribute.DECRYPT] is False
    assert values[Attribute.ID] == key.ck_id
    assert values["value"] != "readable"


def test_key_lookup_by_uri(p11impl: Impl) -> None:
    alg = p11impl.algorithms[0]
    key = p11impl.new_key(KEY_TYPE[alg])
    by_label = load_signer(p11impl.uri(object=key.label), algorithm=alg)
    by_id = Pkcs11Signer(p11impl.uri(id=key.ck_id), algorithm=alg)
    by_both = Pkcs11Signer(p11impl.uri(object=key.label, id=key.ck_id), algorithm=alg)
    # the plain RFC 7512 text, as an operator writes it in the configuration
    text = f"pkcs11:token={p11impl.label};object={key.label}?pin-source={p11impl.pin_source}"
    if p11impl.module_path:
        text += f"&module-path={p11impl.module_path}"
    by_text = load_signer(text, algorithm=alg)
    assert by_label.key_id == by_id.key_id == by_both.key_id == by_text.key_id
    assert by_id.ck_id == key.ck_id
    for signer in (by_label, by_id, by_text):
        _sign_ok(signer)
    with pytest.raises(KeyNotFound) as info:
        Pkcs11Signer(p11impl.uri(object="ct-absent-key"), algorithm=alg)
    assert p11impl.label in info.value.diagnostics()
    assert "ct-absent-key" in info.value.diagnostics()


def test_wrong_pin_is_refused_and_the_right_one_still_works(
    p11impl: Impl, monkeypatch: pytest.MonkeyPatch
) -> None:
    alg = p11impl.algorithms[0]
    key = p11impl.new_key(KEY_TYPE[alg])
    p11impl.release()  # no login in this process: the token itself checks the PIN
    monkeypatch.setenv("SIOGW_T_WRONG_PIN", "Wrong123")
    with pytest.raises(PinError) as info:
        Pkcs11Signer(key.uri, pin_source="env:SIOGW_T_WRONG_PIN", algorithm=alg)
    assert "Wrong123" not in info.value.diagnostics()
    _sign_ok(Pkcs11Signer(key.uri, algorithm=alg))  # a good login resets the counter
    # logged in now: a signer with another PIN is refused without a second C_Login
    with pytest.raises(PinError, match="does not match"):
        Pkcs11Signer(key.uri, pin_source="env:SIOGW_T_WRONG_PIN", algorithm=alg)


def test_session_closed_under_the_signer_heals(p11impl: Impl) -> None:
    signer = p11impl.signer(p11impl.algorithms[0])
    _sign_ok(signer)
    shared = shared_session(p11impl.label, p11impl.module_path)
    old = shared._session
    old.close()  # C_Logout + C_CloseSession behind the signer's back
    _sign_ok(signer)
    assert shared._session is not old
    assert shared.stats().epoch >= 2


def test_module_reinitialised_under_the_signer_heals(p11impl: Impl) -> None:
    signer = p11impl.signer(p11impl.algorithms[0])
    _sign_ok(signer)
    module = get_module(p11impl.module_path)
    generation = module.generation
    module.lib().finalize()  # CKR_CRYPTOKI_NOT_INITIALIZED from now on
    _sign_ok(signer)
    assert module.generation == generation + 1
    _sign_ok(signer)


def test_concurrent_signing(p11impl: Impl) -> None:
    signer = p11impl.signer(p11impl.algorithms[0])
    errors: list[BaseException] = []
    results: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(p11impl.threads)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for n in range(p11impl.per_thread):
                payload = b"%d/%d:" % (index, n) + PAYLOAD
                sig = signer.sign(payload)
                with lock:
                    results.append((payload, sig))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(p11impl.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == p11impl.threads * p11impl.per_thread
    for payload, sig in results:
        verify_signature(signer.public_key, signer.algorithm, payload, sig)


def test_modules_that_do_not_lock_are_serialised(p11impl: Impl) -> None:
    """python-pkcs11 initialises modules without CKF_OS_LOCKING_OK: tpm2-pkcs11 (and
    SoftHSM loaded directly) then do no locking and openCryptoki 3.8 crashed with
    threads, so the session layer serialises them; p11-kit-proxy initialises the modules
    behind it with OS locking and keeps their parallelism."""
    from signing.pkcs11_session import locks_by_itself

    module = get_module(p11impl.module_path)
    expected = p11impl.name == "softhsm"  # behind p11-kit-proxy
    assert locks_by_itself(module.path) is expected
    assert (module.serial is None) is expected
    assert not locks_by_itself("/usr/lib/softhsm/libsofthsm2.so")
    assert not locks_by_itself("/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so")
    assert locks_by_itself("/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so")


_DIRECT_SOFTHSM = """
import os, secrets, shutil, sys, tempfile, threading
from pathlib import Path
from softhsm.store import TokenStore, find_softhsm_library
home = Path(tempfile.mkdtemp(prefix="siogw-direct-"))
store = TokenStore(home)
store.activate()
from signing import verify_signature
from signing.pkcs11_signer import Pkcs11Signer
from signing.pkcs11_token import Pkcs11Token
lib = str(find_softhsm_library())
pin = secrets.token_urlsafe(12)
os.environ["SIOGW_T_DIRECT_PIN"] = pin
store.init_token("direct", secrets.token_urlsafe(12), pin)
token = Pkcs11Token("direct", pin_source="env:SIOGW_T_DIRECT_PIN", module_path=lib)
key_id = token.generate_keypair("rsa", "k")
signer = Pkcs11Signer(token.uri(key_id=key_id) + "&module-path=" + lib, sessions=4)
errors = []
def work(i):
    try:
        for n in range(60):
            p = b"%d-%d" % (i, n)
            verify_signature(signer.public_key, signer.algorithm, p, signer.sign(p))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(errors[:3])
shutil.rmtree(home, ignore_errors=True)
sys.exit(1 if errors else 0)
"""


def test_softhsm_loaded_directly_is_safe_with_threads(softhsm_store: Any) -> None:
    """SoftHSM loaded without p11-kit (C_Initialize(NULL): no locking) failed with
    GeneralError in 3 of 3 runs of this script with 8 threads on 4 sessions before the
    session layer serialised such modules. A subprocess: a crash must not take the
    suite with it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    proc = subprocess.run([sys.executable, "-c", _DIRECT_SOFTHSM], capture_output=True,
                          text=True, timeout=300, env=env,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]


def test_signer_works_in_a_forked_child(p11impl: Impl) -> None:
    """No PKCS#11 state crosses fork(): the child initialises the module itself (for
    the TPM: its own TCTI connection); the parent signs again afterwards."""
    import os

    signer = p11impl.signer(p11impl.algorithms[0])
    _sign_ok(signer)  # the parent is logged in before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.write(write, signer.sign(b"from the child"))
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        child_sig = handle.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    verify_signature(signer.public_key, signer.algorithm, b"from the child", child_sig)
    if p11impl.name == "tpm2":
        # A bare TPM (swtpm, no resource manager) shares its loaded objects and sessions
        # between processes: after the child used it, the parent's next C_Sign failed
        # ("authorization HMAC check failed", DA counter incremented). Logging in again
        # reloads them (ADR 0001); /dev/tpmrm0 or tpm2-abrmd isolate processes.
        p11impl.release()
    _sign_ok(signer)
