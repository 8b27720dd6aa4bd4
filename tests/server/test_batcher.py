"""server.batcher.ResultBatcher (issue 18, ADR 0011): flushes a full batch, keeps its
queue bounded (callers past ``max_pending`` wait), fails every result of a batch whose
signature failed, and drops a caller that gave up. A software key stands in for the
token here (the batcher only calls ``Signer.sign``); the SoftHSM path is covered over a
real gateway in ``tests/clients/test_batch_signing.py``. No timing is asserted: the
window is long and every batch here leaves because it is full or by events."""

from __future__ import annotations

import asyncio
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

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

    def sign(self, data: bytes) -> bytes:
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
