"""Client settings and the CLI's session file under ``$SIOGW_HOME/client/``.

``config.json`` (written by the operator or ``python -m siogw.demo``) says where the gateway
is and which certificates to trust::

    {"target": "127.0.0.1:8443", "ca_file": "ca/root.pem",
     "gateway_cert": "certs/gateway.pem", "server_name": "localhost",
     "client_cert": null, "client_key": null}

Relative paths are relative to the home (``$SIOGW_HOME``, else the user's own state
directory: :func:`signing.home.default_home`). ``session.json`` keeps the session token
between CLI invocations and holds the token, the user id, the key URI and the PIN
*source* (``env:VAR`` / ``file:PATH``), never a PIN. The library itself keeps the token
in memory only.

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
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from signing.home import default_home
from siogw_api.errors import ConfigError

CONFIG_FILE = "config.json"
SESSION_FILE = "session.json"


def siogw_home(env: Mapping[str, str] | None = None) -> Path:
    """The client's home (:func:`signing.home.default_home`), absolute."""
    return default_home(env).expanduser().resolve()


def client_dir(home: Path | None = None) -> Path:
    return (home or siogw_home()) / "client"


def _refuse(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"refusing to use {path}: {why}",
        detail="the session token is a secret; fix the directory (chmod 700, owned by you) "
               "or remove it and log in again",
    )


def private_dir(home: Path) -> Path:
    """``<home>/client``, created 0700 if missing, checked on every use (module docstring)."""
    directory = client_dir(home)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(directory, 0o700, follow_symlinks=False)  # whatever the umask
        st = os.lstat(directory)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}", detail=exc.strerror) from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _refuse(directory, "it is not a directory (a symlink or a file)")
    if st.st_uid != os.geteuid():
        raise _refuse(directory, "it is owned by another user")
    if st.st_mode & 0o022:
        raise _refuse(directory, f"it is writable by others (mode {st.st_mode & 0o777:o})")
    return directory


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
) -> ClientSettings:
    """Settings from ``config.json``, then ``SIOGW_GATEWAY``/``SIOGW_CA_FILE``/
    ``SIOGW_GATEWAY_CERT``, then ``overrides`` (CLI flags; ``None`` values are ignored)."""
    env = os.environ if env is None else env
    home = home or siogw_home(env)
    doc: dict[str, Any] = {}
    path = client_dir(home) / CONFIG_FILE
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}", detail=str(exc)) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} is not a JSON object")
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


def write_settings(home: Path, settings: Mapping[str, Any]) -> Path:
    """Write ``config.json`` (used by the demo and by operators' tooling)."""
    directory = private_dir(home)
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


def save_session(home: Path, session: StoredSession) -> Path:
    """Write ``session.json`` (0600, through a new ``O_EXCL|O_NOFOLLOW`` file) into the
    checked ``client/`` directory, replacing the previous one atomically."""
    directory = private_dir(home)
    path = directory / SESSION_FILE
    tmp = directory / f".{SESSION_FILE}.{secrets.token_hex(8)}.tmp"
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


def load_session(home: Path) -> StoredSession:
    path = private_dir(home) / SESSION_FILE
    try:
        doc = json.loads(_read_private(path).decode("utf-8"))
        return StoredSession(**doc)
    except FileNotFoundError:
        raise ConfigError("not logged in", detail="run `siogw client login` first") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read session file {path}", detail=str(exc)) from exc


def clear_session(home: Path) -> bool:
    path = private_dir(home) / SESSION_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
