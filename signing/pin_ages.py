"""PIN ages (R8: the token password changes at least monthly).

``$SIOGW_HOME/softhsm/pin-ages.json`` records when each token's user PIN was last set
(``siogw token init|change-pin`` write it); ``siogw token list`` and the administrators'
certificate overview warn when a PIN is older than :data:`PIN_MAX_AGE_DAYS` or of unknown
age. File format: ``{"version": 1, "tokens": {label: {"changed_at": ISO 8601}}}``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from signing.uri import Pkcs11URI, parse_key_uri
from siogw_api.errors import ConfigError
from siogw_api.timeutil import astana_iso, parse_iso

#: A token PIN older than this many days is overdue (R8, §12: at least monthly).
PIN_MAX_AGE_DAYS = 30
PIN_AGES_FILE = "pin-ages.json"


def pin_ages_path(home: Path) -> Path:
    """``$SIOGW_HOME/softhsm/pin-ages.json``."""
    return home / "softhsm" / PIN_AGES_FILE


def load_pin_ages(home: Path) -> dict[str, _dt.datetime]:
    """Token label -> when its user PIN was last set (UTC)."""
    path = pin_ages_path(home)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}", detail=str(exc)) from exc
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(tokens, dict):
        raise ConfigError(f"{path} has no 'tokens' object")
    out: dict[str, _dt.datetime] = {}
    for label, item in tokens.items():
        if not isinstance(item, dict) or not isinstance(item.get("changed_at"), str):
            raise ConfigError(f"{path}: entry for {label!r} has no changed_at")
        out[label] = parse_iso(item["changed_at"])
    return out


def record_pin_change(home: Path, label: str, at: _dt.datetime | None = None) -> None:
    """Record that ``label``'s user PIN was set at ``at`` (default now)."""
    ages = load_pin_ages(home)
    ages[label] = at or _dt.datetime.now(_dt.UTC)
    doc = {"version": 1, "tokens": {k: {"changed_at": astana_iso(v)} for k, v in ages.items()}}
    path = pin_ages_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)


def pin_change_for_key(home: Path, key_uri: str) -> _dt.datetime | None:
    """When the PIN of the token a ``pkcs11:`` key URI names was last set, if recorded
    under ``home`` (``None`` for other keys, or a token never recorded). The client
    reports it at login (§12)."""
    uri = parse_key_uri(key_uri)
    if not isinstance(uri, Pkcs11URI) or not uri.token:
        return None
    return load_pin_ages(home).get(uri.token)


def pin_age_warning(
    label: str, changed_at: _dt.datetime | None, now: _dt.datetime, max_days: int = PIN_MAX_AGE_DAYS
) -> str | None:
    """A warning line if ``label``'s PIN is overdue or its age unknown, else ``None``."""
    if changed_at is None:
        return (
            f"warning: PIN age of token {label!r} is unknown; "
            "change it with `siogw token change-pin`"
        )
    age = now - changed_at
    if age > _dt.timedelta(days=max_days):
        return (
            f"warning: PIN of token {label!r} is {age.days} days old (last changed "
            f"{astana_iso(changed_at)}); change it at least every {max_days} days"
        )
    return None
