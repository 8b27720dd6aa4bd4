"""PKCS#11 signing over python-pkcs11, through p11-kit's proxy by default.

Model (see docs/adr/0001-pkcs11-through-p11-kit.md):

* **One module handle per library path per process.** It is initialised lazily in the
  process that first uses it; the owning pid is recorded, and a forked child
  re-initialises (C_Finalize/C_Initialize) before its first call. No PKCS#11 state
  crosses ``fork()``.
* **One login per token, a bounded pool of sessions.** PKCS#11 login is per token per
  application (a second ``C_Login`` fails; closing the logged-in session logs every
  session out), so the first session of a token logs in and the others, opened
  without a PIN, share that login. Each operation borrows one session of the pool
  (at most ``SIOGW_PKCS11_SESSIONS``, default the CPU count; :meth:`_TokenSession.set_bound`)
  and gives it back, so threads sign on separate sessions in parallel. Key handles are
  cached per pooled session. ``shared_session(label).run(op, ...)`` still runs
  ``op(session)`` on a logged-in session.
* **Self-healing.** A call that fails because the session handle is invalid or closed,
  the user is no longer logged in, the device was removed, the token is not present or
  the library is not initialised drops the whole pool (its sessions die together) and
  its cached handles, re-initialises the module when the failure says so, logs in
  again and retries once. A token that is not found triggers one module
  re-initialisation too (a token created by another process is invisible until then).
  Module re-initialisation and closing a pool take an exclusive lock that every
  operation holds shared, so no thread is inside the module while it is finalised or
  while a session is logged out/closed (SoftHSM crashes on C_Logout during C_Sign).
* **Errors.** Every ``pkcs11.PKCS11Error`` comes out as a :mod:`signing.errors` class
  (TokenNotFound, KeyNotFound, PinError, UnsupportedAlgorithm, TokenError) naming the
  token and key. PIN failures are never retried (a retry could lock the token).

Concurrency: every public method is safe to call from many threads. PKCS#11 calls block,
so asyncio callers should use ``await asyncio.to_thread(signer.sign, payload)`` (or
:meth:`Pkcs11Signer.sign_async`), never call :meth:`Pkcs11Signer.sign` on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from asn1crypto.core import ObjectIdentifier, OctetString
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from signing.api import Algorithm, PublicKey, Signer, key_id_for
from signing.errors import (
    KeyNotFound,
    KeyURIError,
    PinError,
    TokenError,
    TokenNotFound,
    UnsupportedAlgorithm,
)
from signing.pins import EnvPin, FilePin, PinSpec, as_pin_source, resolve_pin
from signing.uri import Pkcs11URI, parse_pkcs11_uri
from signing.verify import PSS_SALT_LENGTH, check_key_algorithm, coerce_algorithm
from siogw_api.errors import ConfigError

_log = logging.getLogger(__name__)
T = TypeVar("T")

ED25519_OID = "1.3.101.112"
#: Key types :meth:`Pkcs11Token.generate_keypair` accepts.
KEY_TYPES = ("ec", "rsa", "ed25519")

# Failures that a fresh session fixes.
_SESSION_FAILURES: tuple[type[Exception], ...] = (
    p11x.SessionHandleInvalid,
    p11x.SessionClosed,
    p11x.UserNotLoggedIn,
    p11x.ObjectHandleInvalid,
    p11x.KeyHandleInvalid,
)
# Failures that need the module re-initialised (and then a fresh session).
_MODULE_FAILURES: tuple[type[Exception], ...] = (
    p11x.DeviceRemoved,
    p11x.TokenNotPresent,
    p11x.TokenNotRecognised,
    p11x.SlotIDInvalid,
    p11x.NoSuchToken,
)
_PIN_FAILURES: tuple[type[Exception], ...] = (
    p11x.PinIncorrect,
    p11x.PinInvalid,
    p11x.PinLenRange,
    p11x.PinLocked,
    p11x.PinExpired,
    p11x.UserPinNotInitialized,
)
_ALGORITHM_FAILURES: tuple[type[Exception], ...] = (
    p11x.MechanismInvalid,
    p11x.MechanismParamInvalid,
    p11x.KeyTypeInconsistent,
    p11x.FunctionNotSupported,
    p11x.KeySizeRange,
)


def _not_initialised(exc: BaseException) -> bool:
    # python-pkcs11 maps CKR_CRYPTOKI_NOT_INITIALIZED to a bare PKCS11Error.
    return type(exc) is p11x.PKCS11Error and "not initialized" in str(exc)


def _heal_kind(exc: BaseException) -> str | None:
    """``"module"``, ``"session"`` or ``None`` (not healable)."""
    if isinstance(exc, _MODULE_FAILURES) or _not_initialised(exc):
        return "module"
    if isinstance(exc, _SESSION_FAILURES):
        return "session"
    return None


def wrap_error(exc: BaseException, *, op: str, token: str | None, key: str | None) -> Exception:
    """The :mod:`signing.errors` exception for a python-pkcs11 failure."""
    where = f"token {token!r}" + (f" key {key!r}" if key is not None else "")
    name = type(exc).__name__
    if isinstance(exc, p11x.NoSuchToken):
        return TokenNotFound(f"{op}: no token labelled {token!r} is present")
    if isinstance(exc, p11x.NoSuchKey):
        return KeyNotFound(f"{op}: {where}: no such key")
    if isinstance(exc, p11x.MultipleObjectsReturned):
        return KeyNotFound(f"{op}: {where}: more than one key matches; add id= to the URI")
    if isinstance(exc, _PIN_FAILURES):
        return PinError(f"{op}: {where}: the token refused the PIN ({name})")
    if isinstance(exc, _ALGORITHM_FAILURES):
        return UnsupportedAlgorithm(f"{op}: {where}: the token refused the mechanism ({name})")
    return TokenError(f"{op}: {where}: PKCS#11 failure ({name})", detail=str(exc) or None)


# --- a shared/exclusive lock -----------------------------------------------------------
class _SharedExclusiveLock:
    """Many holders in shared mode, or one in exclusive mode (writers are preferred).

    :meth:`acquire_shared`/:meth:`release_shared` are the hot path of every PKCS#11 call:
    one short critical section each, and a wake-up only when a writer is waiting.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_shared(self) -> None:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_shared(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0 and self._writers_waiting:
                self._cond.notify_all()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# --- module handles ---------------------------------------------------------------------
#: pid in which each library path was last C_Initialize'd by this module.
_initialised_in: dict[str, int] = {}


class _Module:
    """A PKCS#11 library loaded in this process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.generation = 0
        self.rw = _SharedExclusiveLock()
        self._lock = threading.Lock()
        self._lib: Any = None

    def lib(self) -> Any:
        """The initialised ``pkcs11.lib`` (loads and initialises on first use)."""
        with self._lock:
            if self._lib is None:
                self._lib = self._load()
            return self._lib

    def _load(self) -> Any:
        try:
            lib = pkcs11.lib(self.path)
        except p11x.PKCS11Error as exc:
            raise TokenError(f"cannot load PKCS#11 module {self.path}", detail=str(exc)) from exc
        pid = os.getpid()
        if _initialised_in.get(self.path, pid) != pid:
            # Inherited across fork(): the parent's initialisation is not ours.
            with contextlib.suppress(p11x.PKCS11Error):
                lib.finalize()
            try:
                lib.initialize()
            except p11x.PKCS11Error as exc:
                raise TokenError(
                    f"cannot initialise PKCS#11 module {self.path} after fork", detail=str(exc)
                ) from exc
        _initialised_in[self.path] = pid
        return lib

    def reinitialize(self, seen_generation: int) -> None:
        """C_Finalize + C_Initialize, unless someone did it since ``seen_generation``."""
        with self.rw.exclusive():
            if self.generation != seen_generation:
                return
            lib = self.lib()
            _log.info("re-initialising PKCS#11 module %s", self.path)
            with contextlib.suppress(p11x.PKCS11Error):
                lib.finalize()
            try:
                lib.initialize()
            except p11x.PKCS11Error as exc:
                raise TokenError(
                    f"cannot re-initialise PKCS#11 module {self.path}", detail=str(exc)
                ) from exc
            self.generation += 1


_registry_lock = threading.Lock()
_modules: dict[str, _Module] = {}
_sessions: dict[tuple[str, str], _TokenSession] = {}
_owner_pid = os.getpid()


def _reset_after_fork() -> None:
    global _registry_lock, _owner_pid
    _registry_lock = threading.Lock()
    _modules.clear()
    _sessions.clear()
    _owner_pid = os.getpid()


os.register_at_fork(after_in_child=_reset_after_fork)


def _check_pid() -> None:
    if os.getpid() != _owner_pid:  # fork without the at-fork hook (should not happen)
        _reset_after_fork()


def default_module_path() -> str:
    from softhsm.store import SoftHSMError, find_pkcs11_module

    try:
        return str(find_pkcs11_module())
    except SoftHSMError as exc:
        raise TokenError("no PKCS#11 module found", detail=exc.diagnostics()) from exc


def get_module(path: str | None = None) -> _Module:
    """The process-wide handle of the module at ``path`` (default: p11-kit-proxy)."""
    path = path or default_module_path()
    _check_pid()
    with _registry_lock:
        module = _modules.get(path)
        if module is None:
            module = _modules[path] = _Module(path)
        return module


def reinitialize_module(path: str | None = None) -> None:
    """Re-initialise a module now (e.g. after another process created a token)."""
    module = get_module(path)
    module.reinitialize(module.generation)


def close_all_sessions() -> None:
    """Log out and close every shared session of this process (shutdown, tests)."""
    _check_pid()
    with _registry_lock:
        sessions = list(_sessions.values())
    for shared in sessions:  # kept registered: the next call reopens and logs in
        shared.close()


# --- the session pool of one token --------------------------------------------------------
def _pin_digest(pin: str, salt: bytes) -> bytes:
    return hmac.new(salt, pin.encode("utf-8"), hashlib.sha256).digest()


#: Environment variable bounding the sessions per token (default: the CPU count).
POOL_SIZE_ENV = "SIOGW_PKCS11_SESSIONS"


def default_pool_size() -> int:
    """Sessions per token: ``$SIOGW_PKCS11_SESSIONS`` or the CPU count (at least 1)."""
    raw = os.environ.get(POOL_SIZE_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{POOL_SIZE_ENV}={raw!r} is not a whole number") from None
        if value < 1:
            raise ConfigError(f"{POOL_SIZE_ENV} must be at least 1, not {value}")
        return value
    return max(1, os.cpu_count() or 1)


class _Pooled:
    """One session of a token's pool and the key handles found through it."""

    __slots__ = ("closed", "epoch", "generation", "handles", "login", "session")

    def __init__(self, session: Any, epoch: int, generation: int, *, login: bool) -> None:
        self.session = session
        self.epoch = epoch  # the pool epoch it belongs to (see _TokenSession)
        self.generation = generation  # module generation its handle is valid in
        self.login = login  # the session that carries the token's login
        self.closed = False
        self.handles: dict[Any, Any] = {}


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of one token's session pool."""

    bound: int
    open: int
    idle: int
    in_use: int
    peak_in_use: int
    epoch: int


class _TokenSession:
    """The sessions of one token in this process: one login, a bounded pool of sessions.

    The first session opened in an *epoch* logs in (the "login session"); the others are
    opened without a PIN and share that login (login state is per token per
    application). A caller borrows one session for one operation, so threads sign on
    separate sessions in parallel, up to ``bound`` sessions; further callers wait. Key
    handles are cached per pooled session. A healable failure ends the epoch: every
    session of the pool is dropped together (they die together on re-initialisation or
    device removal), the next caller logs in again.

    Lock order: the module's lock (shared to run an operation, exclusive to close
    sessions), then ``self._cond``.
    """

    def __init__(self, module: _Module, label: str, bound: int | None = None) -> None:
        self.module = module
        self.label = label
        self._cond = threading.Condition(threading.Lock())
        self._bound = bound if bound is not None else default_pool_size()
        self._token: Any = None
        self._login: _Pooled | None = None
        self._epoch = 0
        self._idle: list[_Pooled] = []
        self._live: list[_Pooled] = []  # every open session of the current epoch
        self._opening = 0  # sessions being opened outside the lock (count to the bound)
        self._waiting = 0  # borrowers waiting at the bound
        self._in_use = 0
        self._peak = 0
        self._salt = secrets.token_bytes(16)
        self._pin_digest: bytes | None = None

    # -- configuration and introspection ----------------------------------------------
    @property
    def bound(self) -> int:
        """The most sessions this token's pool opens at once."""
        return self._bound

    def set_bound(self, bound: int) -> None:
        """Change the bound; idle sessions above it close now, borrowed ones on return."""
        if bound < 1:
            raise ConfigError(f"a token session pool needs at least 1 session, not {bound}")
        with self.module.rw.exclusive(), self._cond:
            self._bound = bound
            for entry in [e for e in self._idle if not e.login]:
                if len(self._live) <= bound:
                    break
                self._idle.remove(entry)
                self._live.remove(entry)
                self._close_entry(entry, self.module.generation)
            self._cond.notify_all()

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                bound=self._bound, open=len(self._live), idle=len(self._idle),
                in_use=self._in_use, peak_in_use=self._peak, epoch=self._epoch,
            )

    @property
    def _session(self) -> Any:
        """The session holding the login (``None`` when the pool is empty)."""
        login = self._login
        return login.session if login is not None and not login.closed else None

    # -- state (callers hold the module's shared lock) ---------------------------------
    def _open_login(self, pin_spec: PinSpec | None) -> _Pooled:
        """Open and log in; start a new epoch (caller holds ``self._cond``)."""
        lib = self.module.lib()
        try:
            token = lib.get_token(token_label=self.label)
        except p11x.MultipleTokensReturned as exc:
            raise TokenNotFound(f"more than one token is labelled {self.label!r}") from exc
        if pin_spec is None:
            raise PinError(f"token {self.label!r}: no PIN source given")
        pin = resolve_pin(pin_spec, f"token {self.label!r}")
        try:
            session = token.open(rw=True, user_pin=pin)
        except p11x.UserAlreadyLoggedIn:
            # Logged in already by this process (e.g. a forked child with inherited
            # state): a plain session shares the login. Keep the PIN check honest.
            session = token.open(rw=True)
            if self._pin_digest is not None and not hmac.compare_digest(
                self._pin_digest, _pin_digest(pin, self._salt)
            ):
                session.close()
                raise PinError(
                    f"token {self.label!r}: PIN does not match the logged-in PIN"
                ) from None
        self._pin_digest = _pin_digest(pin, self._salt)
        self._token = token
        self._epoch += 1
        login = _Pooled(session, self._epoch, self.module.generation, login=True)
        self._login = login
        self._live.append(login)
        return login

    def _end_epoch(self) -> None:
        """Drop every session of the current epoch (caller holds both locks).

        Idle sessions and the login session are closed now (closing the login session
        logs the token out); borrowed ones are closed when they come back. Handles from
        before a module re-initialisation are only forgotten. Callers that close hold
        the module's lock exclusively: SoftHSM crashes when C_Logout/C_CloseSession run
        while another thread is inside C_Sign on the same token.
        """
        current = self.module.generation
        for entry in [*self._idle, *([self._login] if self._login else [])]:
            self._close_entry(entry, current)
        self._epoch += 1
        self._idle.clear()
        self._live = []
        self._login = None
        self._token = None
        self._cond.notify_all()

    @staticmethod
    def _close_entry(entry: _Pooled, generation: int) -> None:
        # A handle from before a module re-initialisation may now name someone else's
        # session: never close it.
        if not entry.closed and entry.generation == generation:
            with contextlib.suppress(p11x.PKCS11Error):
                entry.session.close()
        entry.closed = True
        entry.handles.clear()

    def _borrow(self, pin_spec: PinSpec | None) -> _Pooled:
        """Take a session of the current epoch for one operation (waits at the bound).

        The caller holds the module's shared lock, so the module generation is stable.
        """
        with self._cond:
            if self._login is not None and self._login.generation != self.module.generation:
                self._end_epoch()  # the module was re-initialised: every handle is stale
            while True:
                if self._in_use < self._bound:
                    if self._login is None:
                        return self._lend(self._open_login(pin_spec))
                    if self._idle:
                        return self._lend(self._idle.pop())
                    if len(self._live) + self._opening < self._bound:
                        break
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            token, epoch, generation = self._token, self._epoch, self.module.generation
            self._opening += 1
            self._count_borrow()
        try:
            # Opened outside the pool lock; no PIN: it shares the login.
            session = token.open(rw=True)
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._in_use -= 1
                self._cond.notify_all()
            raise
        entry = _Pooled(session, epoch, generation, login=False)
        with self._cond:
            self._opening -= 1
            if epoch == self._epoch:
                self._live.append(entry)
            # else: the epoch ended meanwhile; _give_back closes it after this one use
        return entry

    def _count_borrow(self) -> None:
        self._in_use += 1
        if self._in_use > self._peak:
            self._peak = self._in_use

    def _lend(self, entry: _Pooled) -> _Pooled:
        self._count_borrow()
        return entry

    def _give_back(self, entry: _Pooled) -> None:
        with self._cond:
            self._in_use -= 1
            if entry.epoch == self._epoch and not entry.closed:
                if entry.login or len(self._live) <= self._bound:
                    self._idle.append(entry)
                    if self._waiting:
                        self._cond.notify()
                    return
                self._live.remove(entry)  # above a lowered bound
            self._close_entry(entry, self.module.generation)
            self._cond.notify()

    def _invalidate(self, epoch: int | None) -> None:
        """End ``epoch`` after a healable failure (no-op if someone already did)."""
        with self.module.rw.exclusive(), self._cond:
            if epoch is not None and epoch == self._epoch and self._login is not None:
                self._end_epoch()

    def close(self) -> None:
        """Log out and close the pool's sessions (the next call logs in again)."""
        with self.module.rw.exclusive(), self._cond:
            if self._login is not None:
                self._end_epoch()

    def clear_handles(self) -> None:
        """Forget every cached key handle (after objects were destroyed)."""
        with self._cond:
            for entry in self._live:
                entry.handles.clear()

    def check_pin(self, pin_spec: PinSpec) -> None:
        """Refuse a PIN that differs from the one the open session was unlocked with.

        Without an open session the next C_Login checks the PIN itself.
        """
        pin = resolve_pin(pin_spec, f"token {self.label!r}")
        with self._cond:
            if self._login is None or self._pin_digest is None:
                return
            if not hmac.compare_digest(self._pin_digest, _pin_digest(pin, self._salt)):
                raise PinError(f"token {self.label!r}: PIN does not match the logged-in PIN")

    def pin_changed(self, new_pin: str) -> None:
        with self._cond:
            self._pin_digest = _pin_digest(new_pin, self._salt)

    # -- running operations -----------------------------------------------------------
    def run(
        self,
        op: Callable[[Any], T],
        *,
        pin_spec: PinSpec | None,
        what: str,
        key: str | None = None,
    ) -> T:
        """Run ``op(session)`` on a borrowed logged-in session, healing once."""
        return self.run_pooled(lambda entry: op(entry.session), pin_spec=pin_spec, what=what,
                               key=key)

    def run_pooled(
        self,
        op: Callable[[_Pooled], T],
        *,
        pin_spec: PinSpec | None,
        what: str,
        key: str | None = None,
    ) -> T:
        """Run ``op(entry)`` (session + handle cache), healing once on a session/module
        failure: the whole pool is dropped, the module re-initialised if the failure
        says so, and ``op`` runs again on a fresh login."""
        if os.getpid() != _owner_pid:
            _check_pid()
        module = self.module
        rw = module.rw
        for attempt in (1, 2):
            generation = module.generation
            epoch: int | None = None
            try:
                rw.acquire_shared()
                try:
                    entry = self._borrow(pin_spec)
                    epoch = entry.epoch
                    try:
                        return op(entry)
                    finally:
                        self._give_back(entry)
                finally:
                    rw.release_shared()
            except p11x.PKCS11Error as exc:
                kind = _heal_kind(exc)
                if kind is None or attempt == 2:
                    raise wrap_error(exc, op=what, token=self.label, key=key) from exc
                _log.warning(
                    "PKCS#11 %s on token %r failed (%s); reopening the session%s",
                    what, self.label, type(exc).__name__,
                    " and re-initialising the module" if kind == "module" else "",
                )
                self._invalidate(epoch)
                if kind == "module":
                    module.reinitialize(generation)
        raise AssertionError("unreachable")


def shared_session(label: str, module_path: str | None = None) -> _TokenSession:
    """The process-wide session pool of token ``label`` (``run(op, ...)`` borrows one)."""
    module = get_module(module_path)
    with _registry_lock:
        key = (module.path, label)
        shared = _sessions.get(key)
        if shared is None:
            shared = _sessions[key] = _TokenSession(module, label)
        return shared


# --- public key export ------------------------------------------------------------------
def _ec_point_bytes(raw: bytes) -> bytes:
    """EC_POINT is a DER OCTET STRING per the standard; some modules give it bare."""
    try:
        parsed = OctetString.load(raw)
        return bytes(parsed.native)
    except (ValueError, TypeError):
        return raw


def public_key_from_object(obj: Any) -> PublicKey:
    """A ``cryptography`` public key from a PKCS#11 public key object."""
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        n = int.from_bytes(obj[Attribute.MODULUS], "big")
        e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if key_type == KeyType.EC:
        key = serialization.load_der_public_key(encode_ec_public_key(obj))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key
    if key_type == KeyType.EC_EDWARDS:
        return ed25519.Ed25519PublicKey.from_public_bytes(
            _ec_point_bytes(obj[Attribute.EC_POINT])
        )
    raise UnsupportedAlgorithm(f"unsupported PKCS#11 key type {key_type!r}")


def _find(session: Any, attrs: dict[Any, Any]) -> list[Any]:
    # list() exhausts the search so python-pkcs11 releases its session lock at once.
    return list(session.get_objects(attrs))


def _key_attrs(cls: ObjectClass, label: str | None, key_id: bytes | None) -> dict[Any, Any]:
    attrs: dict[Any, Any] = {Attribute.CLASS: cls}
    if label is not None:
        attrs[Attribute.LABEL] = label
    if key_id is not None:
        attrs[Attribute.ID] = key_id
    return attrs


def _one(objs: list[Any], what: str) -> Any:
    if not objs:
        raise p11x.NoSuchKey(what)
    if len(objs) > 1:
        raise p11x.MultipleObjectsReturned(what)
    return objs[0]


# --- the signer -------------------------------------------------------------------------
_PSS_PARAM = (Mechanism.SHA256, pkcs11.MGF.SHA256, PSS_SALT_LENGTH)


class Pkcs11Signer(Signer):
    """Signs with a private key on a PKCS#11 token.

    ``uri`` is an RFC 7512 URI (string or parsed) naming the token and the key by
    ``object`` (label) and/or ``id``. The PIN comes from ``pin_source`` or the URI's
    ``pin-source``. ``algorithm`` picks RSA padding (default RSA-PSS-SHA256).
    ``certificate``: a certificate, a PEM/DER path, or ``None`` to look for a
    CKO_CERTIFICATE with the key's CKA_ID on the token.

    Construction opens (or joins) the token's shared session and reads the public key,
    so a missing token, key or wrong PIN fails here.
    """

    def __init__(
        self,
        uri: str | Pkcs11URI,
        *,
        pin_source: PinSpec | None = None,
        certificate: x509.Certificate | Path | str | None = None,
        algorithm: Algorithm | str | None = None,
        module_path: str | None = None,
    ) -> None:
        parsed = parse_pkcs11_uri(uri) if isinstance(uri, str) else uri
        if parsed.token is None:
            raise KeyURIError("a pkcs11: signing URI must name the token (token=...)")
        if parsed.object is None and parsed.id is None:
            raise KeyURIError("a pkcs11: signing URI must name the key (object= and/or id=)")
        if parsed.type not in (None, "private"):
            raise KeyURIError(f"a signing key URI must have type=private, not {parsed.type}")
        spec = pin_source if pin_source is not None else parsed.pin_source
        if spec is None:
            raise PinError(f"{parsed.describe()}: no PIN source (pin-source= or pin_source)")
        self._pin_spec: PinSpec = as_pin_source(spec)
        self._uri = parsed
        self._module_path = module_path or parsed.module_path or default_module_path()
        self._shared_cache: tuple[int, _TokenSession] | None = None
        self._label = parsed.object
        self._id = parsed.id
        self._key_name = parsed.object if parsed.object is not None else parsed.id.hex()  # type: ignore[union-attr]
        self._handle_key = ("private", self._label, self._id)
        shared = self._shared()
        shared.check_pin(self._pin_spec)
        public_key, key_id = shared.run_pooled(
            self._load_public, pin_spec=self._pin_spec, what="read public key", key=self._key_name
        )
        self._public: PublicKey = public_key
        self._ck_id: bytes = key_id
        if algorithm is None:
            from signing.software import default_algorithm

            self._algorithm = default_algorithm(public_key)
        else:
            self._algorithm = coerce_algorithm(algorithm)
        check_key_algorithm(public_key, self._algorithm)
        self._key_id = key_id_for(public_key)
        self._certificate: x509.Certificate | None = None
        self._certificate_loaded = False
        if certificate is not None:
            from signing.registry import load_certificate

            self._certificate = load_certificate(certificate)
            self._certificate_loaded = True
            self._check_certificate(self._certificate)

    def _shared(self) -> _TokenSession:
        # Remembered per process: after fork() the registry is new.
        cached = self._shared_cache
        if cached is not None and cached[0] == _owner_pid == os.getpid():
            return cached[1]
        assert self._uri.token is not None
        shared = shared_session(self._uri.token, self._module_path)
        self._shared_cache = (os.getpid(), shared)
        return shared

    def _private(self, entry: _Pooled) -> Any:
        """The private key object, through ``entry``'s handle cache."""
        handles = entry.handles
        key = handles.get(self._handle_key)
        if key is None:
            objs = _find(entry.session,
                         _key_attrs(ObjectClass.PRIVATE_KEY, self._label, self._id))
            key = handles[self._handle_key] = _one(objs, f"private key {self._key_name!r}")
        return key

    def _load_public(self, entry: _Pooled) -> tuple[PublicKey, bytes]:
        session = entry.session
        private = self._private(entry)
        key_id: bytes = private[Attribute.ID] or b""
        candidates: list[Any] = []
        if key_id:
            candidates = _find(session, _key_attrs(ObjectClass.PUBLIC_KEY, None, key_id))
        if not candidates and self._label is not None:
            candidates = _find(session, _key_attrs(ObjectClass.PUBLIC_KEY, self._label, None))
        if len(candidates) != 1:
            if private[Attribute.KEY_TYPE] == KeyType.RSA:
                # An RSA private key carries its modulus and public exponent.
                return public_key_from_object(private), key_id
            raise p11x.NoSuchKey("no unique public key object next to the private key")
        return public_key_from_object(candidates[0]), key_id

    def _check_certificate(self, cert: x509.Certificate | None) -> None:
        if cert is None:
            return
        cert_key = cert.public_key()
        if not isinstance(
            cert_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ) or key_id_for(cert_key) != self._key_id:
            raise UnsupportedAlgorithm(
                f"{self._uri.describe()}: the certificate does not belong to this key"
            )

    @property
    def uri(self) -> Pkcs11URI:
        return self._uri

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def ck_id(self) -> bytes:
        """The key's CKA_ID on the token."""
        return self._ck_id

    @property
    def certificate(self) -> x509.Certificate | None:
        if not self._certificate_loaded:
            cert = self._shared().run(
                self._load_certificate, pin_spec=self._pin_spec, what="read certificate",
                key=self._key_name,
            )
            self._check_certificate(cert)
            self._certificate = cert
            self._certificate_loaded = True
        return self._certificate

    def _load_certificate(self, session: Any) -> x509.Certificate | None:
        if not self._ck_id:
            return None
        objs = _find(session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: self._ck_id})
        if not objs:
            return None
        return x509.load_der_x509_certificate(bytes(objs[0][Attribute.VALUE]))

    def sign(self, payload: bytes) -> bytes:
        """Sign ``payload``; ECDSA comes out DER-encoded. Thread-safe.

        Borrows one session of the token's pool for the one C_SignInit/C_Sign pair.
        """
        alg = self._algorithm
        if alg is Algorithm.ECDSA_P256_SHA256:
            # SoftHSM has no hashed ECDSA mechanism: hash here, sign the digest.
            digest = hashlib.sha256(payload).digest()

            def op(entry: _Pooled) -> bytes:
                raw = self._private(entry).sign(digest, mechanism=Mechanism.ECDSA)
                half = len(raw) // 2
                return encode_dss_signature(
                    int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                )
        else:
            data = bytes(payload)
            if alg is Algorithm.RSA_PSS_SHA256:
                kwargs: dict[str, Any] = {
                    "mechanism": Mechanism.SHA256_RSA_PKCS_PSS, "mechanism_param": _PSS_PARAM,
                }
            elif alg is Algorithm.RSA_PKCS1_SHA256:
                kwargs = {"mechanism": Mechanism.SHA256_RSA_PKCS}
            else:
                kwargs = {"mechanism": Mechanism.EDDSA}

            def op(entry: _Pooled) -> bytes:
                return bytes(self._private(entry).sign(data, **kwargs))

        return self._shared().run_pooled(
            op, pin_spec=self._pin_spec, what="sign", key=self._key_name
        )

    async def sign_async(self, payload: bytes) -> bytes:
        """:meth:`sign` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.sign, payload)

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self._uri.describe()}, {self._algorithm.value})"


# --- token management -------------------------------------------------------------------
@dataclass(frozen=True)
class KeyInfo:
    """A key pair on a token."""

    label: str
    id: bytes
    key_type: str
    public_key: PublicKey | None

    @property
    def key_id(self) -> str | None:
        """Key id (hex SHA-256 of the SPKI) when the public key is known."""
        return key_id_for(self.public_key) if self.public_key is not None else None


_KEY_TYPE_NAMES = {KeyType.EC: "ec", KeyType.RSA: "rsa", KeyType.EC_EDWARDS: "ed25519"}


class Pkcs11Token:
    """Key management on one token (through its shared, logged-in session).

    Keys are generated on the token: private keys are sensitive, non-extractable and
    sign-only, and both halves carry the same random 16-byte CKA_ID.
    """

    def __init__(
        self, label: str, *, pin_source: PinSpec, module_path: str | None = None
    ) -> None:
        self.label = label
        self._pin_spec = as_pin_source(pin_source)
        self._module_path = module_path

    def _run(self, op: Callable[[Any], T], what: str, key: str | None = None) -> T:
        shared = shared_session(self.label, self._module_path)
        shared.check_pin(self._pin_spec)
        return shared.run(op, pin_spec=self._pin_spec, what=what, key=key)

    def uri(self, label: str | None = None, key_id: bytes | None = None) -> str:
        """A ``pkcs11:`` URI for a key on this token (carries the pin-source if textual)."""
        pin = str(self._pin_spec) if isinstance(self._pin_spec, EnvPin | FilePin) else None
        return str(Pkcs11URI(token=self.label, object=label, id=key_id, type="private",
                             pin_source=pin))

    def supports(self, key_type: str) -> bool:
        """Whether the token can generate and sign with ``key_type`` (e.g. ``ed25519``)."""
        needed = {
            "ec": {Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA},
            "rsa": {Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.SHA256_RSA_PKCS_PSS},
            "ed25519": {Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA},
        }.get(key_type)
        if needed is None:
            return False

        def op(session: Any) -> bool:
            return needed <= set(session.token.slot.get_mechanisms())

        return self._run(op, "list mechanisms")

    def generate_keypair(
        self, key_type: str, label: str, *, key_id: bytes | None = None
    ) -> bytes:
        """Generate ``key_type`` (``ec`` P-256, ``rsa`` 2048, ``ed25519``); return CKA_ID."""
        if key_type not in KEY_TYPES:
            raise UnsupportedAlgorithm(
                f"key type {key_type!r} not supported (use one of {', '.join(KEY_TYPES)})"
            )
        ck_id = key_id if key_id is not None else secrets.token_bytes(16)
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template: dict[Any, Any] = {Attribute.VERIFY: True, Attribute.PRIVATE: False}
        capabilities = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY

        def op(session: Any) -> bytes:
            if _find(session, _key_attrs(ObjectClass.PRIVATE_KEY, label, None)):
                raise KeyURIError(f"token {self.label!r} already has a key labelled {label!r}")
            kwargs: dict[str, Any] = dict(
                store=True, label=label, id=ck_id, capabilities=capabilities,
                private_template=private_template,
            )
            if key_type == "ec":
                public_template[Attribute.EC_PARAMS] = encode_named_curve_parameters("secp256r1")
                session.generate_keypair(KeyType.EC, public_template=public_template, **kwargs)
            elif key_type == "rsa":
                session.generate_keypair(
                    KeyType.RSA, 2048, public_template=public_template, **kwargs
                )
            else:
                public_template[Attribute.EC_PARAMS] = ObjectIdentifier(ED25519_OID).dump()
                session.generate_keypair(
                    KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    public_template=public_template, **kwargs,
                )
            return ck_id

        return self._run(op, "generate key", key=label)

    def list_keys(self) -> list[KeyInfo]:
        """Private keys on the token, with their public halves when present."""

        def op(session: Any) -> list[KeyInfo]:
            out: list[KeyInfo] = []
            for private in _find(session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
                ck_id = private[Attribute.ID] or b""
                label = private[Attribute.LABEL] or ""
                pubs = (
                    _find(session, _key_attrs(ObjectClass.PUBLIC_KEY, None, ck_id)) if ck_id else []
                )
                public = public_key_from_object(pubs[0]) if len(pubs) == 1 else None
                raw_type = private[Attribute.KEY_TYPE]
                kt = _KEY_TYPE_NAMES.get(raw_type, str(raw_type))
                out.append(KeyInfo(label=label, id=bytes(ck_id), key_type=kt, public_key=public))
            return out

        return self._run(op, "list keys")

    def public_key(self, *, label: str | None = None, key_id: bytes | None = None) -> PublicKey:
        """The public key (from its CKO_PUBLIC_KEY object) by label and/or CKA_ID."""
        if label is None and key_id is None:
            raise KeyURIError("name the key by label or id")
        name = label if label is not None else (key_id or b"").hex()

        def op(session: Any) -> PublicKey:
            obj = _one(_find(session, _key_attrs(ObjectClass.PUBLIC_KEY, label, key_id)), name)
            return public_key_from_object(obj)

        return self._run(op, "export public key", key=name)

    def delete(self, *, label: str | None = None, key_id: bytes | None = None) -> int:
        """Destroy every key and certificate object with this label and/or id; return count."""
        if label is None and key_id is None:
            raise KeyURIError("name the key to delete by label or id")
        name = label if label is not None else (key_id or b"").hex()

        def op(session: Any) -> int:
            count = 0
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
                for obj in _find(session, _key_attrs(cls, label, key_id)):
                    obj.destroy()
                    count += 1
            if count == 0:
                raise p11x.NoSuchKey(name)
            return count

        result = self._run(op, "delete key", key=name)
        shared_session(self.label, self._module_path).clear_handles()
        return result

    def import_certificate(
        self, certificate: x509.Certificate, *, key_id: bytes, label: str | None = None
    ) -> None:
        """Store an X.509 certificate with the key's CKA_ID (found by Pkcs11Signer)."""
        der = certificate.public_bytes(serialization.Encoding.DER)

        def op(session: Any) -> None:
            session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.ID: key_id,
                Attribute.LABEL: label or key_id.hex(),
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.ISSUER: certificate.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: _der_integer(certificate.serial_number),
                Attribute.VALUE: der,
            })

        self._run(op, "import certificate", key=label or key_id.hex())

    def set_pin(self, new_pin: PinSpec, *, old_pin: PinSpec | None = None) -> None:
        """Change the user PIN (C_SetPIN on the logged-in session)."""
        old = resolve_pin(old_pin or self._pin_spec, f"token {self.label!r}")
        new = resolve_pin(new_pin, f"new PIN of token {self.label!r}")

        def op(session: Any) -> None:
            session.set_pin(old, new)

        self._run(op, "set PIN")
        shared_session(self.label, self._module_path).pin_changed(new)


def _der_integer(value: int) -> bytes:
    from asn1crypto.core import Integer

    return bytes(Integer(value).dump())


__all__ = [
    "KEY_TYPES",
    "POOL_SIZE_ENV",
    "KeyInfo",
    "Pkcs11Signer",
    "Pkcs11Token",
    "PoolStats",
    "close_all_sessions",
    "default_pool_size",
    "get_module",
    "public_key_from_object",
    "reinitialize_module",
    "shared_session",
    "wrap_error",
]
