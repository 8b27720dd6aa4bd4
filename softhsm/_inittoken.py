"""Token initialisation and listing through ctypes on the SoftHSM library.

Run as ``python -m softhsm._inittoken init|list``. It is a short-lived subprocess on
purpose: ``softhsm2-util --init-token`` only takes PINs on its argv (visible in ``ps``),
and C_Initialize of this process must not disturb the caller's PKCS#11 state.

``init`` reads one JSON object from standard input::

    {"label": "...", "so_pin": "...", "user_pin": "..."}

and prints ``{"label": ..., "serial": ..., "slot_id": ...}``. ``list`` prints a JSON list of
tokens. PINs are never printed or logged. The module path comes from ``--module`` (default:
the SoftHSM library found by :func:`softhsm.store.find_softhsm_library`); the token store
from the ``SOFTHSM2_CONF`` environment variable.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from typing import Any

from softhsm.store import find_softhsm_library

CK_ULONG = ctypes.c_ulong
CK_RV = CK_ULONG

CKR_OK = 0
CKF_RW_SESSION = 0x2
CKF_SERIAL_SESSION = 0x4
CKF_TOKEN_INITIALIZED = 0x400
CKF_USER_PIN_INITIALIZED = 0x8
CKU_SO = 0

# Names of the return values this tool can meet (for readable errors).
_RV_NAMES = {
    0x3: "CKR_SLOT_ID_INVALID",
    0x5: "CKR_GENERAL_ERROR",
    0x6: "CKR_FUNCTION_FAILED",
    0x7: "CKR_ARGUMENTS_BAD",
    0x30: "CKR_DEVICE_ERROR",
    0xA0: "CKR_PIN_INCORRECT",
    0xA1: "CKR_PIN_INVALID",
    0xA2: "CKR_PIN_LEN_RANGE",
    0xA4: "CKR_PIN_LOCKED",
    0xB3: "CKR_SESSION_HANDLE_INVALID",
    0xB6: "CKR_SESSION_EXISTS",
    0xE0: "CKR_TOKEN_NOT_PRESENT",
    0x100: "CKR_USER_ALREADY_LOGGED_IN",
    0x190: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
}


class CK_VERSION(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class CK_TOKEN_INFO(ctypes.Structure):
    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturerID", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serialNumber", ctypes.c_char * 16),
        ("flags", CK_ULONG),
        ("ulMaxSessionCount", CK_ULONG),
        ("ulSessionCount", CK_ULONG),
        ("ulMaxRwSessionCount", CK_ULONG),
        ("ulRwSessionCount", CK_ULONG),
        ("ulMaxPinLen", CK_ULONG),
        ("ulMinPinLen", CK_ULONG),
        ("ulTotalPublicMemory", CK_ULONG),
        ("ulFreePublicMemory", CK_ULONG),
        ("ulTotalPrivateMemory", CK_ULONG),
        ("ulFreePrivateMemory", CK_ULONG),
        ("hardwareVersion", CK_VERSION),
        ("firmwareVersion", CK_VERSION),
        ("utcTime", ctypes.c_char * 16),
    ]


class Pkcs11CallError(Exception):
    def __init__(self, function: str, rv: int) -> None:
        name = _RV_NAMES.get(rv, f"0x{rv:08X}")
        super().__init__(f"{function} failed: {name}")
        self.rv = rv


def _padded(text: str, size: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > size:
        raise ValueError(f"token label longer than {size} bytes")
    return raw.ljust(size, b" ")


class _Cryptoki:
    """The few C_* functions this tool needs, bound from the module's exports."""

    def __init__(self, path: str) -> None:
        self._lib = ctypes.CDLL(path)

    def call(self, name: str, *args: Any) -> None:
        func = getattr(self._lib, name)
        func.restype = CK_RV
        rv = int(func(*args))
        if rv != CKR_OK:
            raise Pkcs11CallError(name, rv)

    def __enter__(self) -> _Cryptoki:
        self.call("C_Initialize", None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._lib.C_Finalize(None)

    def slots(self) -> list[int]:
        count = CK_ULONG(0)
        self.call("C_GetSlotList", ctypes.c_ubyte(1), None, ctypes.byref(count))
        array = (CK_ULONG * max(count.value, 1))()
        self.call("C_GetSlotList", ctypes.c_ubyte(1), array, ctypes.byref(count))
        return [int(array[i]) for i in range(count.value)]

    def token_info(self, slot: int) -> CK_TOKEN_INFO:
        info = CK_TOKEN_INFO()
        self.call("C_GetTokenInfo", CK_ULONG(slot), ctypes.byref(info))
        return info


def _describe(slot: int, info: CK_TOKEN_INFO) -> dict[str, Any]:
    return {
        "slot_id": slot,
        "label": bytes(info.label).decode("utf-8", "replace").rstrip(" "),
        "serial": bytes(info.serialNumber).decode("ascii", "replace").rstrip(" "),
        "initialized": bool(info.flags & CKF_TOKEN_INITIALIZED),
        "user_pin_initialized": bool(info.flags & CKF_USER_PIN_INITIALIZED),
    }


def list_tokens(module: str) -> list[dict[str, Any]]:
    with _Cryptoki(module) as ck:
        return [_describe(slot, ck.token_info(slot)) for slot in ck.slots()]


def init_token(module: str, label: str, so_pin: str, user_pin: str) -> dict[str, Any]:
    """C_InitToken on the first free slot, then C_Login(SO) and C_InitPIN."""
    label_field = _padded(label, 32)
    with _Cryptoki(module) as ck:
        free: int | None = None
        for slot in ck.slots():
            info = ck.token_info(slot)
            described = _describe(slot, info)
            if described["initialized"] and described["label"] == label:
                raise ValueError(f"a token labelled {label!r} already exists")
            if not described["initialized"] and free is None:
                free = slot
        if free is None:
            raise ValueError("no free slot for a new token")
        so = so_pin.encode("utf-8")
        user = user_pin.encode("utf-8")
        ck.call(
            "C_InitToken", CK_ULONG(free), ctypes.c_char_p(so), CK_ULONG(len(so)),
            ctypes.c_char_p(label_field),
        )
        session = CK_ULONG(0)
        ck.call(
            "C_OpenSession", CK_ULONG(free), CK_ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION),
            None, None, ctypes.byref(session),
        )
        try:
            ck.call("C_Login", session, CK_ULONG(CKU_SO), ctypes.c_char_p(so), CK_ULONG(len(so)))
            ck.call("C_InitPIN", session, ctypes.c_char_p(user), CK_ULONG(len(user)))
            ck.call("C_Logout", session)
        finally:
            ck._lib.C_CloseSession(session)
        info = ck.token_info(free)
        result = _describe(free, info)
    return {"label": result["label"], "serial": result["serial"], "slot_id": result["slot_id"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softhsm._inittoken")
    parser.add_argument("action", choices=["init", "list"])
    parser.add_argument("--module", default=None, help="PKCS#11 library (default: SoftHSM)")
    args = parser.parse_args(argv)
    module = args.module or str(find_softhsm_library())
    try:
        if args.action == "list":
            out: Any = list_tokens(module)
        else:
            request = json.loads(sys.stdin.read())
            out = init_token(
                module, str(request["label"]), str(request["so_pin"]), str(request["user_pin"])
            )
    except (Pkcs11CallError, ValueError, KeyError, TypeError, OSError) as exc:
        # Messages name functions and return values only, never PINs.
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
