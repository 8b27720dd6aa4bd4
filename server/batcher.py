"""Batch signing of results (issue 18, ADR 0011): one token signature per batch.

:class:`ResultBatcher` collects the results that are ready within a short window
(``[signer] batch_window_ms``) or until ``batch_max`` are waiting, and has the gateway's
token sign their Merkle root once (:func:`signing.dsse.sign_batch`); each caller gets its
own envelope back, carrying its leaf index, inclusion path and the signed statement.

* **Sign at once when the token is idle** (``[signer] batch_idle_sign``, the default;
  natural batching, as a database's group commit does). While no batch is at the token,
  whatever is waiting leaves at once: a lone result is a batch of one and does not wait
  out the window. While a batch is at the token, results gather, and the next batch
  leaves when the window has passed, when it is full, or when the token is idle again
  (no batch left in flight), whichever comes first. Off, every batch waits out the window
  unless it fills first.

* **Bounded.** At most ``max_pending`` results wait or are being signed; a caller past
  that waits for room (backpressure on the query path, never an unbounded queue). At
  most ``max_in_flight`` batches are at the token at once.
* **Off the event loop.** The tree and the token signature run in a worker thread, as a
  single result's signature does: a token that hangs never stalls the loop.
* **Fail closed.** A signing failure fails every result of that batch with the token's
  error (the caller's emergency watch sees it as before); nothing is answered unsigned.
* A caller that gave up (its call was cancelled) is dropped from a batch not yet
  signed; one already at the token simply has its envelope thrown away.

The window starts when the first result of a batch arrives: a result waits at most the
window (then for a free slot at the token), and a full batch leaves at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass

from signing import dsse
from signing.api import Signer
from signing.batch import MAX_BATCH_SIZE
from siogw_api.timeutil import astana_iso

#: Results waiting or being signed, at most, per batch of ``batch_max`` (times this).
PENDING_BATCHES = 4
#: Batches at the token at once.
MAX_IN_FLIGHT = 2


@dataclass
class _Item:
    payload_type: str
    payload: bytes
    future: asyncio.Future[dsse.Envelope]


class ResultBatcher:
    """Signs results in batches on ``signer``; see the module docstring.

    Created outside a running loop is fine: the collecting task starts with the first
    :meth:`sign` call, on the loop that makes it.
    """

    def __init__(
        self,
        signer: Signer,
        *,
        window_ms: float,
        max_batch: int,
        max_pending: int | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        idle_sign: bool = True,
    ) -> None:
        if window_ms <= 0:
            raise ValueError("a batcher needs a window above 0 ms")
        if not 1 <= max_batch <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_max must be between 1 and {MAX_BATCH_SIZE}")
        self.signer = signer
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.max_pending = max_pending or max_batch * PENDING_BATCHES
        self.max_in_flight = max_in_flight
        #: Sign at once while no batch is at the token (see the module docstring).
        self.idle_sign = idle_sign
        self._pending: collections.deque[_Item] = collections.deque()
        self._space: asyncio.Semaphore | None = None
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        #: Set when the gathering batch may leave before its window: it is full, or (with
        #: ``idle_sign``) the last batch at the token has finished.
        self._leave: asyncio.Event | None = None
        #: Batches at the token (taken a slot, not yet finished).
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        self._signing: set[asyncio.Task[None]] = set()
        #: Batches signed and results they held (for the bench and the tests).
        self.batches = 0
        self.results = 0
        self.largest = 0

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._space = asyncio.Semaphore(self.max_pending)
            self._slots = asyncio.Semaphore(self.max_in_flight)
            self._wake = asyncio.Event()
            self._leave = asyncio.Event()
            self._in_flight = 0
            self._task = asyncio.get_running_loop().create_task(
                self._collect(), name="siogw-result-batcher"
            )

    async def sign(self, payload_type: str, payload: bytes) -> dsse.Envelope:
        """The envelope of ``payload``, batch-signed; waits for room when the batcher is
        full. Raises the token's error if its batch could not be signed."""
        self._start()
        assert self._space is not None and self._wake is not None and self._leave is not None
        await self._space.acquire()
        try:
            future: asyncio.Future[dsse.Envelope] = asyncio.get_running_loop().create_future()
            self._pending.append(_Item(payload_type, payload, future))
            if len(self._pending) >= self.max_batch:
                self._leave.set()
            self._wake.set()
            return await future
        finally:
            self._space.release()

    def _may_leave(self) -> bool:
        """Whether the gathering batch leaves without waiting for its window."""
        return len(self._pending) >= self.max_batch or (
            self.idle_sign and self._in_flight == 0)

    async def _collect(self) -> None:
        assert self._wake is not None and self._leave is not None and self._slots is not None
        while True:
            await self._wake.wait()
            if not self._pending:
                self._wake.clear()
                continue
            self._leave.clear()
            if not self._may_leave():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.window):
                        await self._leave.wait()
            await self._slots.acquire()
            batch: list[_Item] = []
            while self._pending and len(batch) < self.max_batch:
                item = self._pending.popleft()
                if not item.future.done():  # a caller that gave up is dropped
                    batch.append(item)
            if not self._pending:
                self._wake.clear()
            if not batch:
                self._slots.release()
                continue
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._sign(batch))
            self._signing.add(task)
            task.add_done_callback(self._signing.discard)

    async def _sign(self, batch: list[_Item]) -> None:
        assert self._slots is not None and self._leave is not None
        try:
            envelopes = await asyncio.to_thread(
                dsse.sign_batch,
                [(item.payload_type, item.payload) for item in batch],
                self.signer,
                at=astana_iso(),
            )
        except Exception as exc:  # the token's error goes to every caller of the batch
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._slots.release()
            self._in_flight -= 1
            if self.idle_sign and self._in_flight == 0:
                self._leave.set()  # the token is idle: what gathered leaves now
        self.batches += 1
        self.results += len(batch)
        self.largest = max(self.largest, len(batch))
        for item, envelope in zip(batch, envelopes, strict=True):
            if not item.future.done():
                item.future.set_result(envelope)

    async def aclose(self) -> None:
        """Stop collecting; results still waiting fail (``CancelledError``)."""
        tasks = [t for t in (self._task, *self._signing) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.cancel()
        self._task = None
