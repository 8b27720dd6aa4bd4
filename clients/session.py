"""Client settings and the CLI's session file under ``$SIOGW_HOME/client/``.

``config.json`` (written by the operator or ``python -m siogw.demo``) says where the gateway
is and which certificates to trust::

    {"target": "127.0.0.1:8443", "ca_file": "ca/root.pem",
     "gateway_cert": "certs/gateway.pem", "server_name": "localhost",
     "client_cert": null, "client_key": null}

Relative paths are relative to the home (``$SIOGW_HOME``, else the user's own state
directory: :func:`signing.home.default_home`).

**Profiles** let several people work from one home (an operator and an analyst on one
machine): profile ``NAME`` keeps its own ``session.json`` and ``config.json`` in
``client/profiles/NAME/`` (each directory guarded as below); its ``config.json``, if any,
overrides the keys of the shared ``client/config.json``. No profile (the default) is
``client/`` itself. A profile name is 1..64 characters of ``A-Z a-z 0-9 . _ -``, not
starting with ``.`` or ``-`` (so never a path separator or ``..``).

``session.json`` keeps the session token between CLI invocations and holds the token,
the user id, the key URI and the PIN *source* (``env:VAR`` / ``file:PATH``), never a
PIN. The library itself keeps the token in memory only.

**The session is a bearer token**, so its files are guarded as ssh guards ``~/.ssh``
(issue 13, defect 15):

* ``client/`` is created 0700 (whatever the umask) and checked on *every* use: it must be
  a real directory (not a symlink), owned by the user, and writable by no one else --
  otherwise the CLI refuses (:class:`~siogw_api.errors.ConfigError`) and writes nothing;
* ``session.json`` is written through a fresh temporary file created with
  ``O_CREAT|O_EXCL|O_NOFOLLOW`` and mode 0600 (set on the open descriptor, never by
  path), then renamed into place: a planted file or symlink makes the write fail instead
  of receiving the token;
* reading it, the file must be a regular file of the user's, readable by no one else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from signing.home import default_home
from siogw_api.errors import ConfigError, InputError

CONFIG_FILE = "config.json"
SESSION_FILE = "session.json"
PROFILES_DIR = "profiles"
#: What a profile name may be (module docstring): a single path component, never ``..``.
PROFILE_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def siogw_home(env: Mapping[str, str] | None = None) -> Path:
    """The client's home (:func:`signing.home.default_home`), absolute."""
    return default_home(env).expanduser().resolve()


def check_profile(name: str | None) -> str | None:
    """``name`` if it is a valid profile name, ``None`` for no profile (``None`` or empty);
    :class:`~siogw_api.errors.InputError` otherwise."""
    if not name:
        return None
    if not PROFILE_PATTERN.fullmatch(name):
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise InputError(
            f"invalid profile name {shown!r}",
            detail="use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
        )
    return name


def client_dir(home: Path | None = None, profile: str | None = None) -> Path:
    """``<home>/client``, or ``<home>/client/profiles/<profile>`` for a profile."""
    base = (home or siogw_home()) / "client"
    name = check_profile(profile)
    return base / PROFILES_DIR / name if name else base


def _refuse(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"refusing to use {path}: {why}",
        detail="the session token is a secret; fix the directory (chmod 700, owned by you) "
               "or remove it and log in again",
    )


def _guard(directory: Path) -> Path:
    """Create ``directory`` 0700 if missing (its parent must exist) and check it."""
    try:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(directory, 0o700, follow_symlinks=False)  # whatever the umask
        st = os.lstat(directory)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}", detail=exc.strerror) from exc
    return _check_private_dir(directory, st)


def _check_private_dir(directory: Path, st: os.stat_result) -> Path:
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _refuse(directory, "it is not a directory (a symlink or a file)")
    if st.st_uid != os.geteuid():
        raise _refuse(directory, "it is owned by another user")
    if st.st_mode & 0o022:
        raise _refuse(directory, f"it is writable by others (mode {st.st_mode & 0o777:o})")
    return directory


def private_dir(home: Path, profile: str | None = None) -> Path:
    """``<home>/client`` (or a profile's directory under it), created 0700 if missing,
    checked on every use (module docstring)."""
    directory = client_dir(home, profile)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {home}", detail=exc.strerror) from exc
    _guard(client_dir(home))
    if directory != client_dir(home):
        _guard(directory.parent)  # client/profiles
        _guard(directory)
    return directory


def session_path(
    home: Path, profile: str | None = None, session_file: str | Path | None = None
) -> Path:
    """Where the session file is: ``session_file`` if given (its directory must exist and
    be the user's own, writable by no one else), else in :func:`private_dir`."""
    if session_file is None or str(session_file) == "":
        return private_dir(home, profile) / SESSION_FILE
    path = Path(session_file).expanduser().absolute()
    try:
        st = os.stat(path.parent)  # the parent may be reached through links; not the file
    except OSError as exc:
        raise ConfigError(f"cannot use the session file {path}", detail=exc.strerror) from exc
    _check_private_dir(path.parent, st)
    return path


def create_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a *new* file ``path``: ``O_EXCL|O_NOFOLLOW``, mode 0600, fsynced.

    Raises :class:`FileExistsError` when anything (a file, a symlink) is already there.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.fchmod(fd, 0o600)  # on the descriptor: whatever the umask, never via a path
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ClientSettings:
    """Where the gateway is and what to trust."""

    target: str
    ca_file: Path
    gateway_cert: Path
    server_name: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


def _opt_path(home: Path, value: Any) -> Path | None:
    if value in (None, ""):
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else home / p


def load_settings(
    home: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> ClientSettings:
    """Settings from ``config.json`` (the shared one, then the profile's), then
    ``SIOGW_GATEWAY``/``SIOGW_CA_FILE``/``SIOGW_GATEWAY_CERT``, then ``overrides`` (CLI
    flags; ``None`` values are ignored)."""
    env = os.environ if env is None else env
    home = home or siogw_home(env)
    doc: dict[str, Any] = {}
    paths = [client_dir(home) / CONFIG_FILE]
    if check_profile(profile):
        paths.append(client_dir(home, profile) / CONFIG_FILE)
    path = paths[-1]
    for config in paths:
        if not config.exists():
            continue
        try:
            loaded = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {config}", detail=str(exc)) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config} is not a JSON object")
        doc.update(loaded)
    for var, key in (
        ("SIOGW_GATEWAY", "target"),
        ("SIOGW_CA_FILE", "ca_file"),
        ("SIOGW_GATEWAY_CERT", "gateway_cert"),
    ):
        if env.get(var):
            doc[key] = env[var]
    for key, value in (overrides or {}).items():
        if value is not None:
            doc[key] = value
    missing = [k for k in ("target", "ca_file", "gateway_cert") if not doc.get(k)]
    if missing:
        raise ConfigError(
            "client is not configured: missing " + ", ".join(missing),
            detail=f"set them in {path}, the environment or with --target/--ca-file/--gateway-cert",
        )
    ca_file = _opt_path(home, doc["ca_file"])
    gateway_cert = _opt_path(home, doc["gateway_cert"])
    assert ca_file is not None and gateway_cert is not None
    return ClientSettings(
        target=str(doc["target"]),
        ca_file=ca_file,
        gateway_cert=gateway_cert,
        server_name=doc.get("server_name") or None,
        client_cert=_opt_path(home, doc.get("client_cert")),
        client_key=_opt_path(home, doc.get("client_key")),
    )


def write_settings(
    home: Path, settings: Mapping[str, Any], profile: str | None = None
) -> Path:
    """Write ``config.json`` (the shared one, or the profile's): used by ``siogw client
    config``, the demo and operators' tooling."""
    directory = private_dir(home, profile)
    path = directory / CONFIG_FILE
    path.write_text(json.dumps(dict(settings), indent=2, default=str) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class StoredSession:
    """What ``siogw client login`` leaves for the next invocation (no PIN, no key)."""

    target: str
    user_id: str
    session_token: str
    expires_at: str
    key_uri: str
    cert_file: str | None = None
    pin_source: str | None = None


def save_session(
    home: Path,
    session: StoredSession,
    profile: str | None = None,
    *,
    session_file: str | Path | None = None,
) -> Path:
    """Write ``session.json`` (0600, through a new ``O_EXCL|O_NOFOLLOW`` file) into the
    checked ``client/`` directory (or the profile's, or ``session_file``: see
    :func:`session_path`), replacing the previous one atomically."""
    path = session_path(home, profile, session_file)
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        create_private_file(tmp, json.dumps(asdict(session)).encode("utf-8"))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
        raise ConfigError(f"cannot write the session file {path}",
                          detail=exc.strerror) from exc
    return path


def _read_private(path: Path) -> bytes:
    """The bytes of the user's own, private regular file ``path`` (no symlink followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, "it is not a regular file")
        if st.st_uid != os.geteuid():
            raise _refuse(path, "it is owned by another user")
        if st.st_mode & 0o077:
            raise _refuse(path, f"others may access it (mode {st.st_mode & 0o777:o})")
        return fh.read(1 << 20)


def load_session(
    home: Path, profile: str | None = None, *, session_file: str | Path | None = None
) -> StoredSession:
    path = session_path(home, profile, session_file)
    try:
        doc = json.loads(_read_private(path).decode("utf-8"))
        return StoredSession(**doc)
    except FileNotFoundError:
        login = "siogw client login" + (f" --profile {profile}" if profile else "")
        raise ConfigError("not logged in", detail=f"run `{login}` first") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read session file {path}", detail=str(exc)) from exc


def clear_session(
    home: Path, profile: str | None = None, *, session_file: str | Path | None = None
) -> bool:
    path = session_path(home, profile, session_file)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
