"""Client settings and the CLI's session file under ``$SIOGW_HOME/client/``.

``config.json`` (written by the operator or ``python -m siogw.demo``) says where the gateway
is and which certificates to trust::

    {"target": "127.0.0.1:8443", "ca_file": "ca/root.pem",
     "gateway_cert": "certs/gateway.pem", "server_name": "localhost",
     "client_cert": null, "client_key": null}

Relative paths are relative to ``$SIOGW_HOME``. ``session.json`` keeps the session token
between CLI invocations; it is created with mode 0600 and holds the token, the user id,
the key URI and the PIN *source* (``env:VAR`` / ``file:PATH``), never a PIN. The library
itself keeps the token in memory only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from siogw_api.errors import ConfigError

CONFIG_FILE = "config.json"
SESSION_FILE = "session.json"


def siogw_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("SIOGW_HOME", "var")).resolve()


def client_dir(home: Path | None = None) -> Path:
    return (home or siogw_home()) / "client"


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
    directory = client_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
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
    """Write ``session.json`` with mode 0600 (created so, never widened)."""
    directory = client_dir(home)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / SESSION_FILE
    tmp = directory / f".{SESSION_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(session), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_session(home: Path) -> StoredSession:
    path = client_dir(home) / SESSION_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return StoredSession(**doc)
    except FileNotFoundError:
        raise ConfigError("not logged in", detail="run `siogw client login` first") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read session file {path}", detail=str(exc)) from exc


def clear_session(home: Path) -> bool:
    path = client_dir(home) / SESSION_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
