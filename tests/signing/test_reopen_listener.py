"""A PKCS#11 session pool that heals tells its listeners (the gateway's
``siogw_pkcs11_session_reopens_total``, issue 17)."""

from __future__ import annotations

from typing import Any

from signing import verify_signature
from signing.pkcs11_session import add_reopen_listener, shared_session


def test_a_healed_session_is_reported_once_per_heal(ec_token_key: Any) -> None:
    heard: list[str] = []
    add_reopen_listener(heard.append)
    add_reopen_listener(heard.append)  # idempotent
    signer = ec_token_key.signer
    label = ec_token_key.token.label
    signer.sign(b"warm")
    assert heard.count(label) == 0  # no heal, no report
    shared_session(label)._session.close()  # behind the signer's back
    payload = b"after healing"
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))
    assert heard.count(label) == 1
    signer.sign(b"again")
    assert heard.count(label) == 1


def test_a_failing_listener_does_not_break_signing(ec_token_key: Any) -> None:
    def broken(label: str) -> None:
        raise RuntimeError("a metric that fails")

    add_reopen_listener(broken)
    signer = ec_token_key.signer
    signer.sign(b"warm")
    shared_session(ec_token_key.token.label)._session.close()
    payload = b"still signs"
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))
