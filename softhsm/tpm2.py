"""A throw-away TPM 2.0 token: tpm2-pkcs11 on the swtpm emulator (development tooling).

Used by the test fixtures (``tests/p11impls.py``) and by ``bench/gateway.py
--gateway-token tpm2``; the benches must not import ``tests``, so what both need lives
here. :func:`start_swtpm` starts ``swtpm`` (TPM 2.0) on free loopback ports (the swtpm
TCTI sets the locality on the control channel at port + 1) with a state directory and an
empty tpm2-pkcs11 store under a directory the caller owns; :meth:`Swtpm.env` gives the
``TPM2_PKCS11_TCTI``/``TPM2_PKCS11_STORE`` variables tpm2-pkcs11 reads at
``C_Initialize``; :func:`init_token` makes a token on it in a subprocess (PINs on standard
input, never argv). ADR 0001 "Implementations": one key per login on a bare TPM, and one
process at a time (no resource manager here).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from signing.modules import TPM2_PKCS11_CANDIDATES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Swtpm:
    state: Path
    store: Path
    port: int
    ctrl: int
    pid: int

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def env(self) -> dict[str, str]:
        return {"TPM2_PKCS11_TCTI": self.tcti, "TPM2_PKCS11_STORE": str(self.store)}

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def start_swtpm(base: Path) -> Swtpm:
    """A fresh swtpm (TPM 2.0) on free loopback ports; the caller stops it."""
    state, store = base / "tpm", base / "store"
    state.mkdir()
    store.mkdir()
    stderr = ""
    for _ in range(20):
        # The swtpm TCTI sets the locality on the control channel at port + 1.
        port = free_port()
        ctrl = port + 1
        if port >= 65535 or not port_free(ctrl):
            continue
        pid_file = base / "swtpm.pid"
        proc = subprocess.run(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
             "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear", "--daemon",
             "--pid", f"file={pid_file}"],
            capture_output=True, text=True, timeout=30,
        )
        if proc.returncode == 0:
            wait_for_port(port)
            return Swtpm(state, store, port, ctrl, int(pid_file.read_text().strip()))
        stderr = proc.stderr.strip()
    raise RuntimeError(f"swtpm did not start: {stderr}")


def tpm2_library() -> str | None:
    """The tpm2-pkcs11 module's path, or None when it is not installed."""
    return next((p for p in TPM2_PKCS11_CANDIDATES if Path(p).exists()), None)


def init_token(library: str, label: str, so_pin: str, pin: str) -> None:
    """C_InitToken + C_InitPIN on the first free slot (PINs on stdin, never argv)."""
    proc = subprocess.run(
        [sys.executable, "-m", "softhsm._inittoken", "init", "--module", library],
        input=json.dumps({"label": label, "so_pin": so_pin, "user_pin": pin}),
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"token init on {library} failed: {proc.stderr.strip()[-500:]}")
