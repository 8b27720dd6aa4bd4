"""CRLs fetched from their distribution points (issue 17, point 4; ADR 0002 section 11).

A certificate's cRLDistributionPoints (RFC 5280 §4.2.1.13) name where the CRL covering
it -- its *issuer's* CRL -- is published. :class:`CRLFetcher` learns them from the
trusted CA certificates when the gateway starts (a self-signed anchor's points name its
own CRL, an intermediate's its issuer's) and from every certificate it is asked about
(a user's certificate names its issuing CA's CRL), and from then on keeps, per issuer:

* **the CRL**, fetched over HTTP (``http``/``https`` only) within a total deadline per
  attempt (``[crl] timeout``), retried with exponential backoff (:mod:`tenacity`,
  ``[crl] attempts``), bounded in size (``[crl] max_bytes``);
* **verified before it is used**: issued under the issuer's name, signed by its key, a
  complete CRL with a nextUpdate, not dated in the future, and *newer* than the one kept
  (a higher cRLNumber, or a later thisUpdate): a forged, replayed or older CRL is refused
  and the one kept stays (:func:`signing.crl.check_published_crl`,
  :func:`signing.crl.is_newer_crl`);
* **a cache on disk**, one DER file per issuer in ``[crl] cache_dir`` (0700; written
  atomically), read back (and verified again) when the gateway starts, so a restart
  during a CA outage keeps the last good CRL;
* **a refresh before nextUpdate**: at 80 % of the thisUpdate..nextUpdate interval, or
  ``[crl] refresh_margin`` seconds before nextUpdate if earlier, by a background thread
  (:meth:`CRLFetcher.start`); a failed refresh is retried every ``[crl] retry_seconds``.

The trust store asks the fetcher (a :class:`signing.trust.CRLSource`) on every revocation
check. An issuer with a distribution point is served on its cached CRL until that CRL is
past nextUpdate + ``[crl] grace``; from then on -- or when no CRL of it was ever fetched
-- its certificates are refused with :class:`~signing.errors.CRLUnavailable`
(``CRL_UNAVAILABLE``, gRPC ``UNAVAILABLE``): fail closed for that issuer only. Health
reports each such issuer as a service of its own, ``siogw.crl.<issuer DN>``
(:meth:`CRLFetcher.health`); :meth:`CRLFetcher.status` lists every issuer's CRL times for
the metrics.

Each gateway process fetches for itself; the processes of one home share the cache
directory (atomic renames). Thread-safe.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from server.files import FILE_MODE, private_dir
from signing.crl import (
    check_published_crl,
    crl_number,
    http_distribution_points,
    is_newer_crl,
    parse_fetched_crl,
)
from signing.errors import CRLUnavailable
from siogw_api.errors import SiogwError
from siogw_api.timeutil import astana_iso, now_utc

log = logging.getLogger("siogw.server")

#: Prefix of the health service of each issuer whose CRL is fetched.
HEALTH_PREFIX = "siogw.crl."

#: Issuers whose CRLs one gateway fetches at most (each learned from a certificate
#: signed by a trusted CA); beyond it a new issuer's certificates are refused.
MAX_ISSUERS = 64

#: Refresh point: this fraction of a CRL's thisUpdate..nextUpdate interval.
REFRESH_FRACTION = 0.8

#: Longest the background thread sleeps between looks at the schedule (seconds).
MAX_SLEEP_SECONDS = 60.0

Clock = Callable[[], _dt.datetime]


def health_service_name(issuer: x509.Name) -> str:
    """The health service of an issuer's fetched CRL: ``siogw.crl.<RFC 4514 DN>``."""
    return HEALTH_PREFIX + issuer.rfc4514_string()


@dataclass(frozen=True)
class CRLStatus:
    """One issuer's fetched CRL, as health and the metrics read it."""

    issuer: str
    urls: tuple[str, ...]
    this_update: _dt.datetime | None
    next_update: _dt.datetime | None
    crl_number: int | None
    #: No CRL, or past nextUpdate + grace: the issuer's certificates are refused.
    stale: bool
    #: When the CRL kept was fetched (or read from the cache); None: never.
    fetched_at: _dt.datetime | None
    #: Why the last refresh did not bring a new CRL (None after a good one).
    last_error: str | None
    health_service: str


class FetchFailed(Exception):
    """One HTTP attempt failed; ``retry``: worth another attempt."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class _Issuer:
    def __init__(self, cert: x509.Certificate, key: str) -> None:
        self.cert = cert
        self.key = key
        self.name = cert.subject.rfc4514_string()
        self.urls: list[str] = []
        self.crl: x509.CertificateRevocationList | None = None
        self.fetched_at: _dt.datetime | None = None
        self.last_error: str | None = None
        #: The last refusal recorded (``crl.refused`` once per distinct reason).
        self.last_refusal: str | None = None
        #: Wall-clock time of the next background refresh.
        self.next_attempt: _dt.datetime = _dt.datetime.min.replace(tzinfo=_dt.UTC)
        self.lock = threading.Lock()  # one refresh of this issuer at a time


def _key(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class CRLFetcher:
    """The CRLs of the issuers with distribution points (module docstring).

    ``timeout`` (seconds per attempt), ``attempts``, ``refresh_margin``, ``retry_seconds``,
    ``grace`` and ``max_bytes`` are the ``[crl]`` settings; ``cache_dir`` is created
    private. ``clock`` replaces the wall clock (tests); ``backoff`` is tenacity's first
    wait between attempts (seconds).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        refresh_margin: float = 0.0,
        retry_seconds: float = 60.0,
        grace: float = 0.0,
        max_bytes: int = 16 * 1024 * 1024,
        clock: Clock = now_utc,
        max_issuers: int = MAX_ISSUERS,
        backoff: float = 0.2,
    ) -> None:
        #: Created (0700) when the first issuer is registered: a gateway whose CAs name
        #: no distribution point leaves no trace.
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.attempts = attempts
        self.refresh_margin = _dt.timedelta(seconds=refresh_margin)
        self.retry = _dt.timedelta(seconds=retry_seconds)
        self.grace = _dt.timedelta(seconds=grace)
        self.max_bytes = max_bytes
        self.clock = clock
        self.max_issuers = max_issuers
        self.backoff = backoff
        self._issuers: dict[str, _Issuer] = {}
        self._lock = threading.Lock()
        #: Bumped whenever a CRL kept changes: the trust material rebuilds its store.
        self.generation = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        #: Record first: called with ``("crl.updated", details)`` *before* a newer CRL
        #: replaces the one kept (if it raises, the CRL is not taken and the refresh is
        #: tried again), and with ``("crl.refused", details)`` when a CRL received is
        #: refused (once per distinct reason). The gateway wires the audit log here.
        self.on_event: Callable[[str, dict[str, object]], None] | None = None
        #: Called by the background thread when an issuer's CRL goes stale (True) or is
        #: current again (False): ``(issuer DN, stale, cause)``; the Journal of
        #: emergencies (:class:`server.emergency_watch.EmergencyWatch`).
        self.on_stale: Callable[[str, bool, str], None] | None = None
        self._stale_reported: dict[str, bool] = {}

    # -- what is fetched ------------------------------------------------------------------
    def register_ca_certificates(self, certs: Sequence[x509.Certificate]) -> None:
        """Learn the distribution points of trusted CA certificates (at start): each names
        the CRL of the certificate's issuer, found among ``certs`` (a self-signed one is
        its own issuer); a point whose issuer is not among them is ignored (there is no
        key to verify its CRL with). The cache is read for each issuer; nothing is
        fetched here (:meth:`refresh_due` or the background thread does)."""
        for cert in certs:
            urls = http_distribution_points(cert)
            if not urls:
                continue
            issuer = next((c for c in certs
                           if c.subject == cert.issuer and _signed_by(cert, c)), None)
            if issuer is None:
                log.info("CRL distribution point of %s ignored: its issuer %s is not a "
                         "configured trust anchor", cert.subject.rfc4514_string(),
                         cert.issuer.rfc4514_string())
                continue
            self._register(issuer, urls)

    def _register(self, issuer: x509.Certificate, urls: Iterable[str]) -> _Issuer:
        key = _key(issuer)
        with self._lock:
            state = self._issuers.get(key)
            if state is None:
                if len(self._issuers) >= self.max_issuers:
                    raise CRLUnavailable(
                        f"the CRL of {issuer.subject.rfc4514_string()} cannot be fetched: "
                        f"the gateway already fetches the CRLs of {self.max_issuers} issuers")
                state = _Issuer(issuer, key)
                self._issuers[key] = state
                fresh = True
            else:
                fresh = False
            for url in urls:
                if url not in state.urls and len(state.urls) < 8:
                    state.urls.append(url)
        if fresh:
            private_dir(self.cache_dir)
            self._load_cache(state)
            if self._started:
                self._launch()
            self._wake.set()  # the background thread looks at the new issuer's schedule
        return state

    # -- the trust store's source -----------------------------------------------------------
    def __call__(
        self, cert: x509.Certificate, issuer: x509.Certificate, at: _dt.datetime
    ) -> list[x509.CertificateRevocationList]:
        """The fetched CRL of ``issuer`` for checking ``cert`` at ``at`` (a
        :class:`signing.trust.CRLSource`): ``[]`` when ``issuer`` has no distribution
        point known; :class:`CRLUnavailable` when it has one but no CRL usable at ``at``.
        A point named by ``cert`` is learned; an issuer never fetched is fetched now, once
        per ``retry_seconds``."""
        state = self._issuers.get(_key(issuer))
        urls = http_distribution_points(cert)
        if state is None and not urls:
            return []
        if state is None or any(u not in state.urls for u in urls):
            state = self._register(issuer, urls)
        if state.crl is None and self.clock() >= state.next_attempt:
            self.refresh(state.key, only_if_missing=True)
        crl = state.crl
        if crl is None:
            raise CRLUnavailable(
                f"no CRL of {state.name} could be fetched from its distribution point "
                f"{state.urls[0]}: its certificates are refused until one is",
                detail=state.last_error)
        nxt = crl.next_update_utc
        if nxt is not None and at > nxt + self.grace:
            raise CRLUnavailable(
                f"the CRL of {state.name} is stale (nextUpdate {astana_iso(nxt)}) and no "
                f"fresh one could be fetched from {state.urls[0]}: its certificates are "
                "refused until one is", detail=state.last_error)
        return [crl]

    # -- fetching ---------------------------------------------------------------------------
    def refresh(self, key: str, *, only_if_missing: bool = False) -> bool:
        """Fetch the CRL of one issuer now (every URL in turn until one gives a CRL that
        verifies); True if a newer CRL was taken. Failures are logged and kept in
        :meth:`status`; the CRL kept stays. ``only_if_missing``: unless another thread
        fetched one (or failed to) while this one waited for the issuer's lock."""
        state = self._issuers[key]
        with state.lock:
            if only_if_missing and (state.crl is not None or
                                    self.clock() < state.next_attempt):
                return False
            errors: list[str] = []
            for url in list(state.urls):
                try:
                    data = self._get(url)
                except FetchFailed as exc:
                    errors.append(f"{url}: {exc}")
                    continue
                try:
                    crl = parse_fetched_crl(data)
                    check_published_crl(crl, state.cert, now=self.clock())
                    newer = state.crl is None or is_newer_crl(crl, state.crl)
                except SiogwError as exc:
                    errors.append(f"{url}: {exc.message}")
                    self._refused(state, url, exc.message)
                    continue
                if newer and not self._record_update(state, url, crl, errors):
                    continue
                now = self.clock()
                if newer:
                    self._write_cache(state, data)
                    with self._lock:
                        state.crl, state.fetched_at = crl, now
                        self.generation += 1
                    log.info("CRL of %s from %s: thisUpdate %s, nextUpdate %s", state.name, url,
                             astana_iso(crl.last_update_utc),
                             astana_iso(crl.next_update_utc) if crl.next_update_utc else "-")
                state.last_error = None
                state.next_attempt = self._next_attempt(state, now)
                return newer
            state.last_error = "; ".join(errors) or "no distribution point"
            state.next_attempt = self.clock() + self.retry
            log.warning("CRL of %s not refreshed (the one kept stays in use): %s",
                        state.name, state.last_error)
            return False

    def _record_update(self, state: _Issuer, url: str, crl: x509.CertificateRevocationList,
                       errors: list[str]) -> bool:
        """``crl.updated`` through :attr:`on_event` before the CRL is taken; False (and
        the reason in ``errors``) when it cannot be recorded."""
        if self.on_event is None:
            return True
        try:
            self.on_event("crl.updated", {
                "issuer": state.name, "url": url, "crl_number": crl_number(crl),
                "this_update": astana_iso(crl.last_update_utc),
                "next_update": (astana_iso(crl.next_update_utc)
                                if crl.next_update_utc is not None else None),
                "revoked": len(crl),
            })
        except Exception as exc:  # fail closed: the CRL kept stays, tried again later
            log.warning("the new CRL of %s cannot be recorded (%s): not taken", state.name,
                        exc)
            errors.append(f"{url}: the new CRL could not be recorded in the audit log")
            return False
        return True

    def _refused(self, state: _Issuer, url: str, reason: str) -> None:
        """``crl.refused`` once per distinct reason (a forged CRL served for days is one
        record, not one per retry)."""
        if self.on_event is None or state.last_refusal == f"{url}: {reason}":
            return
        try:
            self.on_event("crl.refused", {"issuer": state.name, "url": url, "reason": reason})
            state.last_refusal = f"{url}: {reason}"
        except Exception as exc:
            log.warning("the refused CRL of %s cannot be recorded: %s", state.name, exc)

    def _next_attempt(self, state: _Issuer, now: _dt.datetime) -> _dt.datetime:
        crl = state.crl
        if crl is None or crl.next_update_utc is None:
            return now + self.retry
        this, nxt = crl.last_update_utc, crl.next_update_utc
        point = this + (nxt - this) * REFRESH_FRACTION
        if self.refresh_margin:
            point = min(point, nxt - self.refresh_margin)
        if point <= now:  # the CA has not published a newer one yet: ask again later
            return now + self.retry
        return point

    def _get(self, url: str) -> bytes:
        """GET ``url`` within the deadline, retried (tenacity) on transport errors,
        timeouts and 5xx answers."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=5.0),
            retry=retry_if_exception(lambda e: isinstance(e, FetchFailed) and e.retry),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._get_once(url)
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _get_once(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=True,
                              max_redirects=3, trust_env=False) as client, client.stream(
                    "GET", url, headers={"Accept": "application/pkix-crl"}) as resp:
                if resp.status_code != 200:
                    raise FetchFailed(f"HTTP status {resp.status_code}",
                                      retry=resp.status_code >= 500)
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchFailed(f"the CRL is larger than {self.max_bytes} bytes",
                                      retry=False)
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchFailed(f"the CRL is larger than {self.max_bytes} bytes",
                                          retry=False)
                    if time.monotonic() > deadline:
                        raise FetchFailed(f"not received within {self.timeout:g} s", retry=True)
                return bytes(body)
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"no answer within {self.timeout:g} s", retry=True) from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"cannot be fetched ({type(exc).__name__})", retry=True) from exc

    # -- the cache ----------------------------------------------------------------------------
    def _cache_file(self, state: _Issuer) -> Path:
        return self.cache_dir / f"{state.key[:40]}.crl"

    def _write_cache(self, state: _Issuer, data: bytes) -> None:
        path = self._cache_file(state)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".crl-", dir=self.cache_dir)
            try:
                os.fchmod(fd, FILE_MODE)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # the CRL is used anyway; only a restart would miss it
            log.warning("CRL of %s cannot be cached in %s: %s", state.name, path, exc)

    def _load_cache(self, state: _Issuer) -> None:
        path = self._cache_file(state)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cached CRL %s cannot be read: %s", path, exc)
            return
        try:
            crl = parse_fetched_crl(data)
            check_published_crl(crl, state.cert, now=self.clock())
        except SiogwError as exc:
            log.warning("cached CRL %s is refused (%s); it will be fetched again", path,
                        exc.message)
            return
        with self._lock:
            state.crl = crl
            state.fetched_at = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)
            self.generation += 1
        state.next_attempt = self._next_attempt(state, self.clock())

    # -- schedule -----------------------------------------------------------------------------
    def refresh_due(self) -> int:
        """Refresh every issuer whose refresh time has come; how many got a newer CRL."""
        now = self.clock()
        due = [s.key for s in list(self._issuers.values()) if s.next_attempt <= now]
        return sum(1 for key in due if self.refresh(key))

    def refresh_all(self) -> int:
        """Refresh every issuer now, due or not; how many got a newer CRL."""
        return sum(1 for key in list(self._issuers) if self.refresh(key))

    def start(self) -> None:
        """Refresh in a background thread (daemon) until :meth:`close`; the thread is
        started once there is an issuer to refresh."""
        self._started = True
        if self._issuers:
            self._launch()

    def _launch(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="siogw-crl-fetch",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh_due()
                self.report_staleness()
            except Exception:  # never let the refresher die: the next round tries again
                log.exception("CRL refresh failed")
            states = list(self._issuers.values())
            now = self.clock()
            times = [s.next_attempt for s in states]
            # also wake when a CRL goes stale, to report it
            times += [s.crl.next_update_utc + self.grace for s in states
                      if s.crl is not None and s.crl.next_update_utc is not None
                      and s.crl.next_update_utc + self.grace > now]
            wait = min([(t - now).total_seconds() for t in times], default=MAX_SLEEP_SECONDS)
            self._wake.wait(max(0.05, min(wait, MAX_SLEEP_SECONDS)))
            self._wake.clear()

    def close(self) -> None:
        """Stop the background thread (waits for a refresh in progress)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * self.attempts + 10)
            self._thread = None

    def report_staleness(self) -> None:
        """Tell :attr:`on_stale` of every issuer whose CRL went stale or fresh again
        since the last report (the background thread calls it each round)."""
        if self.on_stale is None:
            return
        for status in self.status():
            if self._stale_reported.get(status.issuer, False) == status.stale:
                continue
            nxt = astana_iso(status.next_update) if status.next_update else "none"
            cause = (f"the CRL of {status.issuer} is stale (nextUpdate {nxt}) and could not "
                     f"be refreshed from {', '.join(status.urls)}: "
                     f"{status.last_error or 'no newer CRL published'}")
            self.on_stale(status.issuer, status.stale, cause[:1000])
            self._stale_reported[status.issuer] = status.stale

    # -- reports ------------------------------------------------------------------------------
    def _stale(self, state: _Issuer, now: _dt.datetime) -> bool:
        crl = state.crl
        if crl is None or crl.next_update_utc is None:
            return True
        return now > crl.next_update_utc + self.grace

    def status(self) -> list[CRLStatus]:
        """Every issuer's fetched CRL (for health and the metrics), by issuer name."""
        now = self.clock()
        out = []
        for state in sorted(self._issuers.values(), key=lambda s: s.name):
            crl = state.crl
            out.append(CRLStatus(
                issuer=state.name,
                urls=tuple(state.urls),
                this_update=crl.last_update_utc if crl is not None else None,
                next_update=crl.next_update_utc if crl is not None else None,
                crl_number=_number(crl),
                stale=self._stale(state, now),
                fetched_at=state.fetched_at,
                last_error=state.last_error,
                health_service=health_service_name(state.cert.subject),
            ))
        return out

    def health(self) -> dict[str, bool]:
        """``{siogw.crl.<issuer>: serving}``: not serving while that issuer's CRL is
        missing or past nextUpdate + grace (its certificates are refused)."""
        return {s.health_service: not s.stale for s in self.status()}


def _number(crl: x509.CertificateRevocationList | None) -> int | None:
    return crl_number(crl) if crl is not None else None
