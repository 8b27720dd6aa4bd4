"""IIN and BIN: Kazakhstan's 12-digit individual and business identification numbers.

Layout (both end with a check digit computed by :func:`check_digit`):

* IIN ``YYMMDD C SSSS K`` — date of birth, century/sex digit ``C`` (1/2: 1800s, 3/4:
  1900s, 5/6: 2000s; odd male, even female), 4-digit serial, check digit.
* BIN ``YYMM T A SSSSS K`` — year and month of registration, type ``T`` (4 resident
  legal entity, 5 non-resident legal entity, 6 individual entrepreneur acting jointly),
  attribute ``A`` (0 head office, 1 branch, 2 representative office, 3 peasant farm),
  5-digit serial, check digit.

The check digit is the standard two-pass mod-11 weighting: ``sum(d_i * i) mod 11`` with
weights 1..11; if that is 10, weights 3,4,5,6,7,8,9,10,11,1,2; if still 10 the number
cannot be issued. Since the 5th digit of an IIN (tens of the day) is 0..3 and that of a
BIN is 4..6, the two sets never overlap.

Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from server.resources.errors import InvalidIdentifier
from siogw_api.timeutil import now_utc, to_astana

__all__ = [
    "check_digit",
    "iin_birth_date",
    "is_valid_bin",
    "is_valid_iin",
    "make_bin",
    "make_iin",
    "validate_bin",
    "validate_iin",
]

_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)

_CENTURY = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
_BIN_TYPES = frozenset("456")
_BIN_ATTRIBUTES = frozenset("0123")


def check_digit(first11: str) -> int | None:
    """The check digit for 11 leading digits, or ``None`` if the number is unissuable."""
    if len(first11) != 11 or not (first11.isascii() and first11.isdigit()):
        raise InvalidIdentifier("identifier", "length", "check digit needs exactly 11 digits")
    digits = [int(c) for c in first11]
    s = sum(d * w for d, w in zip(digits, _W1, strict=True)) % 11
    if s == 10:
        s = sum(d * w for d, w in zip(digits, _W2, strict=True)) % 11
        if s == 10:
            return None
    return s


def _shape(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(kind, "type", f"must be a string, got {type(value).__name__}")
    if len(value) != 12:
        raise InvalidIdentifier(
            kind, "length", f"must be exactly 12 digits, got {len(value)} characters"
        )
    if not (value.isascii() and value.isdigit()):
        raise InvalidIdentifier(kind, "non_digit", "must contain only the digits 0-9")
    expected = check_digit(value[:11])
    if expected is None:
        raise InvalidIdentifier(
            kind, "check_digit", "unissuable number (both mod-11 passes give 10)"
        )
    if int(value[11]) != expected:
        raise InvalidIdentifier(kind, "check_digit", "check digit does not match (mod-11)")
    return value


def iin_birth_date(iin: str) -> dt.date:
    """The date of birth embedded in a (shape-checked) IIN; raises on a bad date/century."""
    c = int(iin[6])
    if c not in _CENTURY:
        raise InvalidIdentifier("IIN", "century", f"7th digit (century/sex) must be 1-6, got {c}")
    try:
        return dt.date(_CENTURY[c] + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        raise InvalidIdentifier(
            "IIN", "date", f"embedded date of birth {iin[0:6]} (YYMMDD) is not a calendar date"
        ) from None


def validate_iin(value: object, *, today: dt.date | None = None) -> str:
    """Return ``value`` if it is a valid IIN, else raise :class:`InvalidIdentifier`.

    Checks, in order: 12 characters, digits only, check digit, century/sex digit 1-6, that
    ``YYMMDD`` is a real date, and that it is not after ``today`` (default: today in Astana
    time) — nobody is issued an IIN before being born (reason ``date``).
    """
    iin = _shape("IIN", value)
    born = iin_birth_date(iin)
    if today is None:
        today = to_astana(now_utc()).date()
    if born > today:
        raise InvalidIdentifier("IIN", "date", "embedded date of birth is in the future")
    return iin


def validate_bin(value: object) -> str:
    """Return ``value`` if it is a valid BIN, else raise :class:`InvalidIdentifier`.

    Checks length, digits, check digit, registration month 01-12, type digit 4-6 and
    attribute digit 0-3.
    """
    bin_ = _shape("BIN", value)
    month = int(bin_[2:4])
    if not 1 <= month <= 12:
        raise InvalidIdentifier("BIN", "date", f"registration month must be 01-12, got {bin_[2:4]}")
    if bin_[4] not in _BIN_TYPES:
        raise InvalidIdentifier(
            "BIN", "type", f"5th digit (entity type) must be 4, 5 or 6, got {bin_[4]}"
        )
    if bin_[5] not in _BIN_ATTRIBUTES:
        raise InvalidIdentifier(
            "BIN", "type", f"6th digit (office attribute) must be 0-3, got {bin_[5]}"
        )
    return bin_


def is_valid_iin(value: object) -> bool:
    """``True`` if :func:`validate_iin` accepts ``value``."""
    try:
        validate_iin(value)
    except InvalidIdentifier:
        return False
    return True


def is_valid_bin(value: object) -> bool:
    """``True`` if :func:`validate_bin` accepts ``value``."""
    try:
        validate_bin(value)
    except InvalidIdentifier:
        return False
    return True


def _complete(prefix: str, serial: int, width: int, kind: str) -> str:
    """Append the first issuable serial >= ``serial`` and the check digit."""
    limit = 10**width
    if not 0 <= serial < limit:
        raise InvalidIdentifier(kind, "serial", f"serial must be in 0..{limit - 1}")
    for s in range(serial, limit):
        body = f"{prefix}{s:0{width}d}"
        k = check_digit(body)
        if k is not None:
            return f"{body}{k}"
    raise InvalidIdentifier(kind, "serial", "no issuable serial left at or above the one given")


def make_iin(birth_date: dt.date, sex: Literal["M", "F"], serial: int) -> str:
    """Build a valid IIN for a date of birth (1800-2099), sex and 4-digit serial.

    If ``serial`` gives an unissuable number, the next issuable serial is used.
    """
    century = birth_date.year // 100 * 100
    base = {1800: 1, 1900: 3, 2000: 5}.get(century)
    if base is None:
        raise InvalidIdentifier("IIN", "date", "birth year must be within 1800-2099")
    if sex not in ("M", "F"):
        raise InvalidIdentifier("IIN", "sex", "sex must be 'M' or 'F'")
    c = base if sex == "M" else base + 1
    return _complete(f"{birth_date:%y%m%d}{c}", serial, 4, "IIN")


def make_bin(
    registered: dt.date, serial: int, *, entity_type: int = 4, attribute: int = 0
) -> str:
    """Build a valid BIN registered in ``registered``'s year/month with a 5-digit serial.

    If ``serial`` gives an unissuable number, the next issuable serial is used.
    """
    if str(entity_type) not in _BIN_TYPES or str(attribute) not in _BIN_ATTRIBUTES:
        raise InvalidIdentifier("BIN", "type", "entity_type must be 4-6 and attribute 0-3")
    return _complete(f"{registered:%y%m}{entity_type}{attribute}", serial, 5, "BIN")
