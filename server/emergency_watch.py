"""Feeding the Journal of emergencies by itself (§14): the hooks and their thread.

:class:`EmergencyWatch` takes reports from the places a failure shows --

* the audit log, polled (:meth:`audit.AuditLog.health`): ``failed`` (the log failed
  closed) is the emergency ``audit_log``; ``degraded`` (segments cannot be sealed: the
  audit key's token fails) is ``signer:audit``; ``ok`` ends both;
* the gateway's result signer (:mod:`server.query` calls :meth:`signer_failed` when
  signing an answer raises a :class:`~siogw_api.errors.SigningError`, and
  :meth:`signer_ok` after each signed answer): ``signer:gateway``;
* each upstream's circuit breaker (:attr:`server.resources.remote.CircuitBreaker.
  on_state_change`): opening is ``upstream:<url>``, closing again ends it;
* each issuer's CRL fetched from its distribution point (:mod:`server.crlfetch`):
  going stale is ``crl:<issuer DN>``, a current CRL again ends it --

and writes them to :class:`server.ops.autojournal.AutoJournal` on its own thread, so a
hook never blocks the event loop or the call that noticed the failure (it only queues).
The same thread appends the entries' audit records once the log works
(:meth:`AutoJournal.flush`; why they wait: that module's docstring). At start the open
automatic entries are read back, so a failure that outlived the previous run is resolved
by the first poll that sees the component working.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from server.ops.autojournal import AutoJournal
from siogw_api.errors import SiogwError

log = logging.getLogger("siogw.server.emergencies")

AUDIT_LOG = "audit_log"
AUDIT_SIGNER = "signer:audit"
GATEWAY_SIGNER = "signer:gateway"

#: (component, failing, cause) -- one report.
_Report = tuple[str, bool, str]


class EmergencyWatch:
    """See the module docstring."""

    def __init__(
        self,
        journal: AutoJournal,
        *,
        audit_health: Callable[[], Any] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.journal = journal
        self.audit_health = audit_health
        self.poll_seconds = poll_seconds
        self._queue: queue.Queue[_Report | None] = queue.Queue()
        self._failing: set[str] | None = None  # read from the database at the first run
        self._flush_needed = True
        self._signer_failing = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- the hooks (any thread; never block) ------------------------------------------
    def report(self, component: str, *, failing: bool, cause: str = "") -> None:
        self._queue.put((component, failing, cause))

    def signer_failed(self, exc: BaseException) -> None:
        self._signer_failing = True
        cause = exc.message if isinstance(exc, SiogwError) else "the signer failed"
        self.report(GATEWAY_SIGNER, failing=True,
                    cause=f"the gateway's result signer failed: {cause}")

    def signer_ok(self) -> None:
        if self._signer_failing:  # one flag read on the hot path
            self._signer_failing = False
            self.report(GATEWAY_SIGNER, failing=False)

    def crl_changed(self, issuer: str, stale: bool, cause: str) -> None:
        """An issuer's fetched CRL went stale (its certificates are refused) or is current
        again (:attr:`server.crlfetch.CRLFetcher.on_stale`): ``crl:<issuer DN>``."""
        self.report(f"crl:{issuer}", failing=stale, cause=cause)

    def breaker_changed(self, name: str, opened: bool, failures: int) -> None:
        """A circuit breaker opened (``opened``) or closed again."""
        self.report(f"upstream:{name}", failing=opened,
                    cause=f"upstream {name} unavailable: circuit breaker opened after "
                          f"{failures} consecutive failure(s)")

    # --- the work (the watch's thread, or a test calling run_once) --------------------
    def _apply(self, component: str, failing: bool, cause: str) -> None:
        assert self._failing is not None
        if failing and component not in self._failing:
            self.journal.failed(component, cause)
            self._failing.add(component)
            self._flush_needed = True
        elif not failing and component in self._failing:
            self.journal.recovered(component)
            self._failing.discard(component)
            self._flush_needed = True

    def _poll_audit(self) -> bool:
        """Report the audit log's state; True when it takes records."""
        if self.audit_health is None:
            return True
        health = self.audit_health()
        state, reason = health.state, health.reason or ""
        if state == "failed":
            self._apply(AUDIT_LOG, True, f"the audit log failed closed: {reason}")
            return False
        if state == "closed":
            return False
        self._apply(AUDIT_LOG, False, "")
        if state == "degraded":
            self._apply(AUDIT_SIGNER, True, f"the audit key cannot seal the log: {reason}")
        else:
            self._apply(AUDIT_SIGNER, False, "")
        return True

    def run_once(self) -> None:
        """Apply the queued reports, poll the audit log, flush what waits for it."""
        if self._failing is None:
            self._failing = self.journal.open_components()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                continue
            try:
                self._apply(*item)
            except Exception:
                self._queue.put(item)  # the database is down: try again at the next run
                raise
        if self._poll_audit() and self._flush_needed:
            self.journal.flush()
            self._flush_needed = self.journal.pending() > 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the database or the log: the next poll tries again
                log.warning("journal of emergencies: %s", exc)
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="siogw-emergencies",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last run (reports queued so far are written)."""
        if self._thread is None:
            return
        self._stop.set()
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        try:
            self.run_once()
        except Exception as exc:
            log.warning("journal of emergencies at stop: %s", exc)
