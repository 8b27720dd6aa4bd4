"""The SMS second factor (R5): one-time codes, stored hashed, sent through an SmsSender.

:class:`SmsSender` is the interface to an SMS provider. None can exist here, so the
embedded default :class:`OutboxSmsSender` is a STAND-IN: it appends each message to
``$SIOGW_HOME/sms-outbox.jsonl`` (mode 0600 in a 0700 directory, :mod:`server.files`),
where tests and the demo read the code.

Codes are 6 random digits; only ``HMAC-SHA-256(salt, code)`` with a fresh 16-byte salt is
kept; they expire after ``limits.sms_code_ttl_seconds`` (5 minutes) and
``limits.sms_max_attempts`` (5) wrong tries lock the login.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from server.files import private_file
from siogw_api.timeutil import astana_iso

CODE_DIGITS = 6


@runtime_checkable
class SmsSender(Protocol):
    """Sends a text message to a phone number (blocking; called from a worker thread)."""

    def send(self, phone: str, text: str) -> None: ...


class OutboxSmsSender:
    """STAND-IN for a real SMS provider: appends ``{to, text, at}`` lines to a JSONL file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._private = False

    def send(self, phone: str, text: str) -> None:
        line = json.dumps({"to": phone, "text": text, "at": astana_iso()}, ensure_ascii=False)
        with self._lock:
            if not self._private:
                private_file(self.path)  # 0600 in a 0700 directory, whatever the umask
                self._private = True
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)

    def messages(self) -> list[dict[str, str]]:
        """Every message sent so far (tests and the demo)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def new_code() -> str:
    """A uniformly random 6-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, salt: bytes) -> bytes:
    """HMAC-SHA-256 of the code keyed by the salt: what the database keeps."""
    return hmac.new(salt, code.encode("ascii", "replace"), hashlib.sha256).digest()


def code_matches(code: str, salt: bytes, expected: bytes) -> bool:
    """Constant-time comparison of a presented code with the stored hash."""
    return hmac.compare_digest(hash_code(code.strip(), salt), expected)


def mask_phone(phone: str) -> str:
    """``+77011234567`` -> ``+7701***4567`` (what ProveLogin tells the client)."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 9 if len(phone) > 9 else 3) + phone[-4:]


def message_text(code: str) -> str:
    return f"IES gateway login code: {code}. Valid 5 minutes. Do not share it."
