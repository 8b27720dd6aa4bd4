"""The FM-1 message: its JSON form, and the one parser that validates it (R17, S§30, S§35).

A compliance officer signs one JSON object (DSSE payload type
``application/vnd.siogw.fm1+json``) on their token. :func:`parse_fm1` turns the signed
bytes into an :class:`Fm1Message` or refuses with :class:`InvalidFm1Field` naming the
first bad field by its path (``operation.currency``, ``parties[1].idn``) and the check
that failed; nothing of a refused message is stored (the refusal record is all the
gateway keeps). Every field is bounded here, before anything else reads it.

The fields (``docs/usage.md`` "FM-1 messages" has an example per kind)::

    message_id      1-64 of A-Z a-z 0-9 . _ : / -            always
    provider_bin    the provider's BIN (check digit)          always
    kind            one of KINDS                               always
    action          report (default) | correction | withdrawal
    amends          the message id a correction/withdrawal names (only then)
    operation       {date, amount, currency | crypto, description}
        date        ISO 8601 with offset
        amount      decimal text, > 0, <= 18 integer digits, <= 2 decimals
        currency    ISO 4217 alphabetic code (pycountry's table)
        crypto      {asset, amount (<= 18 decimals), from_wallets[], to_wallets[], tx_hash}
    decided_at      when the provider decided / acted           (see REQUIRED)
    recognised_at   when the operation was recognised suspicious (suspicious_after)
    relationship_ended_on   YYYY-MM-DD                           (termination)
    one_off         true for a one-off transaction (retention from its date)
    parties         1-20 of {role, idn, name, birth_date, residence}; one client at least
        role        client | representative | beneficial_owner
        idn         IIN or BIN with its check digit (required for residents, residence KZ)
        name        1-300 characters
        birth_date  YYYY-MM-DD (optional)
        residence   ISO 3166-1 alpha-2 country code
    grounds         1-20 strings of 1-200 characters            (see REQUIRED)
    list            {name: terrorist | ft_extremism | proliferation, version}  (freeze)
    text            free text, at most 4000 characters          (withdrawal: required)

What each kind requires is :data:`REQUIRED`. A correction carries the whole message
again (and names the one it amends); a withdrawal needs only ``message_id``,
``provider_bin``, ``kind``, ``action``, ``amends`` and ``text`` (why). Unknown fields are
refused, so a typo never goes unnoticed.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry

from server.reporting.errors import InvalidFm1Field
from server.resources.errors import InvalidIdentifier
from server.resources.identifiers import validate_bin, validate_iin
from siogw_api.errors import InputError
from siogw_api.timeutil import ensure_utc, parse_iso, to_astana

#: The kinds of FM-1 message (S§30, S§35).
KINDS: Mapping[str, str] = {
    "suspicious_before": "suspicious operation, recognised before it was carried out",
    "suspicious_after": "suspicious operation, recognised after it was carried out",
    "threshold": "threshold operation",
    "refusal_relations": "refusal to establish business relations",
    "refusal_operation": "refusal to carry out an operation",
    "termination": "termination of business relations",
    "freeze": "freezing of an operation (the List / the Lists)",
}
ACTIONS = ("report", "correction", "withdrawal")
PARTY_ROLES = ("client", "representative", "beneficial_owner")
LISTS = ("terrorist", "ft_extremism", "proliferation")

#: What each kind requires of a report or a correction (besides the fields every
#: message has). ``operation`` means date + amount + currency/crypto.
REQUIRED: Mapping[str, frozenset[str]] = {
    "suspicious_before": frozenset({"operation", "decided_at", "grounds"}),
    "suspicious_after": frozenset({"operation", "decided_at", "recognised_at", "grounds"}),
    "threshold": frozenset({"operation", "decided_at"}),
    "refusal_relations": frozenset({"decided_at", "grounds"}),
    "refusal_operation": frozenset({"operation", "decided_at", "grounds"}),
    "termination": frozenset({"decided_at", "relationship_ended_on", "grounds"}),
    "freeze": frozenset({"operation", "decided_at", "grounds", "list"}),
}

_TOP = frozenset({
    "message_id", "provider_bin", "kind", "action", "amends", "operation", "decided_at",
    "recognised_at", "relationship_ended_on", "one_off", "parties", "grounds", "list", "text",
})
_OPERATION = frozenset({"date", "amount", "currency", "crypto", "description"})
_CRYPTO = frozenset({"asset", "amount", "from_wallets", "to_wallets", "tx_hash"})
_PARTY = frozenset({"role", "idn", "name", "birth_date", "residence"})
_LIST = frozenset({"name", "version"})

#: Bounds.
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ID = 64
MAX_NAME = 300
MAX_TEXT = 4000
MAX_DESCRIPTION = 2000
MAX_GROUND = 200
MAX_GROUNDS = 20
MAX_PARTIES = 20
MAX_WALLETS = 20
MAX_WALLET = 128
MAX_TX_HASH = 128
MAX_LIST_VERSION = 64
MAX_INTEGER_DIGITS = 18
FIAT_DECIMALS = 2
CRYPTO_DECIMALS = 18
#: How far in the future a time may be (the provider's clock may run a little ahead).
FUTURE_SLACK = _dt.timedelta(minutes=5)
#: The earliest date accepted anywhere in a message.
EARLIEST = _dt.date(1900, 1, 1)

_KEY_RE = re.compile(r"[^A-Za-z0-9_.-]")
_ID_RE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_ASSET_RE = re.compile(r"[A-Z0-9]{2,10}")
_WALLET_RE = re.compile(r"[A-Za-z0-9:_.-]{1,128}")
_TX_RE = re.compile(r"[A-Za-z0-9]{1,128}")
_AMOUNT_RE = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,18})?")
_CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


@dataclass(frozen=True)
class Party:
    role: str
    name: str
    residence: str
    idn: str | None = None
    birth_date: _dt.date | None = None


@dataclass(frozen=True)
class Crypto:
    asset: str
    amount: Decimal
    from_wallets: tuple[str, ...]
    to_wallets: tuple[str, ...]
    tx_hash: str | None


@dataclass(frozen=True)
class Operation:
    date: _dt.datetime
    amount: Decimal | None = None
    currency: str | None = None
    crypto: Crypto | None = None
    description: str = ""


@dataclass(frozen=True)
class Fm1Message:
    """A validated FM-1 message (times in UTC)."""

    message_id: str
    provider_bin: str
    kind: str
    action: str = "report"
    amends: str | None = None
    operation: Operation | None = None
    decided_at: _dt.datetime | None = None
    recognised_at: _dt.datetime | None = None
    relationship_ended_on: _dt.date | None = None
    one_off: bool = False
    parties: tuple[Party, ...] = ()
    grounds: tuple[str, ...] = ()
    list_name: str | None = None
    list_version: str | None = None
    text: str = ""
    #: The message as parsed JSON (what was signed, validated), for storage and reading.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def canonical_json(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --- the parser ---------------------------------------------------------------------------
def _fail(path: str, check: str, message: str) -> InvalidFm1Field:
    return InvalidFm1Field(path, check, message)


def _object(value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "type", "must be a JSON object")
    for key in sorted(value, key=str):
        if key not in allowed:
            name = _KEY_RE.sub("?", str(key)[:64])
            where = f"{path}.{name}" if path else name
            raise _fail(where, "unknown", "is not a field of an FM-1 message")
    return value


def _text(obj: Mapping[str, Any], key: str, path: str, *, cap: int, required: bool,
          pattern: re.Pattern[str] | None = None) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise _fail(path, "missing", "is required")
        return None
    if not isinstance(value, str):
        raise _fail(path, "type", "must be a string")
    if len(value) > cap:
        raise _fail(path, "length", f"is {len(value)} characters, over the limit of {cap}")
    if "\x00" in value:
        raise _fail(path, "format", "contains the NUL character")
    if pattern is not None and not pattern.fullmatch(value):
        raise _fail(path, "format", "has characters or a form it may not have")
    if pattern is None and not value.strip():
        raise _fail(path, "missing", "is blank")
    return value


def _time(obj: Mapping[str, Any], key: str, path: str, *, now: _dt.datetime,
          required: bool) -> _dt.datetime | None:
    text = _text(obj, key, path, cap=64, required=required)
    if text is None:
        return None
    try:
        when = parse_iso(text)
    except InputError:
        raise _fail(path, "format", "must be an ISO 8601 time with a UTC offset, e.g. "
                                    "2026-12-03T10:15:00+05:00") from None
    if when.date() < EARLIEST:
        raise _fail(path, "range", f"is before {EARLIEST.isoformat()}")
    if when > now + FUTURE_SLACK:
        raise _fail(path, "range", "is in the future")
    return when


def _day(obj: Mapping[str, Any], key: str, path: str, *, today: _dt.date,
         required: bool) -> _dt.date | None:
    text = _text(obj, key, path, cap=10, required=required)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = _dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(path, "format", "must be a date, YYYY-MM-DD") from None
    if day < EARLIEST or day > today + _dt.timedelta(days=1):
        raise _fail(path, "range", "is out of range (before 1900 or in the future)")
    return day


def _amount(obj: Mapping[str, Any], key: str, path: str, *, decimals: int,
            required: bool) -> Decimal | None:
    text = _text(obj, key, path, cap=MAX_INTEGER_DIGITS + 1 + CRYPTO_DECIMALS,
                 required=required)
    if text is None:
        return None
    if not _AMOUNT_RE.fullmatch(text):
        raise _fail(path, "format", "must be a decimal number as text, e.g. \"1500000.00\"")
    frac = text.partition(".")[2]
    if len(frac) > decimals:
        raise _fail(path, "format", f"has more than {decimals} decimal places")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise _fail(path, "format", "is not a decimal number") from None
    if value <= 0:
        raise _fail(path, "range", "must be greater than zero")
    return value


def _identifier(value: str, path: str, *, today: _dt.date) -> str:
    try:
        if value[4:5] in ("4", "5", "6"):
            return validate_bin(value)
        return validate_iin(value, today=today)
    except InvalidIdentifier as exc:
        raise _fail(path, "identifier", exc.message) from None


def _strings(obj: Mapping[str, Any], key: str, path: str, *, cap: int, items: int,
             required: bool, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None or value == []:
        if required:
            raise _fail(path, "missing", "is required (at least one)")
        return ()
    if not isinstance(value, list):
        raise _fail(path, "type", "must be a list of strings")
    if len(value) > items:
        raise _fail(path, "length", f"has {len(value)} items, over the limit of {items}")
    out = []
    for i, item in enumerate(value):
        text = _text({"v": item}, "v", f"{path}[{i}]", cap=cap, required=True,
                     pattern=pattern)
        assert text is not None
        out.append(text)
    return tuple(out)


def _crypto(value: Any, path: str) -> Crypto:
    obj = _object(value, path, _CRYPTO)
    asset = _text(obj, "asset", f"{path}.asset", cap=10, required=True, pattern=_ASSET_RE)
    amount = _amount(obj, "amount", f"{path}.amount", decimals=CRYPTO_DECIMALS, required=True)
    assert asset is not None and amount is not None
    return Crypto(
        asset=asset, amount=amount,
        from_wallets=_strings(obj, "from_wallets", f"{path}.from_wallets", cap=MAX_WALLET,
                              items=MAX_WALLETS, required=False, pattern=_WALLET_RE),
        to_wallets=_strings(obj, "to_wallets", f"{path}.to_wallets", cap=MAX_WALLET,
                            items=MAX_WALLETS, required=False, pattern=_WALLET_RE),
        tx_hash=_text(obj, "tx_hash", f"{path}.tx_hash", cap=MAX_TX_HASH, required=False,
                      pattern=_TX_RE),
    )


def _operation(value: Any, *, now: _dt.datetime) -> Operation:
    obj = _object(value, "operation", _OPERATION)
    date = _time(obj, "date", "operation.date", now=now, required=True)
    assert date is not None
    description = _text(obj, "description", "operation.description", cap=MAX_DESCRIPTION,
                        required=False) or ""
    crypto = _crypto(obj["crypto"], "operation.crypto") if obj.get("crypto") is not None \
        else None
    currency = _text(obj, "currency", "operation.currency", cap=3, required=False)
    amount = _amount(obj, "amount", "operation.amount", decimals=FIAT_DECIMALS,
                     required=crypto is None)
    if currency is not None and currency not in _CURRENCIES:
        raise _fail("operation.currency", "code", "is not an ISO 4217 currency code")
    if amount is not None and currency is None:
        raise _fail("operation.currency", "missing", "is required with operation.amount")
    if currency is not None and amount is None:
        raise _fail("operation.amount", "missing", "is required with operation.currency")
    return Operation(date=date, amount=amount, currency=currency, crypto=crypto,
                     description=description)


def _party(value: Any, path: str, *, today: _dt.date) -> Party:
    obj = _object(value, path, _PARTY)
    role = _text(obj, "role", f"{path}.role", cap=32, required=True)
    if role not in PARTY_ROLES:
        raise _fail(f"{path}.role", "code", "must be one of " + ", ".join(PARTY_ROLES))
    name = _text(obj, "name", f"{path}.name", cap=MAX_NAME, required=True)
    residence = _text(obj, "residence", f"{path}.residence", cap=2, required=True)
    if residence not in _COUNTRIES:
        raise _fail(f"{path}.residence", "code", "is not an ISO 3166-1 alpha-2 country code")
    idn = _text(obj, "idn", f"{path}.idn", cap=12, required=residence == "KZ")
    if idn is not None:
        idn = _identifier(idn, f"{path}.idn", today=today)
    birth = _day(obj, "birth_date", f"{path}.birth_date", today=today, required=False)
    assert name is not None and residence is not None
    return Party(role=role, name=name, residence=residence, idn=idn, birth_date=birth)


def parse_fm1(payload: bytes, *, now: _dt.datetime) -> Fm1Message:
    """Validate the signed bytes of an FM-1 message (module docstring); ``now`` is the
    gateway's time of receipt (UTC), which no time in the message may be after."""
    now = ensure_utc(now)
    today = to_astana(now).date()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _fail("message", "length", f"is {len(payload)} bytes, over the limit of "
                                         f"{MAX_PAYLOAD_BYTES}")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail("message", "format", "is not UTF-8 JSON") from None
    obj = _object(doc, "", _TOP)
    message_id = _text(obj, "message_id", "message_id", cap=MAX_ID, required=True,
                       pattern=_ID_RE)
    provider_text = _text(obj, "provider_bin", "provider_bin", cap=12, required=True)
    assert message_id is not None and provider_text is not None
    try:
        provider_bin = validate_bin(provider_text)
    except InvalidIdentifier as exc:
        raise _fail("provider_bin", "identifier", exc.message) from None
    kind = _text(obj, "kind", "kind", cap=32, required=True) or ""
    if kind not in KINDS:
        raise _fail("kind", "code", "must be one of " + ", ".join(KINDS))
    action = _text(obj, "action", "action", cap=16, required=False) or "report"
    if action not in ACTIONS:
        raise _fail("action", "code", "must be one of " + ", ".join(ACTIONS))
    amends = _text(obj, "amends", "amends", cap=MAX_ID, required=action != "report",
                   pattern=_ID_RE)
    if action == "report" and amends is not None:
        raise _fail("amends", "not_allowed", "is for a correction or a withdrawal only")
    if amends == message_id:
        raise _fail("amends", "order", "names the message itself")
    text = _text(obj, "text", "text", cap=MAX_TEXT, required=action == "withdrawal") or ""
    one_off = obj.get("one_off", False)
    if not isinstance(one_off, bool):
        raise _fail("one_off", "type", "must be true or false")
    if action == "withdrawal":
        extra = sorted(k for k in obj if k not in {"message_id", "provider_bin", "kind",
                                                   "action", "amends", "text"})
        if extra:
            raise _fail(extra[0], "not_allowed", "a withdrawal carries only message_id, "
                        "provider_bin, kind, action, amends and text")
        return Fm1Message(message_id=message_id, provider_bin=provider_bin, kind=kind,
                          action=action, amends=amends, text=text, raw=doc)

    need = REQUIRED[kind]
    operation = None
    if obj.get("operation") is not None:
        operation = _operation(obj["operation"], now=now)
    elif "operation" in need:
        raise _fail("operation", "missing", f"is required for kind {kind}")
    decided_at = _time(obj, "decided_at", "decided_at", now=now,
                       required="decided_at" in need)
    recognised_at = _time(obj, "recognised_at", "recognised_at", now=now,
                          required="recognised_at" in need)
    ended = _day(obj, "relationship_ended_on", "relationship_ended_on", today=today,
                 required="relationship_ended_on" in need)
    grounds = _strings(obj, "grounds", "grounds", cap=MAX_GROUND, items=MAX_GROUNDS,
                       required="grounds" in need)
    list_name = list_version = None
    if obj.get("list") is not None:
        lst = _object(obj["list"], "list", _LIST)
        list_name = _text(lst, "name", "list.name", cap=32, required=True)
        if list_name not in LISTS:
            raise _fail("list.name", "code", "must be one of " + ", ".join(LISTS))
        list_version = _text(lst, "version", "list.version", cap=MAX_LIST_VERSION,
                             required=False)
    elif "list" in need:
        raise _fail("list", "missing", f"is required for kind {kind} (which list)")

    raw_parties = obj.get("parties")
    if raw_parties is None or raw_parties == []:
        raise _fail("parties", "missing", "is required (the client at least)")
    if not isinstance(raw_parties, list):
        raise _fail("parties", "type", "must be a list of objects")
    if len(raw_parties) > MAX_PARTIES:
        raise _fail("parties", "length",
                    f"has {len(raw_parties)} items, over the limit of {MAX_PARTIES}")
    parties = tuple(_party(p, f"parties[{i}]", today=today) for i, p in enumerate(raw_parties))
    if not any(p.role == "client" for p in parties):
        raise _fail("parties", "missing", "names no party with the role client")

    # the order of events
    if kind == "suspicious_after":
        assert operation is not None and recognised_at is not None
        if recognised_at < operation.date:
            raise _fail("recognised_at", "order", "is before operation.date (an operation "
                        "recognised after it was carried out)")
    if kind == "suspicious_before" and operation is not None and decided_at is not None \
            and operation.date < decided_at:
        # carried out before the decision: that is suspicious_after's case
        raise _fail("decided_at", "order", "is after operation.date: an operation "
                    "recognised after it was carried out is kind suspicious_after")
    return Fm1Message(
        message_id=message_id, provider_bin=provider_bin, kind=kind, action=action,
        amends=amends, operation=operation, decided_at=decided_at,
        recognised_at=recognised_at, relationship_ended_on=ended, one_off=one_off,
        parties=parties, grounds=grounds, list_name=list_name, list_version=list_version,
        text=text, raw=doc,
    )
