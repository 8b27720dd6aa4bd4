"""Self-healing of the PKCS#11 backend: the session or the module fails under a signer,
the next call reopens, logs in again and succeeds."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from signing import Pkcs11Signer, verify_signature
from signing.errors import TokenError
from signing.pkcs11_session import get_module, reinitialize_module, shared_session, wrap_error


def _sign_ok(signer: Pkcs11Signer, payload: bytes = b"after healing") -> None:
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))


def test_session_closed_under_the_signer(
    ec_token_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    signer = ec_token_key.signer
    _sign_ok(signer)
    shared = shared_session(ec_token_key.token.label)
    old = shared._session
    old.close()  # C_Logout + C_CloseSession behind the signer's back
    with caplog.at_level(logging.WARNING, logger="signing.pkcs11_session"):
        _sign_ok(signer)
    assert shared._session is not old
    assert "reopening the session" in caplog.text
    assert ec_token_key.token.pin not in caplog.text


def test_module_reinitialised_under_the_signer(ec_token_key: Any) -> None:
    signer = ec_token_key.signer
    _sign_ok(signer)
    get_module().lib().reinitialize()  # every session handle is now invalid
    _sign_ok(signer)
    _sign_ok(signer)


def test_module_finalised_under_the_signer(rsa_token_key: Any) -> None:
    signer = rsa_token_key.signer
    _sign_ok(signer)
    module = get_module()
    generation = module.generation
    module.lib().finalize()  # CKR_CRYPTOKI_NOT_INITIALIZED from now on
    _sign_ok(signer)
    assert module.generation == generation + 1  # healed by re-initialising the module


def test_reinitialize_module_between_calls(ec_token_key: Any, rsa_token_key: Any) -> None:
    _sign_ok(ec_token_key.signer)
    _sign_ok(rsa_token_key.signer)
    reinitialize_module()
    _sign_ok(ec_token_key.signer)
    _sign_ok(rsa_token_key.signer)


def test_token_created_by_another_process_after_init(
    ec_token_key: Any, token_factory: Any
) -> None:
    # The module is initialised (ec_token_key signed through it) before the new token
    # exists; SoftHSM only sees it after C_Finalize/C_Initialize, which the signer does.
    _sign_ok(ec_token_key.signer)
    module = get_module()
    generation = module.generation
    late = token_factory("late")  # created by a subprocess
    key_id = late.token().generate_keypair("ec", f"late-{secrets.token_hex(2)}")
    assert module.generation > generation
    _sign_ok(Pkcs11Signer(late.uri(id=key_id)))
    _sign_ok(ec_token_key.signer)  # the older signer healed too


def test_heal_is_attempted_once_only(ec_token_key: Any) -> None:
    shared = shared_session(ec_token_key.token.label)
    calls: list[int] = []

    def always_invalid(session: Any) -> None:
        import pkcs11

        calls.append(1)
        raise pkcs11.SessionHandleInvalid()

    with pytest.raises(TokenError) as info:
        shared.run(always_invalid, pin_spec=ec_token_key.token.pin_source, what="sign",
                   key="k1")
    assert len(calls) == 2
    text = info.value.diagnostics()
    assert ec_token_key.token.label in text and "'k1'" in text
    assert "SessionHandleInvalid" in text


def test_pin_failures_are_never_retried(token_factory: Any) -> None:
    import pkcs11

    from signing.errors import PinError

    tok = token_factory()
    shared = shared_session(tok.label)
    calls: list[int] = []

    def pin_incorrect(session: Any) -> None:
        calls.append(1)
        raise pkcs11.PinIncorrect()

    with pytest.raises(PinError):
        shared.run(pin_incorrect, pin_spec=tok.pin_source, what="sign")
    assert len(calls) == 1


def test_wrap_error_classes() -> None:
    import pkcs11

    from signing.errors import KeyNotFound, PinError, TokenNotFound, UnsupportedAlgorithm

    cases = {
        pkcs11.NoSuchToken(): TokenNotFound,
        pkcs11.NoSuchKey(): KeyNotFound,
        pkcs11.MultipleObjectsReturned(): KeyNotFound,
        pkcs11.PinLocked(): PinError,
        pkcs11.MechanismInvalid(): UnsupportedAlgorithm,
        pkcs11.DeviceError(): TokenError,
    }
    for exc, cls in cases.items():
        wrapped = wrap_error(exc, op="sign", token="tk", key="kk")
        assert type(wrapped) is cls
        assert "'tk'" in str(wrapped)
