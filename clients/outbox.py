"""Reading SMS codes from the gateway's SMS stand-in outbox (demo and tests only).

STAND-IN: there is no SMS provider here, so the gateway's SMS sender appends each message
as one JSON line to ``$SIOGW_HOME/sms-outbox.jsonl``. A real user reads the code on the
phone; the demo and tests read it from this file. Lines are matched loosely (``user_id``
or ``to``/``phone`` destination, ``code`` or a six-digit run in ``text``).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from siogw_api.errors import ConfigError

_CODE = re.compile(r"\b(\d{4,8})\b")


def destination_matches(masked: str, phone: str) -> bool:
    """``+7701***4567`` matches ``+77011234567``: same length, equal except at ``*``."""
    return len(masked) == len(phone) and all(
        m in ("*", p) for m, p in zip(masked, phone, strict=True)
    )


def _code_of(entry: dict[str, Any]) -> str | None:
    for key in ("code", "sms_code", "otp"):
        if isinstance(entry.get(key), str | int):
            return str(entry[key])
    for key in ("text", "message", "body"):
        if isinstance(entry.get(key), str):
            m = _CODE.search(entry[key])
            if m:
                return m.group(1)
    return None


def latest_code(
    outbox: str | Path,
    *,
    user_id: str | None = None,
    destination: str | None = None,
    after: int = 0,
    wait_seconds: float = 5.0,
) -> str:
    """The newest code in ``outbox`` (past its first ``after`` lines) for the user.

    Waits up to ``wait_seconds`` for the line to appear (the gateway writes it before it
    answers ProveLogin, so normally it is already there).
    """
    path = Path(outbox)
    deadline = time.monotonic() + wait_seconds
    while True:
        found: str | None = None
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()[after:]
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(entry, dict):
                    continue
                if user_id is not None and entry.get("user_id") not in (None, user_id):
                    continue
                if destination:
                    to = entry.get("to") or entry.get("phone") or entry.get("destination")
                    if isinstance(to, str) and not destination_matches(destination, to):
                        continue
                code = _code_of(entry)
                if code:
                    found = code
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise ConfigError(f"no SMS code for {user_id or destination} in {path}")
        time.sleep(0.05)


def line_count(outbox: str | Path) -> int:
    """Lines in the outbox now (pass as ``after`` to read only newer messages)."""
    try:
        return len(Path(outbox).read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        return 0
