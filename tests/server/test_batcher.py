"""server.batcher.ResultBatcher (issue 18, ADR 0011): flushes a full batch, keeps its
queue bounded (callers past ``max_pending`` wait), fails every result of a batch whose
signature failed, and drops a caller that gave up. A software key stands in for the
token here (the batcher only calls ``Signer.sign``); the SoftHSM path is covered over a
real gateway in ``tests/clients/test_batch_signing.py``. No timing is measured: the
window is long and every batch here leaves because it is full or by events. The
idle-sign tests (``batch_idle_sign``) assert behavioural bounds only: a lone result with
a 10 s window answered within 2 s (impossible if it waited the window), and with
idle-sign off a lone result that is not answered before its window."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from server.assembly import result_batcher
from server.batcher import ResultBatcher
from server.config import load_config
from signing import batch, dsse
from signing.errors import TokenError
from signing.software import SoftwareSigner
from signing.trust import PublicKeyVerifier
from siogw_api.errors import ConfigError


class GatedSigner(SoftwareSigner):
    """Signs only once ``gate`` is set; counts its signatures; may fail."""

    def __init__(self) -> None:
        super().__init__(ec.generate_private_key(ec.SECP256R1()))
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.fail = False
        #: Signatures asked for so far (counted before the gate, unlike ``calls``).
        self.entered = 0

    def sign(self, data: bytes) -> bytes:
        self.entered += 1
        if not self.gate.wait(30):
            raise TokenError("gate never opened")
        self.calls += 1
        if self.fail:
            raise TokenError("the token is gone")
        return super().sign(data)


def _size(env: dsse.Envelope) -> int:
    proof = env.signatures[0].batch
    assert proof is not None
    return batch.parse_statement(proof.statement).size


def test_a_full_batch_leaves_with_one_signature() -> None:
    signer = GatedSigner()
    batcher = ResultBatcher(signer, window_ms=1000, max_batch=4)

    async def run() -> list[dsse.Envelope]:
        try:
            return list(await asyncio.gather(*(
                batcher.sign(dsse.PAYLOAD_RESULT, b"r%d" % i) for i in range(4))))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert signer.calls == 1 and [_size(e) for e in envs] == [4] * 4
    verifier = PublicKeyVerifier([signer.public_key])
    assert [dsse.verify_envelope(e, verifier).payload for e in envs] == [
        b"r0", b"r1", b"r2", b"r3"]
    assert (batcher.batches, batcher.results, batcher.largest) == (1, 4, 4)


def test_the_queue_is_bounded_and_callers_wait_for_room() -> None:
    signer = GatedSigner()
    signer.gate.clear()  # the token hangs until released
    batcher = ResultBatcher(signer, window_ms=1000, max_batch=2, max_pending=4,
                            max_in_flight=1)

    async def run() -> list[dsse.Envelope]:
        tasks = [asyncio.create_task(batcher.sign(dsse.PAYLOAD_RESULT, b"r%d" % i))
                 for i in range(10)]
        for _ in range(50):  # let every task reach its wait
            await asyncio.sleep(0)
        assert batcher._space is not None
        admitted = [t for t in tasks if not t.done()]
        assert len(admitted) == 10  # nothing answered while the token hangs
        # at most max_pending results are held; the others wait at the door
        assert batcher._space.locked()
        assert len(batcher._pending) <= 4
        signer.gate.set()
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert len(envs) == 10 and all(_size(e) <= 2 for e in envs)
    assert batcher.largest <= 2 and batcher.results == 10


def test_a_failed_signature_fails_every_result_of_its_batch() -> None:
    signer = GatedSigner()
    signer.fail = True
    batcher = ResultBatcher(signer, window_ms=1000, max_batch=3)

    async def run() -> list[object]:
        try:
            return list(await asyncio.gather(
                *(batcher.sign(dsse.PAYLOAD_RESULT, b"x%d" % i) for i in range(3)),
                return_exceptions=True))
        finally:
            await batcher.aclose()

    outcomes = asyncio.run(run())
    assert all(isinstance(o, TokenError) for o in outcomes), outcomes
    assert batcher.results == 0


def test_a_caller_that_gave_up_is_dropped() -> None:
    signer = GatedSigner()
    batcher = ResultBatcher(signer, window_ms=1000, max_batch=2)

    async def run() -> list[dsse.Envelope]:
        first = asyncio.create_task(batcher.sign(dsse.PAYLOAD_RESULT, b"gone"))
        await asyncio.sleep(0)
        first.cancel()
        try:
            return list(await asyncio.gather(
                batcher.sign(dsse.PAYLOAD_RESULT, b"a"), batcher.sign(dsse.PAYLOAD_RESULT, b"b")))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert [e.payload for e in envs] == [b"a", b"b"] and batcher.results == 2


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Waits (on events, not a timer we assert on) until ``condition`` holds; 5 s at most."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.005)


def test_idle_sign_a_lone_result_does_not_wait_the_window() -> None:
    """The token is idle: a lone result is signed at once, a batch of one, not after
    the 10 s window (the old behaviour could not answer within 2 s)."""
    signer = GatedSigner()
    batcher = ResultBatcher(signer, window_ms=10_000, max_batch=8)
    assert batcher.idle_sign  # the default

    async def run() -> dsse.Envelope:
        try:
            return await asyncio.wait_for(batcher.sign(dsse.PAYLOAD_RESULT, b"alone"), 2)
        finally:
            await batcher.aclose()

    env = asyncio.run(run())
    assert _size(env) == 1
    assert dsse.verify_envelope(env, PublicKeyVerifier([signer.public_key])).payload == b"alone"
    assert (batcher.batches, batcher.results, batcher.largest) == (1, 1, 1)


async def _first_held_then(
    signer: GatedSigner, batcher: ResultBatcher, n: int
) -> tuple[asyncio.Task[dsse.Envelope], list[asyncio.Task[dsse.Envelope]]]:
    """One result sent and held at the (gated) token, then ``n`` more sent."""
    first = asyncio.create_task(batcher.sign(dsse.PAYLOAD_RESULT, b"first"))
    await _until(lambda: signer.entered == 1, "the first result reached the token")
    rest = [asyncio.create_task(batcher.sign(dsse.PAYLOAD_RESULT, b"r%d" % i))
            for i in range(n)]
    return first, rest


def test_idle_sign_results_gather_while_a_batch_is_at_the_token() -> None:
    """A batch held at the token: the results that arrive meanwhile are not signed one
    by one (nor as a second batch in flight) but gather into one next batch, which
    leaves as soon as the token is idle again, long before its 10 s window."""
    signer = GatedSigner()
    signer.gate.clear()  # the first batch stays at the token until released
    batcher = ResultBatcher(signer, window_ms=10_000, max_batch=8)

    async def run() -> list[dsse.Envelope]:
        try:
            first, rest = await _first_held_then(signer, batcher, 5)
            await _until(lambda: len(batcher._pending) == 5, "five results waiting")
            for _ in range(20):
                await asyncio.sleep(0)
            # a slot is free (max_in_flight 2), yet nothing else went to the token
            assert signer.entered == 1 and len(batcher._pending) == 5
            signer.gate.set()
            return list(await asyncio.wait_for(asyncio.gather(first, *rest), 2))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert [_size(e) for e in envs] == [1, 5, 5, 5, 5, 5]
    assert signer.calls == 2
    assert (batcher.batches, batcher.results, batcher.largest) == (2, 6, 5)


def test_idle_sign_a_full_batch_leaves_while_another_is_at_the_token() -> None:
    """Whichever comes first: a batch that fills while another is at the token leaves
    at once (it takes the second slot), without waiting for the token or the window."""
    signer = GatedSigner()
    signer.gate.clear()
    batcher = ResultBatcher(signer, window_ms=10_000, max_batch=3)

    async def run() -> list[dsse.Envelope]:
        try:
            first, rest = await _first_held_then(signer, batcher, 3)
            await _until(lambda: signer.entered == 2, "the full batch reached the token")
            signer.gate.set()
            return list(await asyncio.wait_for(asyncio.gather(first, *rest), 2))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert [_size(e) for e in envs] == [1, 3, 3, 3]
    assert (batcher.batches, batcher.largest) == (2, 3)


def test_idle_sign_off_keeps_the_window() -> None:
    """``batch_idle_sign = false``: the old behaviour; a lone result on an idle token
    still waits out its window (here 10 s: not answered within 0.5 s), and results that
    arrive within the window share its batch."""
    signer = GatedSigner()
    batcher = ResultBatcher(signer, window_ms=10_000, max_batch=8, idle_sign=False)

    async def run() -> list[dsse.Envelope]:
        try:
            first = asyncio.create_task(batcher.sign(dsse.PAYLOAD_RESULT, b"first"))
            done, _ = await asyncio.wait({first}, timeout=0.5)
            assert not done and signer.entered == 0  # waiting for the window
            # fill the batch: it leaves at once, as before
            rest = [batcher.sign(dsse.PAYLOAD_RESULT, b"r%d" % i) for i in range(7)]
            return list(await asyncio.wait_for(asyncio.gather(first, *rest), 2))
        finally:
            await batcher.aclose()

    envs = asyncio.run(run())
    assert [_size(e) for e in envs] == [8] * 8 and signer.calls == 1


def test_config_bounds(tmp_path: object) -> None:
    cfg = load_config(tmp_path, env={}, overrides={"signer": {"batch_window_ms": 5,
                                                              "batch_max": 128}})
    assert (cfg.signer.batch_window_ms, cfg.signer.batch_max) == (5.0, 128)
    assert load_config(tmp_path, env={}).signer.batch_window_ms == 0  # off by default
    env = {"SIOGW_SIGNER_BATCH_WINDOW_MS": "2.5", "SIOGW_SIGNER_BATCH_MAX": "16"}
    cfg = load_config(tmp_path, env=env)
    assert (cfg.signer.batch_window_ms, cfg.signer.batch_max) == (2.5, 16)
    for bad in ({"batch_window_ms": -1}, {"batch_window_ms": 1001},
                {"batch_window_ms": "nan"}, {"batch_max": 0}, {"batch_max": 4097}):
        with pytest.raises(ConfigError, match=r"signer\.batch_"):
            load_config(tmp_path, env={}, overrides={"signer": bad})


def test_config_batch_idle_sign(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).signer.batch_idle_sign is True  # the default
    cfg = load_config(tmp_path, env={}, overrides={"signer": {"batch_idle_sign": False}})
    assert cfg.signer.batch_idle_sign is False
    (tmp_path / "siogw.toml").write_text("[signer]\nbatch_idle_sign = false\n")
    assert load_config(tmp_path, env={}).signer.batch_idle_sign is False
    env = {"SIOGW_SIGNER_BATCH_IDLE_SIGN": "true"}  # the environment wins over the file
    assert load_config(tmp_path, env=env).signer.batch_idle_sign is True
    env = {"SIOGW_SIGNER_BATCH_IDLE_SIGN": "0"}
    assert load_config(tmp_path, env=env).signer.batch_idle_sign is False
    for bad in ("maybe", 2):
        with pytest.raises(ConfigError, match=r"signer\.batch_idle_sign"):
            load_config(tmp_path, env={}, overrides={"signer": {"batch_idle_sign": bad}})
    with pytest.raises(ConfigError, match=r"signer\.batch_idle_sign"):
        load_config(tmp_path, env={"SIOGW_SIGNER_BATCH_IDLE_SIGN": "yes please"})


def test_the_gateway_builds_its_batcher_from_the_config(tmp_path: Path) -> None:
    signer = GatedSigner()
    for idle in (True, False):
        cfg = load_config(tmp_path / str(idle), env={}, overrides={"signer": {
            "batch_window_ms": 5, "batch_max": 16, "batch_idle_sign": idle}})
        built = result_batcher(cfg, signer)
        assert built is not None
        assert (built.idle_sign, built.max_batch, built.window) == (idle, 16, 0.005)
