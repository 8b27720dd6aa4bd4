"""The per-token session pool: bounded, shares one login, heals as a whole.

No timing assertions: the tests bound their own duration and check results only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signing import Pkcs11Signer, load_signer, verify_signature
from signing.pkcs11_session import (
    close_all_sessions,
    default_pool_size,
    reinitialize_module,
    shared_session,
)
from siogw_api.errors import ConfigError

THREADS = 6


def _run_threads(workers: list[Callable[[], None]], budget: float) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def wrap(fn: Callable[[], None]) -> None:
        start.wait()
        try:
            fn()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=budget + 60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


@pytest.fixture
def pool_of() -> Iterator[Callable[[str, int], Any]]:
    """``pool_of(label, bound)``: the token's pool with its bound set (restored after)."""
    restore: list[tuple[Any, int]] = []

    def make(label: str, bound: int) -> Any:
        shared = shared_session(label)
        restore.append((shared, shared.bound))
        shared.set_bound(bound)
        return shared

    yield make
    for shared, bound in restore:
        shared.set_bound(bound)


def test_threads_sign_while_the_pool_is_invalidated(
    ec_token_key: Any, pool_of: Callable[[str, int], Any]
) -> None:
    token = ec_token_key.token
    shared = pool_of(token.label, 3)
    rsa_id = token.token().generate_keypair("rsa", "pool-rsa")
    signers = [ec_token_key.signer, Pkcs11Signer(token.uri(id=rsa_id))]
    stop = time.monotonic() + 2.0
    results: list[tuple[Pkcs11Signer, bytes, bytes]] = []
    lock = threading.Lock()
    invalidations = 0
    epoch_before = shared.stats().epoch

    def signer_worker(index: int) -> Callable[[], None]:
        def work() -> None:
            signer = signers[index % len(signers)]
            local = []
            n = 0
            while time.monotonic() < stop:
                payload = b"pool thread %d message %d" % (index, n)
                local.append((signer, payload, signer.sign(payload)))
                n += 1
            with lock:
                results.extend(local)

        return work

    def invalidator() -> None:
        nonlocal invalidations
        while time.monotonic() < stop:
            time.sleep(0.1)
            # Alternate: the module is re-initialised (every handle dies), or the pool
            # is closed under the signers (logout; every session dies).
            if invalidations % 2:
                close_all_sessions()
            else:
                reinitialize_module()
            invalidations += 1

    workers = [signer_worker(i) for i in range(THREADS)] + [invalidator]
    assert _run_threads(workers, 2.0) == []
    assert invalidations >= 4
    assert shared.stats().epoch > epoch_before + 2  # the pool really was renewed
    assert len(results) >= THREADS
    for signer, payload, sig in results:
        verify_signature(signer.public_key, signer.algorithm, payload, sig)
    # After the storm: a clean pool within its bound, and signing still works.
    stats = shared.stats()
    assert stats.in_use == 0 and stats.open <= 3
    payload = b"after the storm"
    for signer in signers:
        verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))


def test_the_pool_never_exceeds_its_bound(
    ec_token_key: Any, pool_of: Callable[[str, int], Any]
) -> None:
    token = ec_token_key.token
    shared = pool_of(token.label, 2)
    lock = threading.Lock()
    active = 0
    max_active = 0
    handles: set[int] = set()
    signer = ec_token_key.signer

    def op(session: Any) -> None:
        nonlocal active, max_active
        with lock:
            active += 1
            max_active = max(max_active, active)
            handles.add(session.handle)
        try:
            time.sleep(0.003)  # hold the session so that borrowers overlap
        finally:
            with lock:
                active -= 1

    def worker() -> None:
        for i in range(25):
            shared.run(op, pin_spec=token.pin_source, what="test")
            signer.sign(b"%d" % i)

    assert _run_threads([worker] * 8, 10.0) == []
    stats = shared.stats()
    assert max_active <= 2
    assert stats.peak_in_use <= 2
    assert stats.open <= 2 and stats.in_use == 0
    assert len(handles) <= 2  # no session beyond the bound was ever opened
    # ... and the pool does lend its second session (8 threads held sessions for ms).
    assert max_active == 2 and len(handles) == 2


def test_pooled_sessions_share_the_one_login(
    ec_token_key: Any, pool_of: Callable[[str, int], Any]
) -> None:
    token = ec_token_key.token
    shared = pool_of(token.label, 2)
    barrier = threading.Barrier(2)
    states: list[Any] = []

    def borrow_one() -> None:
        def held(session: Any) -> None:
            barrier.wait(timeout=30)
            from pkcs11 import Attribute, ObjectClass

            # A private object is only visible in a logged-in (user) session.
            keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
            states.append((session.handle, len(keys)))

        shared.run(held, pin_spec=token.pin_source, what="test")

    assert _run_threads([borrow_one, borrow_one], 30.0) == []
    assert len({handle for handle, _ in states}) == 2
    assert all(count == 1 for _, count in states)


def test_lowering_the_bound_closes_surplus_sessions(
    ec_token_key: Any, pool_of: Callable[[str, int], Any]
) -> None:
    token = ec_token_key.token
    shared = pool_of(token.label, 3)
    barrier = threading.Barrier(3)

    def held(session: Any) -> None:
        barrier.wait(timeout=30)

    def worker() -> None:
        shared.run(held, pin_spec=token.pin_source, what="test")

    assert _run_threads([worker] * 3, 30.0) == []
    assert shared.stats().open == 3
    shared.set_bound(1)
    assert shared.stats().open == 1  # the idle surplus closed at once
    assert shared._session is not None  # the login session is kept
    payload = b"still signs"
    signer = ec_token_key.signer
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))
    with pytest.raises(ConfigError):
        shared.set_bound(0)


def test_default_pool_size_is_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound is an argument now (config [signer] sessions); no environment variable.
    monkeypatch.setenv("SIOGW_PKCS11_SESSIONS", "3")
    assert default_pool_size() == max(1, os.cpu_count() or 1)


def test_sessions_argument_bounds_the_pool(token_factory: Any) -> None:
    tok = token_factory("bound")
    tok.token().generate_keypair("ec", "k")
    signer = Pkcs11Signer(tok.uri(object="k"), sessions=2)
    assert shared_session(tok.label).bound == 2
    payload = b"bounded"
    verify_signature(signer.public_key, signer.algorithm, payload, signer.sign(payload))
    other = load_signer(tok.uri(object="k"), sessions=3)
    assert shared_session(tok.label).bound == 3
    verify_signature(other.public_key, other.algorithm, payload, other.sign(payload))


@pytest.mark.parametrize("bad", [0, -2, True, "2", 1.5])
def test_sessions_argument_is_validated(token_factory: Any, bad: Any) -> None:
    tok = token_factory("badbound")
    tok.token().generate_keypair("ec", "k")
    with pytest.raises(ConfigError, match="session"):
        Pkcs11Signer(tok.uri(object="k"), sessions=bad)
    with pytest.raises(ConfigError, match="session"):
        load_signer(tok.uri(object="k"), sessions=bad)
