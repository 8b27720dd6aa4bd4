"""Many threads signing with ONE signer: every signature verifies, nothing crashes.

No timing assertions: the tests bound their own duration and check results only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from signing import Pkcs11Signer, verify_signature
from signing.pkcs11_session import reinitialize_module

THREADS = 8


def _hammer(
    signers: list[Pkcs11Signer], seconds: float, *, reinit_every: float | None = None
) -> int:
    stop = time.monotonic() + seconds
    results: list[tuple[Pkcs11Signer, bytes, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS + (1 if reinit_every else 0))

    def worker(index: int) -> None:
        signer = signers[index % len(signers)]
        start.wait()
        local: list[tuple[Pkcs11Signer, bytes, bytes]] = []
        n = 0
        try:
            while time.monotonic() < stop:
                payload = b"thread %d message %d" % (index, n)
                local.append((signer, payload, signer.sign(payload)))
                n += 1
        except BaseException as exc:  # collected and reported below
            errors.append(exc)
        with lock:
            results.extend(local)

    def reinitialiser() -> None:
        start.wait()
        assert reinit_every is not None
        while time.monotonic() < stop:
            time.sleep(reinit_every)
            reinitialize_module()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    if reinit_every:
        threads.append(threading.Thread(target=reinitialiser))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    assert not any(t.is_alive() for t in threads), "a signing thread hung"
    assert errors == []
    for signer, payload, sig in results:
        verify_signature(signer.public_key, signer.algorithm, payload, sig)
    return len(results)


def test_eight_threads_one_signer(ec_token_key: Any) -> None:
    count = _hammer([ec_token_key.signer], 1.5)
    assert count >= THREADS


def test_eight_threads_two_keys_same_token(ec_token_key: Any) -> None:
    token = ec_token_key.token.token()
    key_id = token.generate_keypair("rsa", "second")
    rsa_signer = Pkcs11Signer(ec_token_key.token.uri(id=key_id))
    count = _hammer([ec_token_key.signer, rsa_signer], 1.0)
    assert count >= THREADS


@pytest.mark.slow
def test_eight_threads_long_with_module_reinitialisation(
    ec_token_key: Any, rsa_token_key: Any
) -> None:
    count = _hammer([ec_token_key.signer, rsa_token_key.signer], 8.0, reinit_every=0.5)
    assert count >= THREADS


@pytest.mark.slow
def test_eight_threads_one_signer_several_seconds(rsa_token_key: Any) -> None:
    count = _hammer([rsa_token_key.signer], 6.0)
    assert count >= THREADS
