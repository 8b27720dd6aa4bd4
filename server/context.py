"""The request context: the gateway's shared state, sessions, and the helpers every
servicer uses.

:class:`Gateway` bundles what every servicer needs (config, control-plane store, trust
material, audit sink, the gateway's signer, SMS sender, biometric verifier, the resource
dispatcher and, on a process that has one, the operations domain). Every field is
declared here and filled once, by the composition root (:mod:`server.assembly`).

Every authenticated call runs :meth:`Gateway.authenticate`, which re-checks the session
(not ended, not expired), the user (active, and not blocked by the operations domain
where this process has it) and the certificate (registered to the user, chain valid, not
revoked) -- so blocking the user or revoking the certificate ends the session on the
very next call. A query runs the same check again just before its answer is released
(:meth:`Gateway.recheck_session`, issue 14): a logout, block or revocation committed
while the upstream was being asked stops that answer too.

The helpers: :func:`token_hash` (sessions are stored only as the SHA-256 of their
token), :func:`bearer_token`, :func:`parse_envelope` / :func:`envelope_bytes` (what the
audit log keeps of a request envelope) and :func:`check_fresh` (``created_at`` within
the clock skew).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from grpc import aio

from audit import AuditLog
from audit.record import AuditRecord
from server import sms as sms_mod
from server.auditsink import AuditSink, Receipt
from server.batcher import ResultBatcher
from server.biometric import BiometricVerifier, PlatformAuthenticatorVerifier
from server.certcheck import TrustMaterial, ValidatedChain, ValidatingTrust
from server.config import GatewayConfig
from server.emergency_watch import EmergencyWatch
from server.errors import (
    CertificateNotRegistered,
    MissingField,
    NotImplementedYet,
    StaleRequest,
    Unauthenticated,
    UserBlocked,
)
from server.interceptors import current_call
from server.ops import Operations
from server.ops_wiring import OpsWiring
from server.resources import Dispatcher
from server.screening import ScreeningService
from server.sessioncache import CachedCheck, SessionCache
from server.store import Store
from server.store.certificates import CertRow, PrefetchedRevocations, fingerprint
from server.store.sessions import SessionContext
from server.store.users import UserRow
from server.tracing import span
from signing import dsse
from signing.api import Signer, certificate_der, certificate_key_id, certificate_public_key
from signing.errors import BadSignature, MalformedEnvelope
from signing.trust import CertificateVerifier
from signing.verify import verify_with_key
from signing.wire import bearer_from_metadata, envelope_from_proto
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import common_pb2

T = TypeVar("T")

#: ``await source(request_id, user_id)``: ``(seq, leaf_hash, tree_size)`` of the record
#: that answered that request to that user, or None.
ReceiptSource = Callable[[str, str], Awaitable[tuple[int, bytes, int] | None]]


@dataclass
class Gateway:
    """Everything the servicers share; built by :func:`server.assembly.build_gateway`.

    Every field is declared here and set once, at assembly (tests may swap one for a
    stand-in). ``ops_wiring`` is the operations domain (``server.ops``: Admin/Audit
    operations, the violation rules fed by ``audit``, the audit index): present on the
    single process and the log host when the audit sink is an ``audit.AuditLog``;
    ``None`` on a worker process (ADR 0007: it serves queries only and reads the
    operations status of users through the store) and with a development sink.
    """

    config: GatewayConfig
    store: Store
    audit: AuditSink
    trust: TrustMaterial
    signer: Signer | None = None
    sms: sms_mod.SmsSender | None = None
    biometric: BiometricVerifier = field(default_factory=PlatformAuthenticatorVerifier)
    dispatcher: Dispatcher | None = None
    #: The ``audit.AuditLog`` behind ``audit``, when there is one (not on a worker).
    audit_log: AuditLog | None = None
    #: The operations domain and its wiring, or None (see the class docstring).
    ops_wiring: OpsWiring | None = None
    #: The List and the Lists (``server.screening``), or None (a worker process).
    screening: ScreeningService | None = None
    #: Feeds the Journal of emergencies by itself (§14), with ``ops_wiring``.
    emergencies: EmergencyWatch | None = None
    #: Where a process without an audit index (a worker) finds the original receipt of
    #: a replayed query: the log host, over its socket (``server.loghost``).
    receipts: ReceiptSource | None = None
    #: Signs results in batches (``[signer] batch_window_ms`` > 0, ADR 0011), or None:
    #: one token signature per result.
    result_batcher: ResultBatcher | None = None
    #: Checked sessions reused while the authentication epoch holds
    #: (``server.sessioncache``; ``[limits] session_cache_entries``), or None: off.
    session_cache: SessionCache[Session] | None = None

    @property
    def ops(self) -> Operations | None:
        """The operations services, or None where this process has no operations domain."""
        return self.ops_wiring.ops if self.ops_wiring is not None else None

    def require_ops(self) -> OpsWiring:
        """The operations domain, or :class:`NotImplementedYet` (``UNIMPLEMENTED``) where
        this gateway has none (a development sink instead of the audit log)."""
        if self.ops_wiring is None:
            raise NotImplementedYet("the operations domain needs the audit.AuditLog "
                                    "(this gateway records to a development sink)")
        return self.ops_wiring

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
        if validated is not None and _signed_by(env, cert):
            return env.payload
        verifier = CertificateVerifier(ValidatingTrust(self.trust, validated), [cert])
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
        hashed = token_hash(token)
        cache = self.session_cache
        epoch: int | None = None
        if cache is not None:
            # Read before anything else: a change committed after it shows as a new
            # epoch at the next call (server.sessioncache).
            epoch = self.store.auth_epoch()
            cached = self._cached_session(cache, hashed, epoch, now)
            if cached is not None:
                return cached
        ctx = self.store.session_context(
            hashed, consent_version=self.config.policy.consent_version, at=now
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
        revocations = PrefetchedRevocations(self.store, cert_row.serial_hex, ctx.revocations)
        trust_store = self.trust.current_store() if cache is not None else None
        try:
            chain = self.trust.validate(
                der=cert_row.der, fp=cert_row.fingerprint, at=now, revocations=revocations,
            )
        except Exception:
            self.store.end_session(row.token_hash)
            raise
        session = Session(
            token_hash=row.token_hash, user=user, cert_row=cert_row,
            certificate=chain.certificate, expires_at=row.expires_at, chain=chain,
            context=ctx,
        )
        if cache is not None and epoch is not None and ctx.consented and ctx.window is None \
                and not revocations.found:
            # Only a session that passed everything, with no revocation entry on its path
            # and no window open; reused until the clock alone could change the answer.
            until = min(row.expires_at, chain.not_after)
            next_window = self.store.next_window_start(now)
            if next_window is not None:
                until = min(until, next_window)
            if now < until:
                cache.put(hashed, CachedCheck(epoch=epoch, valid_until=until,
                                              trust_store=trust_store, value=session))
        return session

    def _cached_session(
        self, cache: SessionCache[Session], hashed: str, epoch: int, now: _dt.datetime
    ) -> Session | None:
        """The cached check of this session when it still holds (the epoch, the clock, the
        CRLs and the trust material unchanged), else None (decided in full)."""
        entry = cache.get(hashed, epoch, now)
        if entry is None:
            return None
        session = entry.value
        assert session.chain is not None
        try:
            store = self.trust.recheck_crls(session.chain, now)
        except Exception:  # revoked by a CRL, or no usable CRL: the full check decides
            cache.drop(hashed)
            return None
        if store is not entry.trust_store:  # new trust material: check in full again
            cache.drop(hashed)
            return None
        info = current_call()
        info.user_id = session.user_id
        info.cert_fingerprint = session.cert_fingerprint
        return session

    def recheck_session(self, token: str | None) -> None:
        """The check of :meth:`authenticate_token` again, for a call that was admitted
        earlier and is about to release its answer (blocking; one database read, the
        certificate's chain from the cache and its revocations from the same read).

        Raises what :meth:`authenticate_token` raises: the session was ended (logout),
        the user blocked or the certificate revoked since the call was admitted.
        """
        self.authenticate_token(token)

    async def record(self, record: AuditRecord) -> Receipt:
        with span("siogw.audit_append"):
            return await self.audit.record(record)



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
def _signed_by(env: dsse.Envelope, cert: x509.Certificate) -> bool:
    """The hot path of :meth:`Gateway.verify_by_certificate`: ``env`` has one signature,
    named by ``cert``'s key id (with no other certificate embedded), and it verifies with
    ``cert``'s key. What the general path would conclude with a chain validated in this
    call, without its verifier objects; anything else (False) takes the general path,
    which also says precisely what is wrong."""
    if len(env.signatures) != 1:
        return False
    sig = env.signatures[0]
    if sig.batch is not None or not sig.keyid or sig.keyid != certificate_key_id(cert):
        return False
    if sig.cert_der is not None and sig.cert_der != certificate_der(cert):
        return False
    try:
        verify_with_key(certificate_public_key(cert), env.pae(), sig.sig)
    except BadSignature:
        return False
    return True


def der(cert: x509.Certificate) -> bytes:
    return certificate_der(cert)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def bearer_token(context: aio.ServicerContext) -> str | None:
    return bearer_from_metadata(context.invocation_metadata())


def parse_envelope(envelope: common_pb2.Envelope) -> tuple[dsse.Envelope | None, bytes]:
    """The checked envelope (None if malformed) and what the audit log keeps of it
    (:func:`envelope_bytes`)."""
    raw = envelope_bytes(envelope)
    try:
        return envelope_from_proto(envelope), raw
    except Exception:  # malformed: the bytes are kept all the same, the refusal says why
        return None, raw


def envelope_bytes(envelope: common_pb2.Envelope) -> bytes:
    """What the audit log keeps of a request envelope: its deterministic protobuf bytes
    (``siogw.v1.Envelope``), raw -- no re-encoding, so a record grows with the request
    by base64's 4/3 and no more (``docs/adr/0003-audit-log.md``)."""
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


