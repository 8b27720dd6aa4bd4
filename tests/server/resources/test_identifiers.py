"""IIN/BIN validation and generation (hand-checked examples, then exhaustive-ish loops)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Literal

import pytest

from server.resources import (
    InvalidIdentifier,
    is_valid_bin,
    is_valid_iin,
    make_bin,
    make_iin,
    validate_bin,
    validate_iin,
)
from server.resources.identifiers import check_digit, iin_birth_date
from siogw_api.errors import InputError

# 850312312343: digits 8 5 0 3 1 2 3 1 2 3 4, weights 1..11:
#   8+10+0+12+5+12+21+8+18+30+44 = 168, 168 mod 11 = 3 -> check digit 3.
FIRST_PASS_IIN = "850312312343"
# 85031230030: 8+10+0+12+5+12+21+0+0+30+0 = 98, 98 mod 11 = 10 -> second pass with
#   3,4,5,6,7,8,9,10,11,1,2: 24+20+0+18+7+16+27+0+0+3+0 = 115, 115 mod 11 = 5.
SECOND_PASS_IIN = "850312300305"
# 85031230038: first pass 98+88 = 186 -> 10; second pass 115+16 = 131 -> 10: unissuable.
UNISSUABLE_PREFIX = "85031230038"
# 100540001234: 1+0+0+20+20+0+0+0+9+20+33 = 103, 103 mod 11 = 4 (May 2010, type 4, head office).
VALID_BIN = "100540001234"


def test_hand_checked_check_digits() -> None:
    assert check_digit(FIRST_PASS_IIN[:11]) == 3
    assert check_digit(SECOND_PASS_IIN[:11]) == 5
    assert check_digit(UNISSUABLE_PREFIX) is None
    assert check_digit(VALID_BIN[:11]) == 4


def test_hand_checked_valid() -> None:
    assert validate_iin(FIRST_PASS_IIN) == FIRST_PASS_IIN
    assert validate_iin(SECOND_PASS_IIN) == SECOND_PASS_IIN
    assert iin_birth_date(FIRST_PASS_IIN) == dt.date(1985, 3, 12)
    assert validate_bin(VALID_BIN) == VALID_BIN


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        ("85031231234", "length", "12 digits, got 11"),
        ("8503123123430", "length", "got 13"),
        ("", "length", "got 0"),
        ("85031231234a", "non_digit", "digits"),
        ("85031231234\u0663", "non_digit", "digits"),  # Arabic-Indic digit three
        (" 50312312343", "non_digit", "digits"),
        ("850312312344", "check_digit", "does not match"),
        (UNISSUABLE_PREFIX + "0", "check_digit", "unissuable"),
    ],
)
def test_bad_iin_shape(value: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidIdentifier) as ei:
        validate_iin(value)
    assert ei.value.reason == reason
    assert ei.value.kind == "IIN"
    assert words in str(ei.value)
    assert isinstance(ei.value, InputError)


def _with_check(first11: str) -> str:
    k = check_digit(first11)
    assert k is not None
    return first11 + str(k)


def _fix(first11: str) -> str:
    """Tweak the serial until the number is issuable, keeping date and century digits."""
    for s in range(10000):
        body = first11[:7] + f"{s:04d}"
        if check_digit(body) is not None:
            return body + str(check_digit(body))
    raise AssertionError


@pytest.mark.parametrize(
    ("first7", "reason"),
    [
        ("8502303", "date"),  # 30 February 1985
        ("8513013", "date"),  # month 13
        ("0002291", "date"),  # 29 February 1800 (1800 is not a leap year)
        ("8503127", "century"),
        ("8503120", "century"),
    ],
)
def test_bad_iin_date_or_century(first7: str, reason: str) -> None:
    iin = _fix(first7 + "0000")
    with pytest.raises(InvalidIdentifier) as ei:
        validate_iin(iin)
    assert ei.value.reason == reason


def test_leap_day_2000_is_valid() -> None:
    iin = _fix("0002295" + "0000")  # 29 February 2000, century digit 5
    assert validate_iin(iin) == iin
    assert iin_birth_date(iin) == dt.date(2000, 2, 29)


@pytest.mark.parametrize(
    ("first11", "reason"),
    [
        ("10134000123", "date"),  # month 13
        ("10004000123", "date"),  # month 00
        ("10053000123", "type"),  # type digit 3
        ("10057000123", "type"),  # type digit 7
        ("10054400123", "type"),  # attribute digit 4
    ],
)
def test_bad_bin_layout(first11: str, reason: str) -> None:
    value = _fix_bin(first11)
    with pytest.raises(InvalidIdentifier) as ei:
        validate_bin(value)
    assert ei.value.reason == reason
    assert ei.value.kind == "BIN"


def _fix_bin(first11: str) -> str:
    for s in range(100000):
        body = first11[:6] + f"{s:05d}"
        if check_digit(body) is not None:
            return body + str(check_digit(body))
    raise AssertionError


def test_iin_is_not_a_bin_and_back() -> None:
    assert not is_valid_bin(FIRST_PASS_IIN)  # 5th digit of an IIN is 0..3
    assert not is_valid_iin(VALID_BIN)  # "054000" is not a day
    assert is_valid_iin(FIRST_PASS_IIN) and is_valid_bin(VALID_BIN)


def test_non_string_refused() -> None:
    with pytest.raises(InvalidIdentifier) as ei:
        validate_iin(850312312343)
    assert ei.value.reason == "type"


def test_message_does_not_echo_identifier() -> None:
    with pytest.raises(InvalidIdentifier) as ei:
        validate_iin("850312312344")
    assert "850312312344" not in ei.value.diagnostics()


def test_generated_iins_are_valid_and_decode() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        born = dt.date(1800, 1, 1) + dt.timedelta(days=rng.randrange(300 * 365))
        sex: Literal["M", "F"] = rng.choice(("M", "F"))
        iin = make_iin(born, sex, rng.randrange(10000))
        assert validate_iin(iin, today=dt.date(2099, 12, 31)) == iin
        assert iin_birth_date(iin) == born
        assert int(iin[6]) % 2 == (1 if sex == "M" else 0)


def test_iin_born_in_the_future_is_refused() -> None:
    """Issue 14 finding 3: a birth date after today is refused (reason ``date``)."""
    today = dt.date(2026, 12, 5)
    tomorrow = make_iin(today + dt.timedelta(days=1), "F", 12)
    assert validate_iin(make_iin(today, "F", 12), today=today)
    with pytest.raises(InvalidIdentifier) as ei:
        validate_iin(tomorrow, today=today)
    assert ei.value.reason == "date"
    future = make_iin(dt.date(2090, 1, 1), "M", 1)  # against the real clock
    assert not is_valid_iin(future)
    with pytest.raises(InvalidIdentifier):
        validate_iin(future)


def test_generated_bins_are_valid() -> None:
    rng = random.Random(8)
    for _ in range(3000):
        reg = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randrange(30 * 365))
        t, a = rng.choice((4, 5, 6)), rng.choice((0, 1, 2, 3))
        b = make_bin(reg, rng.randrange(100000), entity_type=t, attribute=a)
        assert validate_bin(b) == b
        assert b[:4] == f"{reg:%y%m}" and b[4:6] == f"{t}{a}"


def _first_pass(first11: str) -> int:
    return sum(int(c) * w for c, w in zip(first11, range(1, 12), strict=True)) % 11


def test_single_digit_corruption_detected_in_first_pass() -> None:
    """A change in digits 1-10 is caught whenever the first pass scores the result.

    (Weight 11 is 0 mod 11, so the 11th digit is only guarded by the second pass, and a
    corruption that lands in the second pass may collide: that is the standard scheme.)
    """
    rng = random.Random(9)
    caught = 0
    for _ in range(300):
        iin = make_iin(dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000)), "F",
                       rng.randrange(10000))
        if _first_pass(iin[:11]) == 10:
            continue
        pos = rng.randrange(10)
        for d in "0123456789":
            mutated = iin[:pos] + d + iin[pos + 1:]
            if d == iin[pos] or _first_pass(mutated[:11]) == 10:
                continue
            assert not is_valid_iin(mutated), (iin, mutated)
            caught += 1
    assert caught > 2000


def test_make_iin_skips_unissuable_serial() -> None:
    # serial 0038 after 8503123 is unissuable (see UNISSUABLE_PREFIX): next serial used
    iin = make_iin(dt.date(1985, 3, 12), "M", 38)
    assert iin[:11] != UNISSUABLE_PREFIX and validate_iin(iin) == iin
    assert int(iin[7:11]) > 38


def test_generator_argument_errors() -> None:
    with pytest.raises(InvalidIdentifier):
        make_iin(dt.date(1799, 12, 31), "M", 1)
    with pytest.raises(InvalidIdentifier):
        make_iin(dt.date(1980, 1, 1), "X", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier):
        make_iin(dt.date(1980, 1, 1), "M", 10000)
    with pytest.raises(InvalidIdentifier):
        make_bin(dt.date(2010, 1, 1), 1, entity_type=7)
