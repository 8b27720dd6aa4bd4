"""Authentication: the gateway's shared state, sessions, and the AuthService (R5).

:class:`Gateway` bundles what every servicer needs (config, control-plane store, trust
store, audit sink, the gateway's signer, SMS sender, biometric verifier, health).

Login (R5) is three calls:

1. ``BeginLogin(user_id, certificate)``: a random 32-byte challenge bound to the user and
   the certificate, valid ``limits.challenge_ttl_seconds``. Nothing about the user is
   revealed yet (an unknown user still gets a challenge).
2. ``ProveLogin``: a DSSE envelope (``application/vnd.siogw.login-challenge``) whose
   payload is the challenge, signed on the token. The certificate must chain to the trust
   anchors, be unrevoked (CRL + the gateway's DB revocations, effective at once), be
   registered to that user, and the user must be ACTIVE. Then the second factor of the
   user's choice: an SMS code, or a device challenge for the platform authenticator.
3. ``CompleteLogin``: the code or the device assertion. The answer is a session token:
   32 random bytes (base64url), stored only as its SHA-256, valid
   ``limits.session_ttl_seconds``, bound to the certificate.

Every authenticated call runs :meth:`Gateway.authenticate`, which re-checks the session
(not ended, not expired), the user (active) and the certificate (registered to the user,
chain valid, not revoked) — so blocking the user or revoking the certificate ends the
session on the very next call.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import hashlib
import os
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc import aio

from audit.record import AuditRecord
from server import sms as sms_mod
from server.auditsink import AuditSink, Receipt
from server.biometric import BiometricVerifier, PlatformAuthenticatorVerifier
from server.config import GatewayConfig
from server.errors import (
    CertificateNotRegistered,
    FailedPrecondition,
    LoginFailed,
    LoginLocked,
    MissingField,
    NotFound,
    StaleRequest,
    Unauthenticated,
    UserBlocked,
)
from server.interceptors import current_call
from server.store import Store
from server.store.certificates import CertRow, PrefetchedRevocations, fingerprint
from server.store.sessions import SessionContext
from server.store.users import UserRow
from signing import dsse
from signing.api import Signer, certificate_der, certificate_key_id, certificate_public_key
from signing.crl import load_crl
from signing.errors import BadSignature, MalformedEnvelope
from signing.trust import (
    CertificateVerifier,
    TrustStore,
    describe,
    load_certificates,
)
from signing.verify import verify_with_key
from signing.wire import bearer_from_metadata, envelope_from_proto
from siogw_api.errors import ConfigError, InputError
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import auth_pb2, auth_pb2_grpc, common_pb2

T = TypeVar("T")

SF_SMS = "sms"
SF_BIOMETRIC = "biometric"


# --- trust material ------------------------------------------------------------------------
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
    """

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ConfigError("the certificate cache needs room for at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, ValidatedChain] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, fp: str, at: _dt.datetime) -> ValidatedChain | None:
        with self._lock:
            chain = self._entries.get(fp)
            if chain is None:
                return None
            if not chain.covers(at):
                del self._entries[fp]
                return None
            self._entries.move_to_end(fp)
            return chain

    def put(self, chain: ValidatedChain) -> None:
        with self._lock:
            self._entries[chain.fingerprint] = chain
            self._entries.move_to_end(chain.fingerprint)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

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
    ) -> None:
        self.anchor_paths = tuple(anchors)
        self.crl_paths = tuple(crls)
        self.revocations = revocations
        self.cache = cache if cache is not None else ChainCache()
        self._anchors: list[x509.Certificate] = []
        for path in self.anchor_paths:
            try:
                self._anchors.extend(load_certificates(path.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"cannot read trust anchor {path}", detail=str(exc)) from exc
        self._crl_stamp: tuple[float, ...] | None = None
        self._crls: list[x509.CertificateRevocationList] = []
        self._store: TrustStore | None = None
        self._lock = threading.Lock()
        #: fingerprint -> (from, until): the current CRLs list no certificate of that
        #: chain and are all current in that window. Cleared whenever the CRLs change.
        self._crl_clean: dict[str, tuple[_dt.datetime, _dt.datetime]] = {}

    def _load_crls(self) -> bool:
        """Re-read the CRL files if they changed; True if they did."""
        stamps = tuple(p.stat().st_mtime if p.exists() else -1.0 for p in self.crl_paths)
        if stamps == self._crl_stamp:
            return False
        crls = []
        for path in self.crl_paths:
            if path.exists():
                crls.append(load_crl(path.read_bytes()))
        self._crls, self._crl_stamp = crls, stamps
        return True

    def store(self) -> TrustStore:
        """The current :class:`TrustStore` (rebuilt when a CRL file changes)."""
        return self._current()[0]

    def _current(self) -> tuple[TrustStore, dict[str, tuple[_dt.datetime, _dt.datetime]]]:
        """The current store and the CRL memo that belongs to exactly its CRLs."""
        if not self._anchors:
            raise ConfigError("no trust anchors configured (trust.anchors)")
        with self._lock:
            if self._load_crls() or self._store is None:
                self._store = TrustStore(
                    self._anchors, crls=self._crls, revocations=self.revocations
                )
                self._crl_clean = {}
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
            store = TrustStore(store.anchors, crls=store.crls, revocations=revocations)
        chain = self.cache.get(fp, when)
        if chain is None:
            if cert is None:
                cert = _parse_certificate(der)
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

    def _check_revocation_now(
        self,
        store: TrustStore,
        crl_memo: dict[str, tuple[_dt.datetime, _dt.datetime]],
        chain: ValidatedChain,
        when: _dt.datetime,
    ) -> None:
        """Revocation of every non-anchor certificate of a cached chain at ``when``.

        The DB revocation store is asked every time. The CRL part (signature, freshness,
        entries) is the signing package's own check; its clean outcome is remembered
        per chain for the CRLs loaded now and only inside their thisUpdate..nextUpdate
        window, so a new CRL file or a CRL going stale is seen on the next call.
        """
        path = chain.path
        links = range(len(path) - 1)  # anchors are not revocation-checked
        db = store.revocations
        if db is not None:
            for i in links:
                entry = db.lookup(path[i].issuer, path[i].serial_number)
                if entry is not None and entry.applies_at(when):
                    store._check_revocation(path[i], path[i + 1], when)  # raises, precisely
        crls = store.crls
        if not crls:
            return
        clean = crl_memo.get(chain.fingerprint)
        if clean is not None and clean[0] <= when <= clean[1]:
            return
        crl_only = TrustStore(store.anchors, crls=crls, revocations=None)
        for i in links:
            crl_only._check_revocation(path[i], path[i + 1], when)
        # Remember only if no CRL of an issuer on the path lists any of its certificates
        # (a future-dated entry would start to apply later).
        start, until = _dt.datetime.min.replace(tzinfo=_dt.UTC), _dt.datetime.max.replace(
            tzinfo=_dt.UTC
        )
        for i in links:
            for crl in crls:
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


# --- the shared state ----------------------------------------------------------------------
@dataclass
class Gateway:
    """Everything the servicers share. Built by :func:`server.app.build_gateway`."""

    config: GatewayConfig
    store: Store
    audit: AuditSink
    trust: TrustMaterial
    signer: Signer | None = None
    sms: sms_mod.SmsSender | None = None
    biometric: BiometricVerifier = field(default_factory=PlatformAuthenticatorVerifier)
    health: Any = None
    dispatcher: Any = None
    audit_log: Any = None  # the audit.AuditLog behind the sink, when there is one

    def signing_certificate(self) -> x509.Certificate | None:
        return self.signer.certificate if self.signer is not None else None

    @property
    def inline_blocking(self) -> bool:
        """Run the short database steps of a query on the event loop thread?

        With SQLite (in-process, a statement takes tens of microseconds) a hop to a worker
        thread costs more than the work: two thread switches, a GIL hand-over and a wake-up
        of the loop per hop. Measured with bench/gateway.py, the hops cost ~10% of
        throughput. With a server database (PostgreSQL) a statement waits for the network,
        and worker threads let concurrent queries overlap those waits: there the steps
        run in threads. The price of inline steps: while one waits for SQLite's write lock
        (held a moment by another writer, such as the audit index catching up), the loop
        waits with it; every query needs that lock for its replay claim anyway.
        """
        return bool(self.store.engine.dialect.name == "sqlite")

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` inline or in a worker thread, by :attr:`inline_blocking`."""
        if self.inline_blocking:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    # -- certificates ----------------------------------------------------------------------
    def check_certificate(self, cert: x509.Certificate) -> None:
        """Chain to the anchors, not revoked (DB + CRL), within validity, signing usage."""
        self.trust.validate(cert)

    def verify_by_certificate(
        self,
        envelope: common_pb2.Envelope,
        payload_type: str,
        cert: x509.Certificate,
        *,
        validated: ValidatedChain | None = None,
        parsed: dsse.Envelope | None = None,
    ) -> bytes:
        """Verify a proto envelope signed by ``cert`` and return its payload.

        The signature must verify and its certificate chain be valid and unrevoked
        (``UNAUTHENTICATED`` otherwise); a valid signature by any *other* certificate is
        :class:`CertificateNotRegistered` (``PERMISSION_DENIED``): keys are not
        transferable (R7). ``validated`` is the outcome of a check of ``cert`` made
        earlier in *this* call (by :meth:`authenticate`): it is not checked again.
        ``parsed``: ``envelope`` already parsed by :func:`envelope_from_proto`.
        """
        env = parsed if parsed is not None else envelope_from_proto(envelope)
        if env.payload_type != payload_type:
            raise MalformedEnvelope(
                f"expected payload type {payload_type}, got {env.payload_type!r}"
            )
        verifier = CertificateVerifier(_ValidatingTrust(self.trust, validated), [cert])  # type: ignore[arg-type]
        verified = dsse.verify_envelope(env, verifier, payload_types=[payload_type])
        want_fp = validated.fingerprint if validated is not None else fingerprint(der(cert))
        want = certificate_key_id(cert)
        for signer in verified.signers:
            if signer.keyid == want and signer.certificate is not None and (
                signer.certificate is cert or fingerprint(der(signer.certificate)) == want_fp
            ):
                return verified.payload
        other = verified.signers[0]
        raise CertificateNotRegistered(
            "the request is signed with a certificate that is not the one registered to "
            "this user and session",
            detail=f"signed by {other.subject}",
        )

    # -- sessions --------------------------------------------------------------------------
    async def authenticate(self, context: aio.ServicerContext) -> Session:
        """The live session of this call, re-checked in full (see module docstring).

        The database reads and the certificate check run in a worker thread.
        """
        return await asyncio.to_thread(self.authenticate_token, bearer_token(context))

    def authenticate_token(self, token: str | None) -> Session:
        """:meth:`authenticate` for a bearer token (blocking: call it off the event loop).

        One database read (:meth:`server.store.Store.session_context`) brings the session,
        user, certificate, consent, open maintenance window and the certificate's DB
        revocations; the certificate's chain comes from the :class:`ChainCache` while its
        revocation (DB + CRL) is checked now.
        """
        if token is None:
            raise Unauthenticated("no session: send 'authorization: Bearer <token>'")
        now = now_utc()
        ctx = self.store.session_context(
            token_hash(token), consent_version=self.config.policy.consent_version, at=now
        )
        if ctx is None:
            raise Unauthenticated("unknown session token")
        row = ctx.session
        info = current_call()
        info.user_id = row.user_id
        info.cert_fingerprint = row.cert_fingerprint
        if row.ended_at is not None:
            raise Unauthenticated(f"session ended at {astana_iso(row.ended_at)}")
        if now >= row.expires_at:
            raise Unauthenticated(f"session expired at {astana_iso(row.expires_at)}")
        user = ctx.user
        if user is None or not user.active:
            self.store.end_session(row.token_hash)
            raise UserBlocked(
                f"user {row.user_id!r} is blocked",
                detail=user.status_reason if user is not None else "user removed",
            )
        cert_row = ctx.certificate
        if cert_row is None or cert_row.user_id != user.user_id:
            self.store.end_session(row.token_hash)
            raise CertificateNotRegistered("the session's certificate is no longer registered")
        try:
            chain = self.trust.validate(
                der=cert_row.der, fp=cert_row.fingerprint, at=now,
                revocations=PrefetchedRevocations(
                    self.store, cert_row.serial_hex, ctx.revocations
                ),
            )
        except Exception:
            self.store.end_session(row.token_hash)
            raise
        return Session(
            token_hash=row.token_hash, user=user, cert_row=cert_row,
            certificate=chain.certificate, expires_at=row.expires_at, chain=chain,
            context=ctx,
        )

    async def record(self, record: AuditRecord) -> Receipt:
        return await self.audit.record(record)


class _ValidatingTrust:
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
    ) -> tuple[x509.Certificate, ...]:
        pre = self.validated
        if pre is not None and at is None and not intermediates and (
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


@dataclass(frozen=True)
class Session:
    """An authenticated, re-checked session."""

    token_hash: str
    user: UserRow
    cert_row: CertRow
    certificate: x509.Certificate
    expires_at: _dt.datetime
    #: The certificate's validation in this call (not to be repeated within the call).
    chain: ValidatedChain | None = None
    #: What the same read found about consent and maintenance (this call only).
    context: SessionContext | None = None

    @property
    def user_id(self) -> str:
        return self.user.user_id

    @property
    def cert_fingerprint(self) -> str:
        return self.cert_row.fingerprint


# --- helpers -------------------------------------------------------------------------------
def der(cert: x509.Certificate) -> bytes:
    return certificate_der(cert)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def bearer_token(context: aio.ServicerContext) -> str | None:
    return bearer_from_metadata(context.invocation_metadata())


def parse_envelope(envelope: common_pb2.Envelope) -> tuple[dsse.Envelope | None, bytes]:
    """The checked envelope (None if malformed) and what the audit log keeps of it."""
    try:
        env = envelope_from_proto(envelope)
        return env, env.to_json()
    except Exception:  # malformed: keep the bytes as received, the refusal says why
        raw: bytes = envelope.SerializeToString(deterministic=True)
        return None, raw


def envelope_json(envelope: common_pb2.Envelope) -> bytes:
    """The DSSE JSON of a proto envelope (what the audit log keeps); raw bytes if malformed."""
    try:
        return envelope_from_proto(envelope).to_json()
    except Exception:  # malformed: keep the bytes as received, the refusal says why
        raw: bytes = envelope.SerializeToString(deterministic=True)
        return raw


def check_fresh(created_at: str, skew_seconds: int) -> _dt.datetime:
    """Parse ``created_at`` and refuse it outside ``now ± skew`` (:class:`StaleRequest`)."""
    if not created_at:
        raise MissingField("created_at is empty")
    when = parse_iso(created_at)
    now = now_utc()
    if abs((now - when).total_seconds()) > skew_seconds:
        raise StaleRequest(
            f"created_at {astana_iso(when)} is outside ±{skew_seconds} s of the gateway clock "
            f"({astana_iso(now)})"
        )
    return when


def _parse_certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InputError("certificate_der is not a DER X.509 certificate") from exc


def _factors(user: UserRow | None) -> list[auth_pb2.SecondFactor]:
    if user is None:
        return [auth_pb2.SECOND_FACTOR_SMS]
    out: list[auth_pb2.SecondFactor] = []
    if user.phone:
        out.append(auth_pb2.SECOND_FACTOR_SMS)
    if user.device_public_key_der:
        out.append(auth_pb2.SECOND_FACTOR_BIOMETRIC)
    return out


# --- the service ---------------------------------------------------------------------------
class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """AuthService: MFA login (R5), consent (R6, in :mod:`server.consent`), logout."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def BeginLogin(
        self, request: auth_pb2.BeginLoginRequest, context: aio.ServicerContext
    ) -> auth_pb2.BeginLoginResponse:
        return await asyncio.to_thread(self._begin_login, request)

    def _begin_login(self, request: auth_pb2.BeginLoginRequest) -> auth_pb2.BeginLoginResponse:
        if not request.user_id:
            raise MissingField("user_id is empty")
        cert = _parse_certificate(bytes(request.certificate_der))
        info = current_call()
        info.user_id = request.user_id
        info.cert_fingerprint = fingerprint(der(cert))
        limits = self.gw.config.limits
        login_id = uuid.uuid4().hex
        challenge = secrets.token_bytes(32)
        expires = now_utc() + _dt.timedelta(seconds=limits.challenge_ttl_seconds)
        self.gw.store.create_login(
            login_id=login_id, user_id=request.user_id, cert_der=der(cert),
            challenge=challenge, expires_at=expires,
        )
        return auth_pb2.BeginLoginResponse(
            login_id=login_id,
            challenge=challenge,
            factors=_factors(self.gw.store.get_user(request.user_id)),
            expires_at=astana_iso(expires),
        )

    def _login(self, login_id: str) -> Any:
        if not login_id:
            raise MissingField("login_id is empty")
        login = self.gw.store.get_login(login_id)
        if login is None:
            raise NotFound(f"no login {login_id!r}")
        info = current_call()
        info.user_id = login.user_id
        info.cert_fingerprint = login.cert_fingerprint
        info.details["login_id"] = login_id
        return login

    def _check_user_and_cert(self, login: Any) -> tuple[UserRow, x509.Certificate]:
        cert = x509.load_der_x509_certificate(login.cert_der)
        self.gw.check_certificate(cert)
        user = self.gw.store.get_user(login.user_id)
        cert_row = self.gw.store.get_certificate(login.cert_fingerprint)
        if user is None or cert_row is None or cert_row.user_id != user.user_id:
            raise CertificateNotRegistered(
                f"the certificate is not registered to user {login.user_id!r}"
            )
        if not user.active:
            raise UserBlocked(f"user {user.user_id!r} is blocked", detail=user.status_reason)
        return user, cert

    async def ProveLogin(
        self, request: auth_pb2.ProveLoginRequest, context: aio.ServicerContext
    ) -> auth_pb2.ProveLoginResponse:
        return await asyncio.to_thread(self._prove_login, request)

    def _prove_login(self, request: auth_pb2.ProveLoginRequest) -> auth_pb2.ProveLoginResponse:
        """ProveLogin (blocking: DB, certificate checks, the SMS sender; in a thread)."""
        login = self._login(request.login_id)
        if login.state != "begun":
            raise FailedPrecondition(f"login is {login.state}, not waiting for the challenge")
        if now_utc() >= login.expires_at:
            raise LoginFailed(f"the challenge expired at {astana_iso(login.expires_at)}")
        if not request.HasField("signed_challenge"):
            raise MissingField("signed_challenge is missing")
        current_call().payload = envelope_json(request.signed_challenge)
        cert = x509.load_der_x509_certificate(login.cert_der)
        payload = self.gw.verify_by_certificate(
            request.signed_challenge, dsse.PAYLOAD_LOGIN_CHALLENGE, cert
        )
        if payload != login.challenge:
            raise LoginFailed("the signed payload is not this login's challenge")
        user, _ = self._check_user_and_cert(login)
        factors = _factors(user)
        factor: auth_pb2.SecondFactor = request.factor
        if factor == auth_pb2.SECOND_FACTOR_UNSPECIFIED:
            if len(factors) != 1:
                raise MissingField("choose a second factor (sms or biometric)")
            factor = factors[0]
        if factor not in factors:
            raise FailedPrecondition(
                f"second factor {auth_pb2.SecondFactor.Name(factor)} is not enrolled"
            )
        limits = self.gw.config.limits
        if factor == auth_pb2.SECOND_FACTOR_SMS:
            if self.gw.sms is None:
                raise ConfigError("no SMS sender configured")
            code = sms_mod.new_code()
            salt = os.urandom(16)
            code_expires = now_utc() + _dt.timedelta(seconds=limits.sms_code_ttl_seconds)
            if not self.gw.store.update_login(
                login.login_id, expect_state="begun", state="proved", factor=SF_SMS,
                code_hash=sms_mod.hash_code(code, salt), code_salt=salt,
                code_expires_at=code_expires, expires_at=code_expires,
            ):
                raise FailedPrecondition("login already proved")
            self.gw.sms.send(user.phone, sms_mod.message_text(code))
            return auth_pb2.ProveLoginResponse(
                factor=factor, sms_destination=sms_mod.mask_phone(user.phone)
            )
        device_challenge = secrets.token_bytes(32)
        if not self.gw.store.update_login(
            login.login_id, expect_state="begun", state="proved", factor=SF_BIOMETRIC,
            device_challenge=device_challenge,
            expires_at=now_utc() + _dt.timedelta(seconds=limits.challenge_ttl_seconds),
        ):
            raise FailedPrecondition("login already proved")
        return auth_pb2.ProveLoginResponse(factor=factor, device_challenge=device_challenge)

    async def CompleteLogin(
        self, request: auth_pb2.CompleteLoginRequest, context: aio.ServicerContext
    ) -> auth_pb2.CompleteLoginResponse:
        user, login, token, expires = await asyncio.to_thread(self._complete_login, request)
        version = self.gw.config.policy.consent_version
        receipt = await self.gw.record(
            AuditRecord(
                actor=user.user_id, event="login", outcome="success",
                cert_fingerprint=login.cert_fingerprint,
                details={"factor": login.factor, "login_id": login.login_id,
                         "session_expires_at": astana_iso(expires)},
            )
        )
        consented = await asyncio.to_thread(self.gw.store.has_consent, user.user_id, version)
        return auth_pb2.CompleteLoginResponse(
            session_token=token,
            expires_at=astana_iso(expires),
            consent_required=not consented,
            consent_version=version,
            receipt=receipt.to_proto(),
        )

    def _complete_login(
        self, request: auth_pb2.CompleteLoginRequest
    ) -> tuple[UserRow, Any, str, _dt.datetime]:
        """CompleteLogin up to the new session (blocking; runs in a thread)."""
        login = self._login(request.login_id)
        limits = self.gw.config.limits
        if login.state == "locked":
            raise LoginLocked("this login is locked after too many wrong codes; start again")
        if login.state != "proved":
            raise FailedPrecondition(f"login is {login.state}: call ProveLogin first")
        now = now_utc()
        if now >= login.expires_at:
            raise LoginFailed(f"the login expired at {astana_iso(login.expires_at)}")
        which = request.WhichOneof("second_factor")
        if login.factor == SF_SMS:
            if which != "sms_code":
                raise MissingField("sms_code is required for this login")
            assert login.code_hash is not None and login.code_salt is not None
            if not sms_mod.code_matches(request.sms_code, login.code_salt, login.code_hash):
                attempts = self.gw.store.count_failed_attempt(login.login_id)
                if attempts >= limits.sms_max_attempts:
                    self.gw.store.update_login(login.login_id, state="locked")
                    raise LoginLocked(
                        f"{attempts} wrong SMS codes: this login is locked; start again"
                    )
                raise LoginFailed(
                    f"wrong SMS code ({limits.sms_max_attempts - attempts} tries left)"
                )
        else:
            if which != "biometric":
                raise MissingField("a biometric assertion is required for this login")
            user = self.gw.store.require_user(login.user_id)
            if not user.device_public_key_der or login.device_challenge is None:
                raise FailedPrecondition("no device key enrolled for this user")
            a = request.biometric
            current_call().details["biometric_method"] = a.method
            self.gw.biometric.verify(
                user.device_public_key_der, login.device_challenge, a.device_key_id,
                bytes(a.signature), a.method,
            )
        user, _cert = self._check_user_and_cert(login)
        if not self.gw.store.update_login(login.login_id, expect_state="proved", state="done"):
            raise FailedPrecondition("login already completed")
        token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
        expires = now + _dt.timedelta(seconds=limits.session_ttl_seconds)
        self.gw.store.create_session(
            token_hash=token_hash(token), user_id=user.user_id,
            cert_fingerprint=login.cert_fingerprint, factor=login.factor, expires_at=expires,
        )
        return user, login, token, expires

    async def GetConsent(
        self, request: auth_pb2.GetConsentRequest, context: aio.ServicerContext
    ) -> auth_pb2.ConsentText:
        from server.consent import consent_text

        return consent_text(self.gw.config.policy)

    async def SignConsent(
        self, request: auth_pb2.SignConsentRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignConsentResponse:
        from server.consent import sign_consent

        session = await self.gw.authenticate(context)
        return await sign_consent(self.gw, session, request)

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        session = await self.gw.authenticate(context)
        await asyncio.to_thread(self.gw.store.end_session, session.token_hash)
        return auth_pb2.LogoutResponse()
