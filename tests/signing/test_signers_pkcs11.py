"""PKCS#11 backend specifics: key generation, key management, errors, certificates, fork."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing import Algorithm, Pkcs11Signer, key_id_for, load_signer, verify_signature
from signing.errors import (
    KeyNotFound,
    KeyURIError,
    PinError,
    TokenNotFound,
    UnsupportedAlgorithm,
)
from signing.pkcs11_session import shared_session


def test_ec_key_signs_and_verifies(ec_token_key: Any) -> None:
    signer = ec_token_key.signer
    assert signer.algorithm is Algorithm.ECDSA_P256_SHA256
    assert signer.ck_id == ec_token_key.key_id
    verify_signature(signer.public_key, signer.algorithm, b"m", signer.sign(b"m"))


def test_rsa_defaults_to_pss(rsa_token_key: Any) -> None:
    signer = rsa_token_key.signer
    assert signer.algorithm is Algorithm.RSA_PSS_SHA256
    assert signer.public_key.key_size == 2048
    verify_signature(signer.public_key, signer.algorithm, b"m", signer.sign(b"m"))


def test_generated_private_key_is_sensitive_and_unextractable(ec_token_key: Any) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    shared = shared_session(ec_token_key.token.label)

    def attrs(session: Any) -> dict[Any, Any]:
        key = next(session.get_objects({
            Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: ec_token_key.label,
        }))
        values = {a: key[a] for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE,
                                        Attribute.ID, Attribute.SIGN, Attribute.DECRYPT)}
        try:
            key[Attribute.VALUE]
        except pkcs11.PKCS11Error as exc:
            values["value_error"] = type(exc).__name__
        return values

    values = shared.run(attrs, pin_spec=ec_token_key.token.pin_source, what="test")
    assert values[Attribute.SENSITIVE] is True
    assert values[Attribute.EXTRACTABLE] is False
    assert values[Attribute.SIGN] is True
    assert values[Attribute.DECRYPT] is False
    assert values[Attribute.ID] == ec_token_key.key_id and len(values[Attribute.ID]) == 16
    assert values["value_error"] == "AttributeSensitive"


def test_list_export_delete(token_factory: Any) -> None:
    tok = token_factory()
    token = tok.token()
    ec_id = token.generate_keypair("ec", "one")
    ed_id = token.generate_keypair("ed25519", "two")
    keys = {k.label: k for k in token.list_keys()}
    assert set(keys) == {"one", "two"}
    assert keys["one"].id == ec_id and keys["one"].key_type == "ec"
    assert keys["two"].id == ed_id and keys["two"].key_type == "ed25519"
    exported = token.public_key(key_id=ec_id)
    assert key_id_for(exported) == keys["one"].key_id
    signer = Pkcs11Signer(tok.uri(id=ec_id))
    assert signer.key_id == key_id_for(exported)
    assert token.delete(label="one") == 2
    assert [k.label for k in token.list_keys()] == ["two"]
    with pytest.raises(KeyNotFound, match="one"):
        token.delete(label="one")
    with pytest.raises(KeyNotFound, match=tok.label):
        Pkcs11Signer(tok.uri(object="one"))


def test_duplicate_label_and_bad_key_type(token_factory: Any) -> None:
    token = token_factory().token()
    token.generate_keypair("ec", "k")
    with pytest.raises(KeyURIError, match="already has a key"):
        token.generate_keypair("ec", "k")
    with pytest.raises(UnsupportedAlgorithm):
        token.generate_keypair("dsa", "d")


def test_ambiguous_label_needs_id(token_factory: Any) -> None:
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    tok = token_factory()
    token = tok.token()
    first = token.generate_keypair("ec", "k")
    second = b"\x02" * 16

    def duplicate(session: Any) -> None:  # bypasses generate_keypair's duplicate check
        session.generate_keypair(
            KeyType.EC, store=True, label="k", id=second,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        )

    shared_session(tok.label).run(duplicate, pin_spec=tok.pin_source, what="test")
    with pytest.raises(KeyNotFound, match="more than one key"):
        Pkcs11Signer(tok.uri(object="k"))
    one = Pkcs11Signer(tok.uri(object="k", id=first))
    two = Pkcs11Signer(tok.uri(object="k", id=second))
    assert one.ck_id == first and two.ck_id == second
    assert one.key_id != two.key_id


def test_missing_token_names_it(token_factory: Any) -> None:
    tok = token_factory()
    with pytest.raises(TokenNotFound, match="no-such-token"):
        Pkcs11Signer(f"pkcs11:token=no-such-token;object=k?pin-source={tok.pin_source}")


def test_missing_key_names_token_and_key(token_factory: Any) -> None:
    tok = token_factory()
    with pytest.raises(KeyNotFound) as info:
        Pkcs11Signer(tok.uri(object="absent-key"))
    assert tok.label in info.value.diagnostics() and "absent-key" in info.value.diagnostics()


def test_wrong_pin_is_pin_error(token_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = token_factory()
    monkeypatch.setenv("SIOGW_T_WRONG_PIN", "wrong-pin-000")
    with pytest.raises(PinError) as info:
        Pkcs11Signer(f"pkcs11:token={tok.label};object=k", pin_source="env:SIOGW_T_WRONG_PIN")
    assert "wrong-pin-000" not in info.value.diagnostics()
    assert tok.label in info.value.diagnostics()


def test_wrong_pin_refused_even_when_token_is_logged_in(
    ec_token_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIOGW_T_WRONG_PIN", "wrong-pin-000")
    with pytest.raises(PinError, match="does not match"):
        Pkcs11Signer(ec_token_key.uri, pin_source="env:SIOGW_T_WRONG_PIN")


def test_no_pin_source(ec_token_key: Any) -> None:
    with pytest.raises(PinError, match="no PIN source"):
        Pkcs11Signer(f"pkcs11:token={ec_token_key.token.label};object={ec_token_key.label}")


def test_uri_must_name_token_and_key() -> None:
    with pytest.raises(KeyURIError, match="token"):
        Pkcs11Signer("pkcs11:object=k?pin-source=env:X")
    with pytest.raises(KeyURIError, match="key"):
        Pkcs11Signer("pkcs11:token=t?pin-source=env:X")
    with pytest.raises(KeyURIError, match="type=private"):
        Pkcs11Signer("pkcs11:token=t;object=k;type=public?pin-source=env:X")


def test_pin_from_file_and_callback(ec_token_key: Any) -> None:
    tok = ec_token_key.token
    by_file = load_signer(
        f"pkcs11:token={tok.label};object={ec_token_key.label}", pin_source=f"file:{tok.pin_file}"
    )
    by_callback = Pkcs11Signer(
        f"pkcs11:token={tok.label};object={ec_token_key.label}", pin_source=lambda _d: tok.pin
    )
    for signer in (by_file, by_callback):
        verify_signature(signer.public_key, signer.algorithm, b"m", signer.sign(b"m"))


def test_set_pin(ec_token_key: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = ec_token_key.token
    token = tok.token()
    monkeypatch.setenv("SIOGW_T_NEW_PIN", "new-pin-4321")
    token.set_pin("env:SIOGW_T_NEW_PIN")
    monkeypatch.setenv(tok.pin_env, "new-pin-4321")
    # A full re-login with the new PIN works; the old one is refused.
    from signing.pkcs11_session import close_all_sessions

    close_all_sessions()
    signer = Pkcs11Signer(ec_token_key.uri)
    verify_signature(signer.public_key, signer.algorithm, b"m", signer.sign(b"m"))
    close_all_sessions()
    with pytest.raises(PinError):
        Pkcs11Signer(ec_token_key.uri, pin_source=lambda _d: tok.pin)


def _self_signed(key_signer: Pkcs11Signer) -> x509.Certificate:
    # A throwaway certificate over the token key's public half, signed by a software key
    # (this test only checks the binding, not the chain).
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token user")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key_signer.public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )


def test_certificate_from_token(ec_token_key: Any) -> None:
    signer = ec_token_key.signer
    assert signer.certificate is None
    cert = _self_signed(signer)
    ec_token_key.token.token().import_certificate(cert, key_id=signer.ck_id, label="cert")
    fresh = Pkcs11Signer(ec_token_key.uri)
    assert fresh.certificate == cert


def test_certificate_from_pem_path(ec_token_key: Any, tmp_path: Any) -> None:
    cert = _self_signed(ec_token_key.signer)
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    signer = Pkcs11Signer(ec_token_key.uri, certificate=path)
    assert signer.certificate == cert


def test_certificate_of_another_key_is_refused(ec_token_key: Any, rsa_token_key: Any) -> None:
    cert = _self_signed(rsa_token_key.signer)
    with pytest.raises(UnsupportedAlgorithm, match="does not belong"):
        Pkcs11Signer(ec_token_key.uri, certificate=cert)


def test_importing_signing_does_not_load_pkcs11() -> None:
    code = "import sys, signing; print('pkcs11' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_signer_works_in_forked_child(ec_token_key: Any) -> None:
    signer = ec_token_key.signer
    signer.sign(b"parent first")  # the parent has a live session before fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must re-initialise PKCS#11 by itself
        status = 1
        try:
            sig = signer.sign(b"from child")
            os.write(write, sig)
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        child_sig = handle.read()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    verify_signature(signer.public_key, signer.algorithm, b"from child", child_sig)
    # The parent's session survived the child.
    verify_signature(signer.public_key, signer.algorithm, b"p", signer.sign(b"p"))


def test_sign_async(ec_token_key: Any) -> None:
    import asyncio

    signer = ec_token_key.signer

    async def main() -> list[bytes]:
        return await asyncio.gather(*(signer.sign_async(b"a%d" % i) for i in range(20)))

    for i, sig in enumerate(asyncio.run(main())):
        verify_signature(signer.public_key, signer.algorithm, b"a%d" % i, sig)


def test_supports_reports_mechanisms(token_factory: Any) -> None:
    token = token_factory().token()
    assert token.supports("ec") and token.supports("rsa")
    assert not token.supports("dsa")
