"""The FM-1 parser (server.reporting.fm1): every kind accepted, each bad field refused by
name, and a property test: whatever the bytes, the parser answers a message or
InvalidFm1Field -- never another exception."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.reporting.errors import InvalidFm1Field
from server.reporting.fm1 import KINDS, REQUIRED, parse_fm1
from server.reporting.samples import CLIENT_BIN, sample
from server.reporting.samples import KINDS as SAMPLE_KINDS
from siogw_api.timeutil import astana_iso, now_utc

NOW = now_utc()


def parse(msg: Any) -> Any:
    return parse_fm1(json.dumps(msg, ensure_ascii=False).encode(), now=NOW)


def refused(msg: Any) -> InvalidFm1Field:
    with pytest.raises(InvalidFm1Field) as ei:
        parse(msg)
    return ei.value


def test_the_samples_cover_every_kind() -> None:
    assert set(SAMPLE_KINDS) == set(KINDS) == set(REQUIRED)


@pytest.mark.parametrize("crypto", [False, True], ids=["fiat", "crypto"])
@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_every_kind_is_accepted(kind: str, crypto: bool) -> None:
    msg = parse(sample(kind, now=NOW, crypto=crypto))
    assert msg.kind == kind and msg.action == "report"
    assert [p.role for p in msg.parties] == ["client", "beneficial_owner", "representative"]
    if msg.operation is not None and crypto:
        assert msg.operation.crypto is not None and msg.operation.crypto.asset == "BTC"
        assert msg.operation.currency is None


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(msg: dict[str, Any]) -> None:
        target: Any = msg
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return apply


_DELETE = object()
_FUTURE = astana_iso(NOW + _dt.timedelta(days=2))

#: (kind, field path, new value or _DELETE, the field named, the check)
CASES: list[tuple[str, str, Any, str, str]] = [
    ("threshold", "message_id", _DELETE, "message_id", "missing"),
    ("threshold", "message_id", "bad id with spaces", "message_id", "format"),
    ("threshold", "message_id", "x" * 65, "message_id", "length"),
    ("threshold", "provider_bin", "123456789012", "provider_bin", "identifier"),
    ("threshold", "provider_bin", 123, "provider_bin", "type"),
    ("threshold", "kind", "suspicious", "kind", "code"),
    ("threshold", "action", "delete", "action", "code"),
    ("threshold", "amends", "FM1-1", "amends", "not_allowed"),
    ("threshold", "colour", "red", "colour", "unknown"),
    ("threshold", "operation", _DELETE, "operation", "missing"),
    ("threshold", "operation.date", "yesterday", "operation.date", "format"),
    ("threshold", "operation.date", "2026-01-01T10:00:00", "operation.date", "format"),
    ("threshold", "operation.date", _FUTURE, "operation.date", "range"),
    ("threshold", "operation.amount", "1,500", "operation.amount", "format"),
    ("threshold", "operation.amount", "1.005", "operation.amount", "format"),
    ("threshold", "operation.amount", "0", "operation.amount", "range"),
    ("threshold", "operation.amount", 1500, "operation.amount", "type"),
    ("threshold", "operation.amount", "1" * 19, "operation.amount", "format"),
    ("threshold", "operation.currency", "XYZ", "operation.currency", "code"),
    ("threshold", "operation.currency", _DELETE, "operation.currency", "missing"),
    ("threshold", "operation.description", "d" * 2001, "operation.description", "length"),
    ("threshold", "decided_at", _DELETE, "decided_at", "missing"),
    ("threshold", "parties", _DELETE, "parties", "missing"),
    ("threshold", "parties", {"role": "client"}, "parties", "type"),
    ("threshold", "parties[0].role", "owner", "parties[0].role", "code"),
    ("threshold", "parties[0].role", "representative", "parties", "missing"),
    ("threshold", "parties[0].idn", "850517300000", "parties[0].idn", "identifier"),
    ("threshold", "parties[0].idn", _DELETE, "parties[0].idn", "missing"),
    ("threshold", "parties[1].idn", "12345", "parties[1].idn", "identifier"),
    ("threshold", "parties[0].name", "", "parties[0].name", "missing"),
    ("threshold", "parties[0].name", "n" * 301, "parties[0].name", "length"),
    ("threshold", "parties[0].residence", "Kazakhstan", "parties[0].residence", "length"),
    ("threshold", "parties[0].residence", "QQ", "parties[0].residence", "code"),
    ("threshold", "parties[0].birth_date", "17.05.1985", "parties[0].birth_date", "format"),
    ("threshold", "parties[0].extra", 1, "parties[0].extra", "unknown"),
    ("threshold", "text", "t" * 4001, "text", "length"),
    ("threshold", "one_off", "yes", "one_off", "type"),
    ("suspicious_before", "grounds", _DELETE, "grounds", "missing"),
    ("suspicious_before", "grounds", "structuring", "grounds", "type"),
    ("suspicious_before", "grounds", ["g" * 201], "grounds[0]", "length"),
    ("suspicious_before", "grounds", ["x"] * 21, "grounds", "length"),
    ("suspicious_before", "decided_at", _FUTURE, "decided_at", "range"),
    ("suspicious_after", "recognised_at", _DELETE, "recognised_at", "missing"),
    ("suspicious_after", "recognised_at", astana_iso(NOW - _dt.timedelta(days=3)),
     "recognised_at", "order"),
    ("suspicious_before", "operation.date", astana_iso(NOW - _dt.timedelta(days=3)),
     "decided_at", "order"),
    ("refusal_operation", "operation", _DELETE, "operation", "missing"),
    ("termination", "relationship_ended_on", _DELETE, "relationship_ended_on", "missing"),
    ("termination", "relationship_ended_on", "2026-13-01", "relationship_ended_on", "format"),
    ("freeze", "list", _DELETE, "list", "missing"),
    ("freeze", "list.name", "sanctions", "list.name", "code"),
    ("freeze", "operation.crypto", {"asset": "btc", "amount": "1"}, "operation.crypto.asset",
     "format"),
    ("freeze", "operation.crypto", {"asset": "BTC", "amount": "1", "tx_hash": "zz-"},
     "operation.crypto.tx_hash", "format"),
    ("freeze", "operation.crypto", {"asset": "BTC", "amount": "1",
                                    "to_wallets": ["w"] * 21},
     "operation.crypto.to_wallets", "length"),
]


@pytest.mark.parametrize(("kind", "path", "value", "field", "check"), CASES,
                         ids=[f"{c[0]}:{c[1]}:{c[4]}" for c in CASES])
def test_each_bad_field_is_refused_by_name(kind: str, path: str, value: Any, field: str,
                                           check: str) -> None:
    msg = sample(kind, now=NOW)
    _set(path, value)(msg)
    err = refused(msg)
    assert (err.field, err.check) == (field, check), err.message
    assert err.error_metadata() == {"field": field, "check": check}
    assert field in err.message
    if isinstance(value, str) and len(value) >= 12:
        assert value not in err.message  # the value itself is never echoed


def test_a_legal_entity_client_is_identified_by_its_bin() -> None:
    msg = sample("threshold", now=NOW)
    msg["parties"][0] = {"role": "client", "idn": CLIENT_BIN, "name": "TOO Example",
                         "residence": "KZ"}
    assert parse(msg).parties[0].idn == CLIENT_BIN


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(InvalidFm1Field) as ei:
        parse_fm1(b"\xff\xfe", now=NOW)
    assert (ei.value.field, ei.value.check) == ("message", "format")
    assert (refused([1, 2]).field, refused([1, 2]).check) == ("", "type")


def test_correction_and_withdrawal() -> None:
    fix = sample("threshold", now=NOW)
    fix.update(action="correction", amends="FM1-original")
    assert parse(fix).amends == "FM1-original"
    del fix["amends"]
    assert refused(fix).field == "amends"
    withdraw = {"message_id": "FM1-w", "provider_bin": fix["provider_bin"],
                "kind": "threshold", "action": "withdrawal", "amends": "FM1-original",
                "text": "sent by mistake"}
    assert parse(withdraw).action == "withdrawal"
    assert refused({**withdraw, "text": ""}).field == "text"
    assert (refused({**withdraw, "grounds": ["x"]}).check) == "not_allowed"
    assert refused({**withdraw, "amends": "FM1-w"}).check == "order"


# --- property: the parser of outside input never fails but with InvalidFm1Field ----------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_FIELDS = ["message_id", "provider_bin", "kind", "action", "amends", "operation",
           "decided_at", "recognised_at", "relationship_ended_on", "one_off", "parties",
           "grounds", "list", "text"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(SAMPLE_KINDS), field=st.sampled_from(_FIELDS), value=_json)
def test_property_one_field_replaced_by_anything(kind: str, field: str, value: Any) -> None:
    msg = sample(kind, now=NOW)
    msg[field] = value
    try:
        parsed = parse(msg)
    except InvalidFm1Field as exc:
        assert exc.field and exc.check
        return
    assert parsed.kind in KINDS and parsed.provider_bin == msg["provider_bin"]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_property_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_fm1(data, now=NOW)
    except InvalidFm1Field as exc:
        assert exc.check in {"format", "type", "missing", "unknown", "length"}


@settings(max_examples=200, deadline=None)
@given(party=st.fixed_dictionaries(
    {"role": st.sampled_from(["client", "representative", "beneficial_owner", "x"]),
     "name": st.text(max_size=310), "residence": st.text(max_size=3)},
    optional={"idn": st.text(alphabet="0123456789", max_size=13),
              "birth_date": st.text(max_size=12)}))
def test_property_parties(party: dict[str, Any]) -> None:
    msg = sample("threshold", now=NOW)
    msg["parties"] = [party, msg["parties"][0]]
    try:
        parsed = parse(msg)
    except InvalidFm1Field as exc:
        assert exc.field.startswith("parties")
        return
    assert parsed.parties[0].name == party["name"]
