"""openCryptoki's software token for tests and benches (development tooling).

Moved out of ``tests/p11impls.py`` so that ``bench/sign.py`` can use it (the benches
must not import ``tests``). The token state is machine-global
(``/var/lib/opencryptoki/swtok``, slot :data:`OCK_SLOT`): :func:`ock_init` makes it
ours idempotently with the label :data:`OCK_LABEL`, SO PIN :data:`OCK_SO_PIN` and user
PIN :data:`OCK_USER_PIN` (a token with another label, or one whose user PIN is refused,
is re-initialised; ADR 0001); run it as ``python -m softhsm.ock ock-init --module LIB``
with the PINs as JSON on standard input, never argv. :func:`ensure_pkcsslotd` starts
exactly one ``pkcsslotd``. Known PINs: test state, never a production token.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from signing.modules import OPENCRYPTOKI_CANDIDATES
from softhsm._inittoken import (
    CK_ULONG,
    CKF_RW_SESSION,
    CKF_SERIAL_SESSION,
    CKU_SO,
    Pkcs11CallError,
    _Cryptoki,
    _describe,
    _padded,
)

#: openCryptoki's software token: its slot on Debian 12 and the project's known PINs
#: (PIN length 4-8). The token is machine-global test state, never a production token.
OCK_SLOT = 3
OCK_LABEL = "siogw-test-ock"
OCK_SO_PIN = "siogwSO1"
OCK_USER_PIN = "siogwUs1"
OCK_FACTORY_SO_PIN = "87654321"
#: The pid file of pkcsslotd (openCryptoki's slot daemon).
PKCSSLOTD_PID = Path("/run/pkcsslotd.pid")


def _pkcsslotd_running() -> bool:
    try:
        pid = int(PKCSSLOTD_PID.read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    # "pid (comm) state ...": a zombie (state Z) left by a killed daemon is not running
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    return comm == "pkcsslotd" and rest.split()[:1] != ["Z"]


def ensure_pkcsslotd() -> None:
    """Start pkcsslotd unless it runs (a second one would tear down the shared memory)."""
    if _pkcsslotd_running():
        return
    exe = shutil.which("pkcsslotd") or "/usr/sbin/pkcsslotd"
    subprocess.run([exe], check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while not _pkcsslotd_running():
        if time.monotonic() > deadline:
            raise RuntimeError("pkcsslotd did not start")
        time.sleep(0.05)


def ock_library() -> str | None:
    return next((p for p in OPENCRYPTOKI_CANDIDATES if Path(p).exists()), None)


# --- token initialisation (a subprocess: python -m softhsm.ock ock-init) -----------------
def ock_init(library: str, label: str, so_pin: str, user_pin: str) -> str:
    """Make slot OCK_SLOT's token ours: reuse it when the label and user PIN match,
    else C_InitToken (with our SO PIN, or the factory one), C_InitPIN, C_SetPIN(SO)."""
    cku_user = 1
    with _Cryptoki(library) as ck:
        described = _describe(OCK_SLOT, ck.token_info(OCK_SLOT))

        def session() -> Any:
            handle = CK_ULONG(0)
            ck.call("C_OpenSession", CK_ULONG(OCK_SLOT),
                    CK_ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION), None, None,
                    ctypes.byref(handle))
            return handle

        def login(handle: Any, user: int, pin: str) -> None:
            raw = pin.encode()
            ck.call("C_Login", handle, CK_ULONG(user), ctypes.c_char_p(raw), CK_ULONG(len(raw)))

        if described["initialized"] and described["label"] == label:
            handle = session()
            try:
                login(handle, cku_user, user_pin)
                ck._lib.C_Logout(handle)
                return "reused"
            except Pkcs11CallError:
                pass
            finally:
                ck._lib.C_CloseSession(handle)
        last: Exception | None = None
        for so in (so_pin, OCK_FACTORY_SO_PIN):
            raw_so = so.encode()
            try:
                ck.call("C_InitToken", CK_ULONG(OCK_SLOT), ctypes.c_char_p(raw_so),
                        CK_ULONG(len(raw_so)), ctypes.c_char_p(_padded(label, 32)))
            except Pkcs11CallError as exc:
                last = exc
                continue
            handle = session()
            try:
                login(handle, CKU_SO, so)
                raw_user = user_pin.encode()
                ck.call("C_InitPIN", handle, ctypes.c_char_p(raw_user), CK_ULONG(len(raw_user)))
                if so != so_pin:
                    new_so = so_pin.encode()
                    ck.call("C_SetPIN", handle, ctypes.c_char_p(raw_so), CK_ULONG(len(raw_so)),
                            ctypes.c_char_p(new_so), CK_ULONG(len(new_so)))
                ck._lib.C_Logout(handle)
            finally:
                ck._lib.C_CloseSession(handle)
            return "initialised"
        raise RuntimeError(f"cannot initialise the openCryptoki token: {last}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m softhsm.ock")
    parser.add_argument("action", choices=["ock-init"])
    parser.add_argument("--module", required=True)
    args = parser.parse_args(argv)
    request = json.loads(sys.stdin.read())
    try:
        outcome = ock_init(args.module, request["label"], request["so_pin"],
                            request["user_pin"])
    except Exception as exc:  # names functions and return values only, never PINs
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
