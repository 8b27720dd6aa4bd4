"""The list files (server/screening/parse.py): strict CSV and XML parsing, property tests."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.resources.identifiers import make_bin, make_iin
from server.screening.errors import InvalidListFile
from server.screening.parse import (
    COLUMNS,
    ListEntry,
    parse_csv,
    parse_list_file,
    parse_xml,
    to_csv,
    to_xml,
)

IIN = make_iin(dt.date(1980, 3, 15), "M", 1234)
BIN = make_bin(dt.date(2010, 5, 1), 12345)
GOOD = ListEntry("T-1", "person", IIN, ("Иванов Иван Иванович", "Ivanov Ivan"),
                 "1980-03-15", "KZ", "decision 12/2026")
ENTITY = ListEntry("T-2", "entity", BIN, ("ЖШС «Ромашка»", "Romashka LLP"), "", "KAZ", "")


def csv_of(*rows: str, header: str = ",".join(COLUMNS)) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_both_formats_round_trip_a_person_and_an_entity() -> None:
    assert parse_csv(to_csv([GOOD, ENTITY])) == (GOOD, ENTITY)
    assert parse_xml(to_xml([GOOD, ENTITY], "terrorist"), list_name="terrorist") == (
        GOOD, ENTITY)
    # a BOM and CRLF line ends are fine; the columns may come in any order
    data = "\ufeffkind,ref,iin_bin,names,birth_date,country,reference\r\n" \
           "person,X-1,,Петров Пётр|Petrov Pyotr,1970,,\r\n"
    (entry,) = parse_csv(data.encode())
    assert entry.names == ("Петров Пётр", "Petrov Pyotr") and entry.birth_date == "1970"


@pytest.mark.parametrize(("data", "words"), [
    (b"", "header row is required"),
    (csv_of(header="ref,kind,names"), "missing"),
    (csv_of(header=",".join(COLUMNS) + ",extra"), "unknown extra"),
    (csv_of("T-1,person,,Name"), "line 2: 4 fields"),
    (csv_of("T 1,person,,Name,,,"), "line 2: ref must be"),
    (csv_of("T-1,robot,,Name,,,"), "line 2 (entry T-1): kind must be person or entity"),
    (csv_of("T-1,person,123,Name,,,"), "iin_bin is not a valid IIN"),
    (csv_of(f"T-1,person,{IIN[:-1]}{(int(IIN[-1]) + 1) % 10},Name,,,"),
     "iin_bin is not a valid IIN"),
    (csv_of(f"T-1,entity,{IIN},Name,,,"), "iin_bin is not a valid BIN"),
    (csv_of("T-1,person,,,,,"), "at least one name"),
    (csv_of("T-1,person,,A||B,,,"), "no empty one"),
    (csv_of("T-1,person,,Name,1980-13-01,,"), "birth_date must be YYYY-MM-DD or YYYY"),
    (csv_of("T-1,entity,,Name,1980,,"), "birth_date is for persons only"),
    (csv_of("T-1,person,,Name,,kz,"), "country must be"),
    (csv_of("T-1,person,,Name,,,", "T-1,person,,Other,,,"), "line 3: ref T-1 appears twice"),
    (csv_of(), "holds no entries"),
    (csv_of('T-1,person,,"Name,,,'), "not valid CSV"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_csv_refusals_name_the_line_and_the_field(data: bytes, words: str) -> None:
    with pytest.raises(InvalidListFile) as err:
        parse_csv(data)
    assert words in err.value.message


@pytest.mark.parametrize(("data", "words"), [
    (b"<list>", "not well-formed XML at line 1"),
    (b"<entries/>", "root element must be <list>"),
    (b'<list name="proliferation"><entry ref="a" kind="person"><name>N</name></entry></list>',
     "not the list being published"),
    (b'<list><entry ref="a" kind="person"><nom>N</nom></entry></list>',
     "<nom> is not a field"),
    (b'<list><entry ref="a" kind="person" x="1"><name>N</name></entry></list>',
     "only the attributes ref and kind"),
    (b'<list><entry ref="a" kind="person"><name>N</name>stray</entry></list>',
     "text outside the fields"),
    (b'<list><entry ref="a" kind="person"><name>N</name><country>KZ</country>'
     b'<country>RU</country></entry></list>', "<country> appears twice"),
    (b'<list><entry ref="a" kind="person"><name><b>N</b></name></entry></list>',
     "<name> must hold text only"),
    (b'<list><item/></list>', "only <entry>"),
])
def test_xml_refusals_name_the_entry_and_the_field(data: bytes, words: str) -> None:
    with pytest.raises(InvalidListFile) as err:
        parse_xml(data, list_name="terrorist")
    assert words in err.value.message


def test_xml_entity_expansion_and_external_entities_are_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b'<list><entry ref="a" kind="person"><name>&lol2;</name></entry></list>')
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b'<list><entry ref="a" kind="person"><name>&e;</name></entry></list>')
    for data in (bomb, external):
        with pytest.raises(InvalidListFile, match="DTD or entities"):
            parse_xml(data)


def test_unknown_format() -> None:
    with pytest.raises(InvalidListFile, match="unknown format"):
        parse_list_file(b"", "json")


# --- properties ------------------------------------------------------------------------------
_letters = st.text(st.sampled_from("абвгдеёжзийклмнопрстуфхцчшщыэюяәғқңөұүһі"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz -'.«»\"&<>,"),
                   min_size=1, max_size=40).map(str.strip).filter(bool)
_entry = st.builds(
    ListEntry,
    ref=st.from_regex(r"[A-Za-z0-9._/-]{1,64}", fullmatch=True),
    kind=st.just("person"),
    iin_bin=st.one_of(st.just(""), st.just(IIN)),
    names=st.lists(_letters.filter(lambda s: "|" not in s), min_size=1, max_size=4).map(tuple),
    birth_date=st.one_of(st.just(""), st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31))
                         .map(dt.date.isoformat), st.integers(1900, 2020).map(str)),
    country=st.sampled_from(["", "KZ", "RUS"]),
    reference=st.text(st.characters(min_codepoint=32, max_codepoint=0x7E), max_size=30)
    .map(str.strip),
)
_entries = st.lists(_entry, min_size=1, max_size=8, unique_by=lambda e: e.ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entries)
def test_csv_round_trips_every_well_formed_file(entries: list[ListEntry]) -> None:
    assert parse_csv(to_csv(entries)) == tuple(entries)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entries)
def test_xml_round_trips_every_well_formed_file(entries: list[ListEntry]) -> None:
    assert parse_xml(to_xml(entries, "ft_extremism"), list_name="ft_extremism") == tuple(
        entries)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_csv_parser_refuses_junk_only_with_its_own_error(data: bytes) -> None:
    try:
        parse_csv(data)
    except InvalidListFile as exc:
        assert exc.message and "Traceback" not in exc.message


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=400),
                 st.text(max_size=300).map(lambda t: f"<list>{t}</list>".encode())))
def test_xml_parser_refuses_junk_only_with_its_own_error(data: bytes) -> None:
    try:
        parse_xml(data)
    except InvalidListFile as exc:
        assert exc.message


@settings(max_examples=200, deadline=None)
@given(_entries, st.integers(0, 10_000), st.binary(min_size=1, max_size=3))
def test_a_mangled_csv_file_parses_or_is_refused_cleanly(
    entries: list[ListEntry], at: int, junk: bytes
) -> None:
    data = to_csv(entries)
    at %= len(data)
    try:
        parse_csv(data[:at] + junk + data[at:])
    except InvalidListFile:
        pass


def test_the_documented_examples_parse() -> None:
    """The CSV and XML examples of docs/usage.md ("The List and the Lists") are valid."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "usage.md").read_text()
    section = text[text.index("## 6a. The List and the Lists"):]
    csv_text = re.search(r"```csv\n(.*?)```", section, re.S)
    xml_text = re.search(r"```xml\n(.*?)```", section, re.S)
    assert csv_text is not None and xml_text is not None
    from_csv = parse_csv(csv_text.group(1).encode())
    from_xml = parse_xml(xml_text.group(1).encode(), list_name="terrorist")
    assert from_xml[0] == from_csv[0] and len(from_csv) == 2
