"""The PKCS#11 session layer: module handles, fork safety, one login and a session pool per token.

Model (see docs/adr/0001-pkcs11-through-p11-kit.md):

* **One module handle per library path per process** (:func:`get_module`; the path comes
  from :func:`signing.modules.find_pkcs11_module`). It is initialised lazily in the
  process that first uses it; the owning pid is recorded, and a forked child
  re-initialises (C_Finalize/C_Initialize) before its first call. No PKCS#11 state
  crosses ``fork()``.
* **One login per token, a bounded pool of sessions** (:class:`TokenSession`,
  :func:`shared_session`). PKCS#11 login is per token per application (a second
  ``C_Login`` fails; closing the logged-in session logs every session out), so the first
  session of a token logs in and the others, opened without a PIN, share that login.
  Each operation borrows one session of the pool and gives it back, so threads sign on
  separate sessions in parallel. The bound defaults to the CPU count
  (:func:`default_pool_size`); the caller that knows better passes it
  (``Pkcs11Signer(sessions=...)``, ``load_signer(..., sessions=...)``, or
  :meth:`TokenSession.set_bound`). Key handles are cached per pooled session.
  ``shared_session(label).run(op, ...)`` runs ``op(session)`` on a logged-in session.
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
  (:func:`wrap_error`: TokenNotFound, KeyNotFound, PinError, UnsupportedAlgorithm,
  TokenError) naming the token and key. PIN failures are never retried (a retry could
  lock the token).

Key lookup is :mod:`signing.pkcs11_keys`, signing :mod:`signing.pkcs11_signer`, key
management :mod:`signing.pkcs11_token`. Every public function and method here is safe to
call from many threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pkcs11
from pkcs11 import exceptions as p11x

from signing.errors import (
    KeyNotFound,
    PinError,
    TokenError,
    TokenNotFound,
    UnsupportedAlgorithm,
)
from signing.modules import find_pkcs11_module
from signing.pins import PinSpec, resolve_pin
from siogw_api.errors import ConfigError

_log = logging.getLogger(__name__)
T = TypeVar("T")

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


#: Modules that are safe to call from many threads although python-pkcs11 initialises
#: them without arguments (file-name prefixes): p11-kit's proxy, which initialises the
#: modules behind it with OS locking. Every other module is serialised: one PKCS#11
#: call at a time per module in this process (ADR 0001, "Implementations": tpm2-pkcs11
#: and SoftHSM turn their locking off without CKF_OS_LOCKING_OK; openCryptoki 3.8 loaded
#: directly crashed with 8 threads signing on 2 sessions).
SELF_LOCKING_MODULES: tuple[str, ...] = ("p11-kit-proxy",)


def locks_by_itself(path: str) -> bool:
    """Whether the module at ``path`` is safe to call from many threads at once."""
    name = os.path.basename(path)
    return any(name.startswith(prefix) for prefix in SELF_LOCKING_MODULES)


class _Module:
    """A PKCS#11 library loaded in this process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.generation = 0
        self.rw = _SharedExclusiveLock()
        #: Held around every operation of a module that does not lock by itself
        #: (re-entrant: an operation may run another on the same module).
        self.serial: Any = None if locks_by_itself(path) else threading.RLock()
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
_sessions: dict[tuple[str, str], TokenSession] = {}

#: Called with a token's label each time its session pool heals (the gateway's metrics,
#: issue 17); they must not raise or block.
_reopen_listeners: list[Callable[[str], None]] = []


def add_reopen_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(token_label)`` whenever a pool re-opens its sessions (idempotent)."""
    with _registry_lock:
        if listener not in _reopen_listeners:
            _reopen_listeners.append(listener)
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



def get_module(path: str | None = None) -> _Module:
    """The process-wide handle of the module at ``path``.

    ``None``: the module :func:`signing.modules.find_pkcs11_module` finds.
    """
    path = str(find_pkcs11_module(path))
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

def registry_pid() -> int:
    """The pid the module and session registry belongs to (it is emptied after fork)."""
    return _owner_pid


# --- the session pool of one token --------------------------------------------------------
def _pin_digest(pin: str, salt: bytes) -> bytes:
    return hmac.new(salt, pin.encode("utf-8"), hashlib.sha256).digest()


def default_pool_size() -> int:
    """Sessions per token unless the caller says otherwise: the CPU count (at least 1)."""
    return max(1, os.cpu_count() or 1)


def check_pool_size(sessions: int) -> int:
    """``sessions`` if it is a whole number >= 1; else :class:`ConfigError`."""
    if isinstance(sessions, bool) or not isinstance(sessions, int):
        raise ConfigError(f"a token session pool size must be a whole number, not {sessions!r}")
    if sessions < 1:
        raise ConfigError(f"a token session pool needs at least 1 session, not {sessions}")
    return sessions


class PooledSession:
    """One session of a token's pool and the key handles found through it."""

    __slots__ = ("closed", "epoch", "generation", "handles", "login", "session")

    def __init__(self, session: Any, epoch: int, generation: int, *, login: bool) -> None:
        self.session = session
        self.epoch = epoch  # the pool epoch it belongs to (see TokenSession)
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


class TokenSession:
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
        self._login: PooledSession | None = None
        self._epoch = 0
        self._idle: list[PooledSession] = []
        self._live: list[PooledSession] = []  # every open session of the current epoch
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
    def _open_login(self, pin_spec: PinSpec | None) -> PooledSession:
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
        login = PooledSession(session, self._epoch, self.module.generation, login=True)
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
    def _close_entry(entry: PooledSession, generation: int) -> None:
        # A handle from before a module re-initialisation may now name someone else's
        # session: never close it.
        if not entry.closed and entry.generation == generation:
            with contextlib.suppress(p11x.PKCS11Error):
                entry.session.close()
        entry.closed = True
        entry.handles.clear()

    def _borrow(self, pin_spec: PinSpec | None) -> PooledSession:
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
        entry = PooledSession(session, epoch, generation, login=False)
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

    def _lend(self, entry: PooledSession) -> PooledSession:
        self._count_borrow()
        return entry

    def _give_back(self, entry: PooledSession) -> None:
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
        op: Callable[[PooledSession], T],
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
        serial = module.serial
        for attempt in (1, 2):
            generation = module.generation
            epoch: int | None = None
            try:
                rw.acquire_shared()
                if serial is not None:
                    serial.acquire()
                try:
                    entry = self._borrow(pin_spec)
                    epoch = entry.epoch
                    try:
                        return op(entry)
                    finally:
                        self._give_back(entry)
                finally:
                    if serial is not None:
                        serial.release()
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
                for listener in tuple(_reopen_listeners):
                    try:
                        listener(self.label)
                    except Exception:  # a metric never breaks signing
                        _log.exception("PKCS#11 re-open listener failed")
        raise AssertionError("unreachable")


def shared_session(label: str, module_path: str | None = None) -> TokenSession:
    """The process-wide session pool of token ``label`` (``run(op, ...)`` borrows one)."""
    module = get_module(module_path)
    with _registry_lock:
        key = (module.path, label)
        shared = _sessions.get(key)
        if shared is None:
            shared = _sessions[key] = TokenSession(module, label)
        return shared
