"""A project-local SoftHSM token store (test and development tooling).

:class:`TokenStore` keeps SoftHSM's configuration and token files under
``$SIOGW_HOME/softhsm/`` (the home defaults to the user's ``~/.local/state/siogw``, see
``signing.home``), never in the system token directory. SoftHSM reads
``SOFTHSM2_CONF`` at ``C_Initialize``, so set it (see :meth:`TokenStore.env`) before any
PKCS#11 library is loaded in a process.

Tokens are initialised in a short-lived subprocess (``python -m softhsm._inittoken``)
that takes the PINs on its standard input: PINs never appear on any argv or in logs.

Which PKCS#11 module production signing loads is :mod:`signing.modules`, not this module:
signing never imports :mod:`softhsm`; this module uses signing's list of SoftHSM paths.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from signing.home import default_home
from signing.modules import SOFTHSM_CANDIDATES, first_existing
from siogw_api.errors import ConfigError, SigningError

#: Environment variable naming the SoftHSM library (overrides the well-known paths).
ENV_SOFTHSM_LIB = "SIOGW_SOFTHSM_LIB"


class SoftHSMError(SigningError):
    """SoftHSM could not be found, configured or asked to initialise a token."""


def find_softhsm_library() -> Path:
    """The SoftHSM v2 shared library (``SIOGW_SOFTHSM_LIB`` overrides the search)."""
    override = os.environ.get(ENV_SOFTHSM_LIB)
    if override:
        if not Path(override).exists():
            raise SoftHSMError(f"{ENV_SOFTHSM_LIB} names a missing file", detail=override)
        return Path(override)
    found = first_existing(SOFTHSM_CANDIDATES)
    if found is None:
        raise SoftHSMError(
            "SoftHSM v2 library not found",
            detail="install the softhsm2 package or set " + ENV_SOFTHSM_LIB,
        )
    return found


@dataclass(frozen=True)
class TokenInfo:
    """One slot's token as SoftHSM reports it."""

    label: str
    serial: str
    slot_id: int
    initialized: bool
    user_pin_initialized: bool


def _check_pin(name: str, pin: str) -> None:
    if not isinstance(pin, str) or not (4 <= len(pin.encode("utf-8")) <= 255):
        raise ConfigError(f"{name} must be 4 to 255 bytes long")


class TokenStore:
    """A SoftHSM token directory and configuration file under ``home/softhsm``.

    Creating the object writes the directory (mode 0700) and ``softhsm2.conf``; it is
    idempotent and keeps existing tokens.
    """

    def __init__(self, home: Path | str | None = None, *, log_level: str = "ERROR") -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = (self.home / "softhsm").absolute()
        self.token_dir = self.root / "tokens"
        self.conf_path = self.root / "softhsm2.conf"
        self._log_level = log_level
        self._write()

    def _write(self) -> None:
        try:
            self.token_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
            os.chmod(self.token_dir, 0o700)
            template = (
                resources.files("softhsm").joinpath("softhsm2.conf.template").read_text("utf-8")
            )
            text = string.Template(template).substitute(
                tokendir=str(self.token_dir), log_level=self._log_level
            )
            if not self.conf_path.exists() or self.conf_path.read_text("utf-8") != text:
                tmp = self.conf_path.with_suffix(".tmp")
                tmp.write_text(text, "utf-8")
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.conf_path)
        except OSError as exc:
            raise SoftHSMError("cannot create the SoftHSM token store", detail=str(exc)) from exc

    def env(self) -> dict[str, str]:
        """Environment variables that point SoftHSM at this store."""
        return {"SOFTHSM2_CONF": str(self.conf_path)}

    def activate(self) -> None:
        """Set ``SOFTHSM2_CONF`` in this process (do it before loading PKCS#11)."""
        os.environ.update(self.env())

    def _run(self, action: str, stdin: str | None = None) -> str:
        env = {**os.environ, **self.env()}
        cmd = [sys.executable, "-m", "softhsm._inittoken", action,
               "--module", str(find_softhsm_library())]
        proc = subprocess.run(
            cmd, input=stdin, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise SoftHSMError(f"softhsm token {action} failed", detail=proc.stderr.strip())
        return proc.stdout

    def init_token(self, label: str, so_pin: str, user_pin: str) -> TokenInfo:
        """Initialise a new token ``label`` with the given SO and user PINs."""
        if not label or len(label.encode("utf-8")) > 32:
            raise ConfigError("token label must be 1 to 32 bytes long", detail=repr(label))
        _check_pin("SO PIN", so_pin)
        _check_pin("user PIN", user_pin)
        request = json.dumps({"label": label, "so_pin": so_pin, "user_pin": user_pin})
        out = json.loads(self._run("init", request))
        return TokenInfo(
            label=out["label"], serial=out["serial"], slot_id=int(out["slot_id"]),
            initialized=True, user_pin_initialized=True,
        )

    def list_tokens(self) -> list[TokenInfo]:
        """Every slot of this store, including SoftHSM's one free (uninitialised) slot."""
        return [
            TokenInfo(
                label=item["label"], serial=item["serial"], slot_id=int(item["slot_id"]),
                initialized=bool(item["initialized"]),
                user_pin_initialized=bool(item["user_pin_initialized"]),
            )
            for item in json.loads(self._run("list"))
        ]
