"""Canonical record encoding (deterministic, Astana time, strict decoding)."""

from __future__ import annotations

import datetime as _dt

import pytest

from audit.errors import MalformedRecord
from audit.record import AuditRecord, EventType, Outcome, decode_record, encode_record

T = _dt.datetime(2026, 11, 21, 23, 5, 7, 123456, tzinfo=_dt.UTC)


def test_canonical_bytes_are_exact() -> None:
    r = AuditRecord(actor="аналитик", event=EventType.REFUSAL, outcome=Outcome.REFUSED,
                    details={"reason": "no basis", "b": [1, True, None], "a": {"z": 1, "y": 2}},
                    payload=b"\x00\xff")
    assert encode_record(r, 7, T) == (
        '{"actor":"аналитик","cert":null,"details":{"a":{"y":2,"z":1},"b":[1,true,null],'
        '"reason":"no basis"},"event":"refusal","outcome":"refused","payload":"AP8=",'
        '"seq":7,"time":"2026-11-22T04:05:07.123456+05:00","v":1}'
    ).encode()
    back = decode_record(encode_record(r, 7, T))
    assert back.seq == 7 and back.time == T and back.payload == b"\x00\xff"
    assert back.actor == "аналитик" and back.details["reason"] == "no basis"


@pytest.mark.parametrize("details", [{"f": 1.0}, {"n": 2**60}, {1: "x"}, {"o": object()}])
def test_non_canonical_values_are_refused(details: dict) -> None:
    with pytest.raises(MalformedRecord):
        AuditRecord(actor="a", event="query", outcome="success", details=details)


@pytest.mark.parametrize("kwargs", [
    {"actor": ""}, {"event": "Bad Event"}, {"outcome": ""}, {"cert_fingerprint": "AB" * 32},
])
def test_bad_fields_are_refused(kwargs: dict) -> None:
    base = {"actor": "a", "event": "query", "outcome": "success"}
    with pytest.raises(MalformedRecord):
        AuditRecord(**{**base, **kwargs})


def test_decoding_is_strict() -> None:
    good = encode_record(AuditRecord(actor="a", event="query", outcome="success"), 0, T)
    decode_record(good)
    for bad in (
        good.replace(b'"v":1', b'"v":2'),
        good.replace(b'{"actor"', b'{ "actor"'),         # not canonical
        good.replace(b'"seq":0', b'"seq":-1'),
        good.replace(b'"payload":null', b'"payload":"!!"'),
        good.replace(b'+05:00"', b'"'),                    # time without offset
        b"[]", b"\xff",
    ):
        with pytest.raises(MalformedRecord):
            decode_record(bad)
