"""Certificate checking: the gateway's one chain validation, cached where it may be.

:class:`TrustMaterial` holds the trust anchors and CRL files named by the config (CRL
files are re-read when they change) and the database revocation store. Every configured
file is read when it is built: an anchor or CRL file that is missing, unreadable or not a
certificate/CRL is a :class:`~siogw_api.errors.ConfigError` at start-up -- a missing CRL
must not quietly mean "no revocation check". While running, a CRL file that disappears or
cannot be parsed keeps the last good copy in use (logged), so a CA publishing
non-atomically never switches checks off; that copy goes stale at its nextUpdate like any
other, and :meth:`TrustMaterial.check_crls_current` (the health check) then reports it. its
:meth:`TrustMaterial.validate` is the gateway's one certificate check. The expensive,
immutable part of a validation (path building, chain signatures, extensions, key usage)
is kept per certificate in a :class:`ChainCache` (bounded in entries and in bytes) as a
:class:`ValidatedChain`;
revocation (DB store and CRLs, with the CRLs' own freshness) is checked on every call,
so a revocation is effective at once. :meth:`TrustMaterial.live` is the one trust store
the operations domain is given: a :class:`LiveTrustStore` that asks the material for its
current store on every call, so the operations domain and the gateway see the same CRLs
and a new CRL file reaches both at once (no snapshot taken at start). :class:`ValidatingTrust` lets
:class:`signing.trust.CertificateVerifier` verify a DSSE envelope through that check,
without validating again a certificate already validated in the same call.

Nothing here knows about gRPC, sessions or servicers (:mod:`server.context` uses it).
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.crlfetch import CRLFetcher, CRLStatus
from server.store.certificates import fingerprint
from signing.api import Algorithm, certificate_public_key
from signing.crl import crl_number, load_crl
from signing.errors import BadSignature, StaleCRL
from signing.trust import TrustStore, describe, load_certificates
from signing.verify import verify_with_key
from siogw_api.errors import ConfigError, InputError, SiogwError
from siogw_api.timeutil import astana_iso, now_utc

log = logging.getLogger("siogw.server")


@dataclass(frozen=True)
class ValidatedChain:
    """The immutable outcome of a full chain validation of one certificate.

    ``path`` is leaf first, anchor last. ``not_before``/``not_after`` bound the window in
    which *every* certificate of the path is within its validity; outside it the entry is
    worthless and the next check validates in full again.
    """

    fingerprint: str
    path: tuple[x509.Certificate, ...]
    not_before: _dt.datetime
    not_after: _dt.datetime

    @property
    def certificate(self) -> x509.Certificate:
        return self.path[0]

    def covers(self, at: _dt.datetime) -> bool:
        return self.not_before <= at <= self.not_after


class ChainCache:
    """A bounded LRU of :class:`ValidatedChain` by certificate fingerprint (SHA-256 of DER).

    Only what cannot change for a given certificate and trust-anchor set is cached: the
    parsed objects, the chain signatures, critical extensions, CA constraints and key
    usage. An entry is dropped once the time checked is outside the validity of its path.
    Revocation (the DB revocation store and the CRLs) is never cached: see
    :meth:`TrustMaterial.validate`. Thread-safe.

    Bounded twice: at most ``max_entries`` chains and at most ``max_bytes`` bytes, each
    entry charged twice the DER of every certificate of its path (the DER kept inside
    each parsed object, and the objects themselves; anchors and intermediates are
    charged per entry even when shared, so the bound is conservative). The default,
    4 MiB, holds ~1,000 typical chains (a leaf and a root of ~1 KiB each); a chain
    costing more than ``max_item_bytes`` (64 KiB) is validated on every use and never
    kept, so a few huge certificates cannot flush the cache either. :attr:`bytes_used` is the
    cache's own accounting.
    """

    def __init__(
        self,
        max_entries: int = 4096,
        max_bytes: int = 4 * 1024 * 1024,
        max_item_bytes: int = 64 * 1024,
    ) -> None:
        if max_entries < 1 or max_bytes < 1 or max_item_bytes < 1:
            raise ConfigError("the certificate cache needs room for at least one entry")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes, max_bytes)
        self._entries: OrderedDict[str, tuple[ValidatedChain, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    @staticmethod
    def cost(chain: ValidatedChain) -> int:
        """What an entry is charged: twice the DER of every certificate of its path."""
        return sum(2 * len(c.public_bytes(serialization.Encoding.DER)) for c in chain.path)

    def get(self, fp: str, at: _dt.datetime) -> ValidatedChain | None:
        with self._lock:
            hit = self._entries.get(fp)
            if hit is None:
                return None
            chain, cost = hit
            if not chain.covers(at):
                del self._entries[fp]
                self._used -= cost
                return None
            self._entries.move_to_end(fp)
            return chain

    def put(self, chain: ValidatedChain) -> None:
        cost = self.cost(chain)
        if cost > self.max_item_bytes:
            return
        with self._lock:
            old = self._entries.pop(chain.fingerprint, None)
            if old is not None:
                self._used -= old[1]
            self._entries[chain.fingerprint] = (chain, cost)
            self._used += cost
            while len(self._entries) > self.max_entries or self._used > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped

    @property
    def bytes_used(self) -> int:
        return self._used

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0

    def __len__(self) -> int:
        return len(self._entries)


class TrustMaterial:
    """Anchors and CRLs from files; CRL files are re-read when they change on disk.

    :meth:`validate` is the gateway's one certificate check. The expensive, immutable
    part of a validation (path building and chain signatures, extensions, key usage) is
    kept in a :class:`ChainCache`; revocation (DB store + CRLs, including the CRLs'
    own freshness) is checked on every call, so a revocation is effective at once.
    """

    def __init__(
        self,
        anchors: Sequence[Path],
        crls: Sequence[Path],
        revocations: Any,
        *,
        cache: ChainCache | None = None,
        crl_fetcher: CRLFetcher | None = None,
        crl_grace: _dt.timedelta = _dt.timedelta(0),
    ) -> None:
        self.anchor_paths = tuple(anchors)
        #: CRLs fetched from distribution points (``[crl]``); None: files only.
        self.crl_fetcher = crl_fetcher
        #: How long past nextUpdate a CRL is still used (``[crl] grace``).
        self.crl_grace = crl_grace
        self.crl_paths = tuple(crls)
        self.revocations = revocations
        self.cache = cache if cache is not None else ChainCache()
        self._anchors: list[x509.Certificate] = []
        for path in self.anchor_paths:
            try:
                self._anchors.extend(load_certificates(path.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"cannot read trust anchor {path}", detail=str(exc)) from exc
            except SiogwError as exc:
                raise ConfigError(f"trust anchor {path} is not a PEM or DER certificate",
                                  detail=exc.diagnostics()) from exc
        self._crl_stamp: tuple[float, ...] | None = None
        #: The last good CRL of each configured file (same order as ``crl_paths``).
        self._crl_by_path: list[x509.CertificateRevocationList] = []
        for path in self.crl_paths:
            try:
                self._crl_by_path.append(load_crl(path.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"cannot read CRL file {path} (trust.crls)",
                                  detail=exc.strerror or type(exc).__name__) from exc
            except SiogwError as exc:
                raise ConfigError(f"CRL file {path} (trust.crls) is not a PEM or DER CRL") \
                    from exc
        self._crl_stamp = self._stamps()
        self._crls: list[x509.CertificateRevocationList] = list(self._crl_by_path)
        self._store: TrustStore | None = None
        self._live: LiveTrustStore | None = None
        self._lock = threading.Lock()
        #: fingerprint -> (from, until): the current CRLs list no certificate of that
        #: chain and are all current in that window. Cleared whenever the CRLs change.
        self._crl_clean: dict[str, tuple[_dt.datetime, _dt.datetime]] = {}
        self._fetch_generation = -1
        if crl_fetcher is not None:
            crl_fetcher.register_ca_certificates(self._anchors)

    def crl_status(self) -> list[CRLStatus]:
        """Every CRL in use, for the metrics (issuer, thisUpdate, nextUpdate, stale, ...):
        first each issuer's CRL fetched from its distribution points, then each
        ``trust.crls`` file (``urls`` empty, ``health_service`` empty, re-read if it
        changed on disk)."""
        fetched = self.crl_fetcher.status() if self.crl_fetcher is not None else []
        with self._lock:
            if self._load_crls():
                self._store = None
            files = list(self._crls)
        now = now_utc()
        return fetched + [
            CRLStatus(
                issuer=crl.issuer.rfc4514_string(), urls=(),
                this_update=crl.last_update_utc, next_update=crl.next_update_utc,
                crl_number=crl_number(crl),
                stale=(crl.next_update_utc is None
                       or now > crl.next_update_utc + self.crl_grace),
                fetched_at=None, last_error=None, health_service="",
            )
            for crl in files
        ]

    def crl_health(self) -> dict[str, bool]:
        """``{siogw.crl.<issuer>: serving}`` of each issuer whose CRL is fetched."""
        return self.crl_fetcher.health() if self.crl_fetcher is not None else {}

    def start(self) -> None:
        """Start refreshing the fetched CRLs in the background (if any are fetched)."""
        if self.crl_fetcher is not None:
            self.crl_fetcher.start()

    def close(self) -> None:
        """Stop the background refresh of fetched CRLs."""
        if self.crl_fetcher is not None:
            self.crl_fetcher.close()

    def _stamps(self) -> tuple[float, ...]:
        stamps = []
        for path in self.crl_paths:
            try:
                stamps.append(path.stat().st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def _load_crls(self) -> bool:
        """Re-read the CRL files if they changed; True if they did. A file that is gone
        or does not parse keeps its last good CRL (module docstring)."""
        stamps = self._stamps()
        if stamps == self._crl_stamp:
            return False
        for i, path in enumerate(self.crl_paths):
            try:
                self._crl_by_path[i] = load_crl(path.read_bytes())
            except (OSError, SiogwError) as exc:
                log.warning("CRL file %s cannot be read (%s): the last good copy stays in use",
                            path, exc)
        self._crls, self._crl_stamp = list(self._crl_by_path), stamps
        return True

    def check_crls_current(self, at: _dt.datetime | None = None) -> None:
        """:class:`~signing.errors.StaleCRL` unless every configured CRL (re-read if its
        file changed) is current at ``at`` (default: now): ``thisUpdate <= at <=
        nextUpdate``. The health check: with a stale CRL every login fails closed
        (``STALE_CRL``), so the gateway does not report SERVING."""
        when = at if at is not None else now_utc()
        with self._lock:
            if self._load_crls():
                self._store = None  # rebuilt with the new CRLs on the next check
            crls = list(self._crls)
        for crl in crls:
            who = crl.issuer.rfc4514_string()
            nxt = crl.next_update_utc
            if when < crl.last_update_utc:
                raise StaleCRL(f"CRL of {who} is not yet valid: thisUpdate "
                               f"{astana_iso(crl.last_update_utc)}")
            if nxt is None or when > nxt + self.crl_grace:
                until = astana_iso(nxt) if nxt is not None else "none"
                raise StaleCRL(f"CRL of {who} is stale: nextUpdate {until}")

    def crl_validity(self) -> list[tuple[str, _dt.datetime, _dt.datetime | None]]:
        """``(issuer, thisUpdate, nextUpdate)`` of each CRL in use, fetched from a
        distribution point or a ``trust.crls`` file (metrics); an issuer with no CRL yet
        is left out."""
        return [(st.issuer, st.this_update, st.next_update) for st in self.crl_status()
                if st.this_update is not None]

    def store(self) -> TrustStore:
        """The current :class:`TrustStore` (rebuilt when a CRL file changes).

        A snapshot: keep :meth:`live` instead when the store outlives one call.
        """
        return self._current()[0]

    def live(self) -> LiveTrustStore:
        """The live view of this material's trust store (one per material).

        Builds the current store first, so material that cannot serve (no anchors, an
        unreadable CRL) fails here, at start-up, not at the first use of the view.
        """
        self.store()
        if self._live is None:
            self._live = LiveTrustStore(self)
        return self._live

    def _current(self) -> tuple[TrustStore, dict[str, tuple[_dt.datetime, _dt.datetime]]]:
        """The current store and the CRL memo that belongs to exactly its CRLs."""
        if not self._anchors:
            raise ConfigError("no trust anchors configured (trust.anchors)")
        fetched = self.crl_fetcher.generation if self.crl_fetcher is not None else 0
        with self._lock:
            if self._load_crls() or self._store is None or fetched != self._fetch_generation:
                self._store = TrustStore(
                    self._anchors, crls=self._crls, revocations=self.revocations,
                    crl_grace=self.crl_grace, crl_source=self.crl_fetcher,
                )
                self._crl_clean = {}
                self._fetch_generation = fetched
            return self._store, self._crl_clean

    def validate(
        self,
        cert: x509.Certificate | None = None,
        *,
        der: bytes | None = None,
        fp: str | None = None,
        at: _dt.datetime | None = None,
        revocations: Any = None,
    ) -> ValidatedChain:
        """Check a certificate (object or DER) for signing at ``at`` (default: now).

        A cache miss runs the full :meth:`signing.trust.TrustStore.verify_certificate`
        (chain, revocation, validity, CA constraints, key usage) and caches the outcome.
        A hit re-checks revocation of every non-anchor certificate of the path against
        the DB revocation store and the CRLs *now*. Raises the TrustError of the failed
        check (:class:`~signing.errors.CertificateRevoked`, ``CertificateExpired``, …).
        ``revocations`` replaces the DB revocation store for this check (rows prefetched
        with the session, :class:`server.store.PrefetchedRevocations`).
        """
        if cert is None and der is None:
            raise InputError("no certificate to validate")
        if der is None:
            assert cert is not None
            der = cert.public_bytes(serialization.Encoding.DER)
        fp = fp or fingerprint(der)
        when = at if at is not None else now_utc()
        store, crl_memo = self._current()
        if revocations is not None:
            store = TrustStore(store.anchors, crls=store.crls, revocations=revocations,
                               crl_grace=store.crl_grace, crl_source=store.crl_source)
        chain = self.cache.get(fp, when)
        if chain is None:
            if cert is None:
                cert = parse_certificate(der)
            path = store.verify_certificate(cert, at=when)
            chain = ValidatedChain(
                fingerprint=fp,
                path=path,
                not_before=max(c.not_valid_before_utc for c in path),
                not_after=min(c.not_valid_after_utc for c in path),
            )
            self.cache.put(chain)
            return chain
        # Cached: only revocation can have changed (validity is inside the entry's window).
        self._check_revocation_now(store, crl_memo, chain, when)
        return chain

    def current_store(self) -> TrustStore:
        """The trust store checks use now (a new object whenever the material changes)."""
        return self._current()[0]

    def recheck_crls(self, chain: ValidatedChain, at: _dt.datetime) -> TrustStore:
        """The CRL part of :meth:`validate`'s revocation check, for a chain validated
        earlier whose database revocations are known unchanged (the session cache of
        :class:`server.context.Gateway`); raises as :meth:`validate` does. Returns the
        store it checked against: a new one means new trust material (a CRL read or
        fetched), and the caller validates in full instead."""
        store, crl_memo = self._current()
        self._check_revocation_now(store, crl_memo, chain, at, db=False)
        return store

    def _check_revocation_now(
        self,
        store: TrustStore,
        crl_memo: dict[str, tuple[_dt.datetime, _dt.datetime]],
        chain: ValidatedChain,
        when: _dt.datetime,
        *,
        db: bool = True,
    ) -> None:
        """Revocation of every non-anchor certificate of a cached chain at ``when``.

        The DB revocation store is asked every time. The CRL part (signature, freshness,
        entries) is the signing package's own check; its clean outcome is remembered
        per chain for the CRLs loaded now and only inside their thisUpdate..nextUpdate
        window, so a new CRL file or a CRL going stale is seen on the next call.
        """
        path = chain.path
        links = range(len(path) - 1)  # anchors are not revocation-checked
        revocations = store.revocations if db else None
        if revocations is not None:
            for i in links:
                entry = revocations.lookup(path[i].issuer, path[i].serial_number)
                if entry is not None and entry.applies_at(when):
                    store._check_revocation(path[i], path[i + 1], when)  # raises, precisely
        crls = store.crls
        source = store.crl_source
        if not crls and source is None:
            return
        clean = crl_memo.get(chain.fingerprint)
        if clean is not None and clean[0] <= when <= clean[1]:
            return
        crl_only = TrustStore(store.anchors, crls=crls, revocations=None,
                              crl_grace=store.crl_grace, crl_source=source)
        for i in links:
            crl_only._check_revocation(path[i], path[i + 1], when)
        # Remember only if no CRL of an issuer on the path lists any of its certificates
        # (a future-dated entry would start to apply later).
        start, until = _dt.datetime.min.replace(tzinfo=_dt.UTC), _dt.datetime.max.replace(
            tzinfo=_dt.UTC
        )
        for i in links:
            fetched = list(source(path[i], path[i + 1], when)) if source is not None else []
            for crl in [*crls, *fetched]:
                if crl.issuer != path[i + 1].subject:
                    continue
                if crl.get_revoked_certificate_by_serial_number(path[i].serial_number):
                    return
                nxt = crl.next_update_utc
                if nxt is None:
                    return
                start, until = max(start, crl.last_update_utc), min(until, nxt)
        if len(crl_memo) >= self.cache.max_entries:
            crl_memo.clear()
        crl_memo[chain.fingerprint] = (start, until)



class LiveTrustStore:
    """A :class:`signing.trust.TrustChecker` that always uses the material's current store.

    Every call goes through :meth:`TrustMaterial.store`, which re-reads changed CRL files,
    so whoever holds this view (the operations domain) checks against the same CRLs as
    the gateway's logins, and a CRL replaced on disk applies to both from the next call.
    """

    def __init__(self, material: TrustMaterial) -> None:
        self.material = material

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self.material.store().anchors

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.material.store().intermediates

    def verify_certificate(
        self,
        leaf: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        return self.material.store().verify_certificate(
            leaf, at=at, intermediates=intermediates, purpose=purpose
        )

    def verify_signed(
        self,
        payload: bytes,
        signature: bytes,
        cert: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Iterable[x509.Certificate] = (),
        algorithm: Algorithm | None = None,
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        return self.material.store().verify_signed(
            payload, signature, cert, at=at, intermediates=intermediates,
            algorithm=algorithm, purpose=purpose,
        )


class ValidatingTrust:
    """What :class:`signing.trust.CertificateVerifier` needs of a trust store, over
    :meth:`TrustMaterial.validate` (cached chain, revocation now) and skipping the check
    of the one certificate already validated in this call."""

    def __init__(self, trust: TrustMaterial, validated: ValidatedChain | None) -> None:
        self.trust = trust
        self.validated = validated

    def verify_signed(
        self,
        payload: bytes,
        signature: bytes,
        cert: x509.Certificate,
        *,
        at: _dt.datetime | None = None,
        intermediates: Sequence[x509.Certificate] = (),
        algorithm: Any = None,
        purpose: x509.ObjectIdentifier | None = None,
    ) -> tuple[x509.Certificate, ...]:
        pre = self.validated
        if purpose is not None:  # not what the cache holds: a full check for that purpose
            path = self.trust.store().verify_certificate(
                cert, at=at, intermediates=intermediates, purpose=purpose
            )
        elif pre is not None and at is None and not intermediates and (
            cert is pre.certificate or cert == pre.certificate
        ):
            path = pre.path
        else:
            path = self.trust.validate(cert, at=at).path
        try:
            verify_with_key(certificate_public_key(cert), payload, signature, algorithm)
        except BadSignature as exc:
            raise BadSignature(f"signature by {describe(cert)} does not verify") from exc
        return path



def parse_certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError("certificate_der is not a DER X.509 certificate") from exc


