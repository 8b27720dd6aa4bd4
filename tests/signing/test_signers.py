"""One contract suite over every signer backend and key type.

Each case signs with the backend, verifies with :func:`signing.verify_signature` and with
``cryptography`` directly, and checks that a wrong key, a flipped signature byte and a
changed payload all give :class:`BadSignature`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from signing import (
    Algorithm,
    Signer,
    SoftwareSigner,
    generate_software_key,
    key_id_for,
    load_signer,
    verify_signature,
)
from signing.errors import BadSignature, UnsupportedAlgorithm

ALGORITHMS = [
    Algorithm.ECDSA_P256_SHA256,
    Algorithm.RSA_PSS_SHA256,
    Algorithm.RSA_PKCS1_SHA256,
    Algorithm.ED25519,
]
KEY_TYPE = {
    Algorithm.ECDSA_P256_SHA256: "ec",
    Algorithm.RSA_PSS_SHA256: "rsa",
    Algorithm.RSA_PKCS1_SHA256: "rsa",
    Algorithm.ED25519: "ed25519",
}
PAYLOAD = b'{"query":"iin=900101300123","resource":"gbd-fl"}'


@dataclass
class ContractToken:
    label: str
    pin_env: str
    ed25519: bool


@pytest.fixture(scope="module")
def contract_token(softhsm_store: Any) -> Iterator[ContractToken]:
    """One token with an EC, an RSA and an Ed25519 key (module-scoped: keygen is slow)."""
    from signing.pkcs11_token import Pkcs11Token

    label = f"contract-{secrets.token_hex(4)}"
    pin = secrets.token_urlsafe(12)
    env = f"SIOGW_TEST_PIN_{secrets.token_hex(4).upper()}"
    os.environ[env] = pin
    softhsm_store.init_token(label, secrets.token_urlsafe(12), pin)
    token = Pkcs11Token(label, pin_source=f"env:{env}")
    for key_type in ("ec", "rsa", "ed25519"):
        if token.supports(key_type):  # Ed25519 needs a SoftHSM built with CKM_EDDSA
            token.generate_keypair(key_type, f"{key_type}-key")
    yield ContractToken(label=label, pin_env=env, ed25519=token.supports("ed25519"))
    os.environ.pop(env, None)


SignerFactory = Callable[[Algorithm], Signer]


@pytest.fixture(params=["software", "pkcs11"])
def make_signer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> SignerFactory:
    if request.param == "software":
        def software(alg: Algorithm) -> Signer:
            key = generate_software_key(alg)
            pem = tmp_path / f"{alg.value}.pem"
            pem.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))
            return load_signer(f"file:{pem}", algorithm=alg)

        return software
    token: ContractToken = request.getfixturevalue("contract_token")

    def hsm(alg: Algorithm) -> Signer:
        if alg is Algorithm.ED25519 and not token.ed25519:
            pytest.skip("this SoftHSM has no CKM_EDDSA")
        uri = (f"pkcs11:token={token.label};object={KEY_TYPE[alg]}-key;type=private"
               f"?pin-source=env:{token.pin_env}")
        return load_signer(uri, algorithm=alg)

    return hsm


def verify_with_cryptography(signer: Signer, payload: bytes, sig: bytes) -> None:
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


@pytest.mark.parametrize("alg", ALGORITHMS, ids=[a.value for a in ALGORITHMS])
class TestSignerContract:
    def test_signature_verifies(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        assert signer.algorithm is alg
        sig = signer.sign(PAYLOAD)
        verify_signature(signer.public_key, alg, PAYLOAD, sig)
        verify_signature(signer.public_key, alg.value, PAYLOAD, sig)
        verify_with_cryptography(signer, PAYLOAD, sig)

    def test_standard_encoding(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        sig = signer.sign(PAYLOAD)
        if alg is Algorithm.ECDSA_P256_SHA256:
            r, s = utils.decode_dss_signature(sig)  # DER, not r||s
            assert r > 0 and s > 0
        elif alg is Algorithm.ED25519:
            assert len(sig) == 64
        else:
            assert len(sig) == 256

    def test_key_id_and_detached(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        assert signer.key_id == key_id_for(signer.public_key)
        detached = signer.sign_detached(PAYLOAD)
        assert detached.keyid == signer.key_id and detached.algorithm is alg
        verify_signature(signer.public_key, alg, PAYLOAD, detached.sig)

    def test_flipped_signature_byte(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        sig = bytearray(signer.sign(PAYLOAD))
        for index in (len(sig) // 2, len(sig) - 1):
            bad = bytearray(sig)
            bad[index] ^= 0x01
            with pytest.raises(BadSignature):
                verify_signature(signer.public_key, alg, PAYLOAD, bytes(bad))

    def test_changed_payload(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        sig = signer.sign(PAYLOAD)
        with pytest.raises(BadSignature):
            verify_signature(signer.public_key, alg, PAYLOAD + b" ", sig)
        with pytest.raises(BadSignature):
            verify_signature(signer.public_key, alg, b"", sig)

    def test_wrong_key(self, make_signer: SignerFactory, alg: Algorithm) -> None:
        signer = make_signer(alg)
        sig = signer.sign(PAYLOAD)
        other = generate_software_key(alg).public_key()
        with pytest.raises(BadSignature):
            verify_signature(other, alg, PAYLOAD, sig)

    def test_truncated_and_empty_signature(
        self, make_signer: SignerFactory, alg: Algorithm
    ) -> None:
        signer = make_signer(alg)
        sig = signer.sign(PAYLOAD)
        for bad in (sig[:-1], b"", b"\x00" * len(sig)):
            with pytest.raises(BadSignature):
                verify_signature(signer.public_key, alg, PAYLOAD, bad)


def test_key_algorithm_mismatch_is_unsupported() -> None:
    ec_key = generate_software_key(Algorithm.ECDSA_P256_SHA256).public_key()
    rsa_key = generate_software_key(Algorithm.RSA_PSS_SHA256).public_key()
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(ec_key, Algorithm.RSA_PSS_SHA256, b"x", b"sig")
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(rsa_key, Algorithm.ECDSA_P256_SHA256, b"x", b"sig")
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(rsa_key, "rsa-md5", b"x", b"sig")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(p384, Algorithm.ECDSA_P256_SHA256, b"x", b"sig")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(UnsupportedAlgorithm, match="below"):
        verify_signature(small, Algorithm.RSA_PSS_SHA256, b"x", b"sig")


def test_pss_and_pkcs1_are_not_interchangeable() -> None:
    key = generate_software_key(Algorithm.RSA_PSS_SHA256)
    pss = SoftwareSigner(key, Algorithm.RSA_PSS_SHA256)
    pkcs1 = SoftwareSigner(key, Algorithm.RSA_PKCS1_SHA256)
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), Algorithm.RSA_PKCS1_SHA256, b"x", pss.sign(b"x"))
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), Algorithm.RSA_PSS_SHA256, b"x", pkcs1.sign(b"x"))


def test_software_signer_refuses_mismatched_algorithm() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        SoftwareSigner(generate_software_key(Algorithm.ED25519), Algorithm.ECDSA_P256_SHA256)


def test_software_signer_encrypted_pem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_software_key(Algorithm.ECDSA_P256_SHA256)
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    ))
    monkeypatch.setenv("SIOGW_T_KEYPASS", "pass-phrase")
    signer = load_signer(f"file:{pem}?pin-source=env:SIOGW_T_KEYPASS")
    verify_signature(signer.public_key, signer.algorithm, b"m", signer.sign(b"m"))
    from signing.errors import KeyNotFound, PinError

    with pytest.raises(PinError):
        load_signer(f"file:{pem}")
    with pytest.raises(KeyNotFound):
        load_signer(f"file:{tmp_path / 'absent.pem'}")


def test_load_signer_unknown_algorithm_and_scheme(tmp_path: Path) -> None:
    from signing.errors import KeyURIError

    key = generate_software_key(Algorithm.ECDSA_P256_SHA256)
    pem = tmp_path / "k.pem"
    pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    with pytest.raises(UnsupportedAlgorithm):
        load_signer(f"file:{pem}", algorithm="rsa-md5")
    with pytest.raises(KeyURIError, match="unknown key URI scheme"):
        load_signer("awskms:alias/x")
