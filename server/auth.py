"""AuthService: multi-factor login (R5), consent (R6, :mod:`server.consent`), logout.

The shared state, sessions and their per-call re-check are :mod:`server.context`;
certificate checking is :mod:`server.certcheck`.

Login (R5) is three calls:

1. ``BeginLogin(user_id, certificate)``: a random 32-byte challenge bound to the user and
   the certificate, valid ``limits.challenge_ttl_seconds``. Nothing about the user is
   revealed: an unknown user still gets a challenge, and the factor list is the same for
   everyone (:data:`OFFERED_FACTORS`; a factor the user has not enrolled is refused later
   exactly like a wrong code). Bounded before anything reads it: ``user_id`` at most
   :data:`MAX_USER_ID_CHARS`, the certificate at most :data:`MAX_LOGIN_CERT_BYTES` and a
   parsable DER certificate, or nothing is stored. Rate-limited in memory per client
   address and per claimed user id (``limits.logins_per_peer_per_minute``,
   ``limits.logins_per_user_per_minute``, :mod:`server.ratelimit`), and at most
   ``limits.open_logins_per_user`` logins begun and not proved are kept per user id
   (in the database, shared by every process): over any of them RESOURCE_EXHAUSTED
   (``RATE_LIMITED``). Each BeginLogin that passes is recorded (``login.begin``, actor
   ``anonymous``, the id asked for in ``details.claimed_user``: it is a claim, not an
   identity) before its row is stored; the refused ones are recorded as refusals.
2. ``ProveLogin``: a DSSE envelope (``application/vnd.siogw.login-challenge``) whose
   payload is the challenge, signed on the token. The certificate must chain to the trust
   anchors, be unrevoked (CRL + the gateway's DB revocations, effective at once), be
   registered to that user, and the user must be ACTIVE. Then the second factor of the
   user's choice: an SMS code, or a device challenge for the platform authenticator.
3. ``CompleteLogin``: the code or the device assertion. Each SMS code compared is first
   claimed by one atomic statement (:meth:`server.store.sessions.SessionStore.
   claim_attempt`), so at most ``limits.sms_max_attempts`` wrong codes are ever compared
   for one login, however many calls race (the right code hands its claim back). Once
   they check out, the login is written ahead to the audit log (:mod:`server.writeahead`:
   ``event="login"``, ``outcome="requested"``) before the session exists. The answer is
   a session token:
   32 random bytes (base64url), stored only as its SHA-256, valid
   ``limits.session_ttl_seconds``, bound to the certificate. The request may carry
   ``pin_changed_at``: when the token's PIN was last changed, as the client knows it
   (§12). It is in the login's write-ahead record, kept with the certificate
   (``certificates.pin_changed_at``, shown in the security officer's certificate list)
   and answered back with a warning when older than 30 days or not reported.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import os
import secrets
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc import aio

from audit.record import AuditRecord
from server import sms as sms_mod
from server.certcheck import parse_certificate
from server.consent import consent_text, sign_consent
from server.context import Gateway, envelope_bytes, token_hash
from server.errors import (
    CertificateNotRegistered,
    FailedPrecondition,
    LoginFailed,
    LoginLocked,
    MissingField,
    NotFound,
    RateLimited,
    UserBlocked,
)
from server.interceptors import current_call
from server.ratelimit import RateLimiter, peer_host
from server.store.certificates import fingerprint
from server.store.users import UserRow
from server.writeahead import write_ahead
from signing import dsse
from signing.pin_ages import PIN_MAX_AGE_DAYS
from siogw_api.errors import ConfigError, InputError, SiogwError
from siogw_api.timeutil import astana_iso, now_utc, parse_iso
from siogw_api.v1 import auth_pb2, auth_pb2_grpc

SF_SMS = "sms"
SF_BIOMETRIC = "biometric"


#: The factor list BeginLogin answers, whoever asks: it must not tell whether a user
#: exists or has a device enrolled (issue 13, defect 9).
OFFERED_FACTORS = (auth_pb2.SECOND_FACTOR_SMS, auth_pb2.SECOND_FACTOR_BIOMETRIC)
#: The longest user id BeginLogin reads (the ``logins.user_id`` column).
MAX_USER_ID_CHARS = 64
#: The largest certificate BeginLogin stores (a user certificate is 1-2 KiB).
MAX_LOGIN_CERT_BYTES = 16 * 1024


# --- the service ---------------------------------------------------------------------------

def reported_pin_change(text: str, clock_skew_seconds: int) -> _dt.datetime | None:
    """CompleteLogin's ``pin_changed_at``: ``None`` when empty, else an aware time not
    in the future (beyond the clock skew); :class:`InputError` otherwise (§12)."""
    if not text:
        return None
    try:
        when = parse_iso(text)
    except SiogwError:
        raise InputError("pin_changed_at is not an ISO 8601 time with an offset") from None
    if when > now_utc() + _dt.timedelta(seconds=clock_skew_seconds):
        raise InputError("pin_changed_at is in the future")
    return when


def pin_age_notice(changed_at: _dt.datetime | None, now: _dt.datetime) -> str | None:
    """The warning a user gets at login when the token's PIN is overdue or of unknown
    age (§12: changed at least every :data:`PIN_MAX_AGE_DAYS` days), else ``None``."""
    advice = (f"change it with `siogw token change-pin` at least every {PIN_MAX_AGE_DAYS} "
              "days (§12)")
    if changed_at is None:
        return f"the client did not report when your token's PIN was last changed: {advice}"
    age = now - changed_at
    if age > _dt.timedelta(days=PIN_MAX_AGE_DAYS):
        return (f"your token's PIN was last changed {astana_iso(changed_at)}, {age.days} days "
                f"ago: {advice}")
    return None

class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """AuthService: MFA login (R5), consent (R6, in :mod:`server.consent`), logout."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        limits = gateway.config.limits
        self.peer_limit = RateLimiter(limits.logins_per_peer_per_minute)
        self.user_limit = RateLimiter(limits.logins_per_user_per_minute)

    async def BeginLogin(
        self, request: auth_pb2.BeginLoginRequest, context: aio.ServicerContext
    ) -> auth_pb2.BeginLoginResponse:
        cert_der = await asyncio.to_thread(self._admit_login, request)
        info = current_call()
        login_id = uuid.uuid4().hex
        challenge = secrets.token_bytes(32)
        expires = now_utc() + _dt.timedelta(
            seconds=self.gw.config.limits.challenge_ttl_seconds
        )
        await self.gw.record(
            AuditRecord(
                actor="anonymous", event="login.begin", outcome="success",
                cert_fingerprint=info.cert_fingerprint,
                details={"claimed_user": request.user_id, "login_id": login_id,
                         "peer": info.peer},
            )
        )
        await asyncio.to_thread(
            self.gw.store.create_login, login_id=login_id, user_id=request.user_id,
            cert_der=cert_der, challenge=challenge, expires_at=expires,
        )
        return auth_pb2.BeginLoginResponse(
            login_id=login_id, challenge=challenge, factors=OFFERED_FACTORS,
            expires_at=astana_iso(expires),
        )

    def _admit_login(self, request: auth_pb2.BeginLoginRequest) -> bytes:
        """BeginLogin's checks: bounds, the certificate parses, the limits (blocking)."""
        info = current_call()
        user_id = request.user_id
        if not user_id:
            raise MissingField("user_id is empty")
        if len(user_id) > MAX_USER_ID_CHARS:
            raise InputError(f"user_id is longer than {MAX_USER_ID_CHARS} characters")
        info.details["claimed_user"] = user_id
        raw = bytes(request.certificate_der)
        if len(raw) > MAX_LOGIN_CERT_BYTES:
            raise InputError(f"certificate_der is larger than {MAX_LOGIN_CERT_BYTES} bytes")
        # Not ``der()``: its cache is for certificates of the gateway's users; a caller's
        # claim must not be remembered anywhere but in its (bounded) login row.
        cert_der = parse_certificate(raw).public_bytes(serialization.Encoding.DER)
        info.cert_fingerprint = fingerprint(cert_der)
        if not self.peer_limit.allow(peer_host(info.peer)):
            raise RateLimited("too many logins begun from this address; try again later")
        if not self.user_limit.allow(user_id):
            raise RateLimited("too many logins begun for this user; try again later")
        if self.gw.store.open_logins(user_id) >= self.gw.config.limits.open_logins_per_user:
            raise RateLimited("too many logins begun for this user; try again later")
        return cert_der

    def _login(self, login_id: str) -> Any:
        if not login_id:
            raise MissingField("login_id is empty")
        login = self.gw.store.get_login(login_id)
        if login is None:
            raise NotFound(f"no login {login_id!r}")
        info = current_call()
        info.details["claimed_user"] = login.user_id  # authenticated only once it is done
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
        current_call().payload = envelope_bytes(request.signed_challenge)
        cert = x509.load_der_x509_certificate(login.cert_der)
        payload = self.gw.verify_by_certificate(
            request.signed_challenge, dsse.PAYLOAD_LOGIN_CHALLENGE, cert
        )
        if payload != login.challenge:
            raise LoginFailed("the signed payload is not this login's challenge")
        user, _ = self._check_user_and_cert(login)
        factor: auth_pb2.SecondFactor = request.factor
        if factor not in OFFERED_FACTORS:
            raise MissingField("choose a second factor (sms or biometric)")
        if factor == auth_pb2.SECOND_FACTOR_SMS and not user.phone:
            raise FailedPrecondition("no phone number is enrolled for this user")
        # BIOMETRIC without an enrolled device still gets a device challenge: the
        # assertion is then refused by CompleteLogin exactly like a wrong one.
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
        pin_changed = reported_pin_change(
            request.pin_changed_at, self.gw.config.limits.clock_skew_seconds)
        user, login, now = await asyncio.to_thread(self._complete_login, request)
        version = self.gw.config.policy.consent_version
        details = {"factor": login.factor, "login_id": login.login_id,
                   "pin_changed_at": astana_iso(pin_changed) if pin_changed else None}
        # The write-ahead rule (server.writeahead): the login is durable in the log before
        # the session exists.
        intent = await write_ahead(
            self.gw, event="login", actor=user.user_id,
            cert_fingerprint=login.cert_fingerprint, details=details, payload=None,
        )
        token, expires = await asyncio.to_thread(self._open_session, user, login, now)
        receipt = await intent.done({**details, "session_expires_at": astana_iso(expires)})
        await asyncio.to_thread(self.gw.store.record_pin_report, login.cert_fingerprint,
                                pin_changed, reported_at=now)
        consented = await asyncio.to_thread(self.gw.store.has_consent, user.user_id, version)
        return auth_pb2.CompleteLoginResponse(
            session_token=token,
            expires_at=astana_iso(expires),
            consent_required=not consented,
            consent_version=version,
            receipt=receipt.to_proto(),
            pin_changed_at=astana_iso(pin_changed) if pin_changed else "",
            pin_warning=pin_age_notice(pin_changed, now) or "",
        )

    def _complete_login(
        self, request: auth_pb2.CompleteLoginRequest
    ) -> tuple[UserRow, Any, _dt.datetime]:
        """CompleteLogin's checks, up to the new session (blocking; runs in a thread).

        Changes nothing when the second factor is right (a wrong SMS code counts, and
        locks the login at the limit). Returns the user, the login and the time of the
        check.
        """
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
            # Claim the attempt BEFORE comparing, in one atomic statement: concurrent
            # calls cannot compare more than sms_max_attempts codes (defect 11).
            attempt = self.gw.store.claim_attempt(
                login.login_id, max_attempts=limits.sms_max_attempts
            )
            if attempt is None:
                self.gw.store.update_login(login.login_id, expect_state="proved",
                                           state="locked")
                raise LoginLocked("this login is locked after too many wrong codes; start again")
            if not sms_mod.code_matches(request.sms_code, login.code_salt, login.code_hash):
                if attempt >= limits.sms_max_attempts:
                    self.gw.store.update_login(login.login_id, state="locked")
                    raise LoginLocked(
                        f"{attempt} wrong SMS codes: this login is locked; start again"
                    )
                raise LoginFailed(
                    f"wrong SMS code ({limits.sms_max_attempts - attempt} tries left)"
                )
            # The right code: its claim is handed back, so the count is of wrong codes and
            # the login's row is as it was until the write-ahead record is durable.
            self.gw.store.release_attempt(login.login_id)
        else:
            if which != "biometric":
                raise MissingField("a biometric assertion is required for this login")
            user = self.gw.store.require_user(login.user_id)
            if not user.device_public_key_der or login.device_challenge is None:
                # Said exactly as a wrong assertion (LOGIN_FAILED): whether a device is
                # enrolled is not told to whoever holds the certificate.
                raise LoginFailed(
                    "the assertion comes from a device key not enrolled for this user"
                )
            a = request.biometric
            current_call().details["biometric_method"] = a.method
            self.gw.biometric.verify(
                user.device_public_key_der, login.device_challenge, a.device_key_id,
                bytes(a.signature), a.method,
            )
        user, _cert = self._check_user_and_cert(login)
        return user, login, now

    def _open_session(
        self, user: UserRow, login: Any, now: _dt.datetime
    ) -> tuple[str, _dt.datetime]:
        """Complete the login and create its session (blocking; after the write-ahead
        record). Returns the session token and its expiry."""
        if not self.gw.store.update_login(login.login_id, expect_state="proved", state="done"):
            raise FailedPrecondition("login already completed")
        token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
        expires = now + _dt.timedelta(seconds=self.gw.config.limits.session_ttl_seconds)
        self.gw.store.create_session(
            token_hash=token_hash(token), user_id=user.user_id,
            cert_fingerprint=login.cert_fingerprint, factor=login.factor, expires_at=expires,
        )
        return token, expires

    async def GetConsent(
        self, request: auth_pb2.GetConsentRequest, context: aio.ServicerContext
    ) -> auth_pb2.ConsentText:
        return consent_text(self.gw.config.policy)

    async def SignConsent(
        self, request: auth_pb2.SignConsentRequest, context: aio.ServicerContext
    ) -> auth_pb2.SignConsentResponse:
        session = await self.gw.authenticate(context)
        return await sign_consent(self.gw, session, request)

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: aio.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        session = await self.gw.authenticate(context)
        await asyncio.to_thread(self.gw.store.end_session, session.token_hash)
        return auth_pb2.LogoutResponse()
