"""The list files the agency imports: CSV and XML, parsed strictly (issue 16, point 6).

Both formats carry the same entries (``docs/usage.md``, "The List and the Lists"):

* ``ref`` -- the entry's identifier within the list (1-64 of ``A-Z a-z 0-9 . _ / -``),
  unique in the file;
* ``kind`` -- ``person`` or ``entity``;
* ``iin_bin`` -- optional: a 12-digit IIN (persons) or BIN (entities), check digit
  verified (:mod:`server.resources.identifiers`);
* ``names`` -- at least one name: the first is the entry's name, the others its aliases,
  in Cyrillic or Latin (each 1-300 characters);
* ``birth_date`` -- optional, persons only: ``YYYY-MM-DD`` or ``YYYY`` (year only);
* ``country`` -- optional: ISO 3166 alpha-2 or alpha-3 code, upper case;
* ``reference`` -- optional: the decision that listed the entry (at most 500 characters).

CSV: UTF-8 (a BOM is allowed), comma-separated, RFC 4180 quoting, a header row naming
exactly the seven columns above (in any order); the names of one entry in the ``names``
column separated by ``|``. XML: ``<list>`` (optional attribute ``name``, which must then
be the list's name) holding ``<entry ref=".." kind="..">`` elements with the child
elements ``iin_bin``, ``name`` (one or more), ``birth_date``, ``country``, ``reference``;
no other elements or attributes, no text outside them. XML is read with ``defusedxml``:
a DTD, an entity declaration or an external reference is refused (no entity expansion).

Every refusal is :class:`~server.screening.errors.InvalidListFile` naming the line (CSV)
or the entry (XML) and the field; nothing of a refused file is kept.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from server.resources.errors import InvalidIdentifier
from server.resources.identifiers import validate_bin, validate_iin
from server.screening.errors import InvalidListFile

#: The lists (S§17.4, S§30): the List of organisations and persons linked to terrorist
#: activity, and the two Lists (financing of terrorism and extremism; of proliferation).
LIST_NAMES: tuple[str, ...] = ("terrorist", "ft_extremism", "proliferation")
#: The formats a list file may have.
FORMATS: tuple[str, ...] = ("csv", "xml")
#: The columns of a CSV list file (and the fields of an XML entry).
COLUMNS: tuple[str, ...] = ("ref", "kind", "iin_bin", "names", "birth_date", "country",
                            "reference")
KINDS: tuple[str, ...] = ("person", "entity")
#: Most entries one file may hold.
MAX_ENTRIES = 200_000
#: Most names (the name and its aliases) of one entry.
MAX_NAMES = 50
MAX_NAME_CHARS = 300
MAX_REFERENCE_CHARS = 500

_REF = re.compile(r"[A-Za-z0-9._/-]{1,64}")
_COUNTRY = re.compile(r"[A-Z]{2,3}")
_YEAR = re.compile(r"[0-9]{4}")
_XML_FIELDS = frozenset({"iin_bin", "name", "birth_date", "country", "reference"})


@dataclass(frozen=True)
class ListEntry:
    """One entry of a list, as parsed (the fields of the module docstring)."""

    ref: str
    kind: str
    iin_bin: str
    names: tuple[str, ...]
    birth_date: str
    country: str
    reference: str


def _bad(where: str, message: str, detail: str | None = None) -> InvalidListFile:
    return InvalidListFile(f"{where}: {message}", detail=detail)


def _text(value: str, where: str, field: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit:
        raise _bad(where, f"{field} is longer than {limit} characters")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise _bad(where, f"{field} holds a control character")
    return text


def _entry(where: str, raw: dict[str, Any]) -> ListEntry:
    """One entry from its raw text fields (``names`` already a list)."""
    ref = str(raw.get("ref") or "").strip()
    if not _REF.fullmatch(ref):
        raise _bad(where, "ref must be 1-64 characters of A-Z a-z 0-9 . _ / -")
    where = f"{where} (entry {ref})"
    kind = str(raw.get("kind") or "").strip()
    if kind not in KINDS:
        raise _bad(where, "kind must be person or entity")
    iin_bin = str(raw.get("iin_bin") or "").strip()
    if iin_bin:
        try:
            if kind == "person":
                validate_iin(iin_bin)
            else:
                validate_bin(iin_bin)
        except InvalidIdentifier as exc:
            what = "IIN" if kind == "person" else "BIN"
            raise _bad(where, f"iin_bin is not a valid {what}",
                       detail=exc.public_message()) from None
    names_raw = raw.get("names") or []
    names = [_text(n, where, "a name", MAX_NAME_CHARS) for n in names_raw]
    if not names or any(not n for n in names):
        raise _bad(where, "names must hold at least one name and no empty one")
    if len(names) > MAX_NAMES:
        raise _bad(where, f"names holds more than {MAX_NAMES} names")
    birth = str(raw.get("birth_date") or "").strip()
    if birth:
        if kind != "person":
            raise _bad(where, "birth_date is for persons only")
        if _YEAR.fullmatch(birth):
            if not 1800 <= int(birth) <= 2100:
                raise _bad(where, "birth_date year is out of range")
        else:
            try:
                day = _dt.date.fromisoformat(birth)
            except ValueError:
                raise _bad(where, "birth_date must be YYYY-MM-DD or YYYY") from None
            if len(birth) != 10 or not 1800 <= day.year <= 2100:
                raise _bad(where, "birth_date must be YYYY-MM-DD or YYYY")
    country = str(raw.get("country") or "").strip()
    if country and not _COUNTRY.fullmatch(country):
        raise _bad(where, "country must be an ISO 3166 alpha-2 or alpha-3 code")
    reference = _text(str(raw.get("reference") or ""), where, "reference",
                      MAX_REFERENCE_CHARS)
    return ListEntry(ref=ref, kind=kind, iin_bin=iin_bin, names=tuple(names),
                     birth_date=birth, country=country, reference=reference)


def _unique(entries: Iterable[tuple[str, ListEntry]]) -> tuple[ListEntry, ...]:
    seen: dict[str, str] = {}
    out: list[ListEntry] = []
    for where, entry in entries:
        if entry.ref in seen:
            raise _bad(where, f"ref {entry.ref} appears twice (first at {seen[entry.ref]})")
        seen[entry.ref] = where
        out.append(entry)
        if len(out) > MAX_ENTRIES:
            raise _bad(where, f"the file holds more than {MAX_ENTRIES} entries")
    if not out:
        raise InvalidListFile("the list file holds no entries")
    return tuple(out)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidListFile(f"the file is not UTF-8 (byte {exc.start})") from None


def parse_csv(data: bytes) -> tuple[ListEntry, ...]:
    """The entries of a CSV list file (module docstring), or :class:`InvalidListFile`."""
    text = _decode(data)
    if "\x00" in text:
        raise InvalidListFile("the file holds a NUL character")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidListFile("the file is empty: a header row is required")
        names = [h.strip() for h in header]
        if sorted(names) != sorted(COLUMNS):
            missing = sorted(set(COLUMNS) - set(names))
            extra = sorted(set(names) - set(COLUMNS))
            dup = len(names) != len(set(names))
            raise InvalidListFile(
                "line 1: the header must name the columns " + ", ".join(COLUMNS)
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
                + ("; a column is named twice" if dup else ""))

        def rows() -> Iterable[tuple[str, ListEntry]]:
            for row in reader:
                where = f"line {reader.line_num}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(names):
                    raise _bad(where, f"{len(row)} fields, the header names {len(names)}")
                raw: dict[str, Any] = dict(zip(names, row, strict=True))
                raw["names"] = raw["names"].split("|") if raw["names"].strip() else []
                yield where, _entry(where, raw)

        return _unique(rows())
    except csv.Error as exc:
        raise InvalidListFile(f"line {reader.line_num}: not valid CSV",
                              detail=str(exc)) from None


def _children_text(where: str, element: Any) -> str:
    if len(element):
        raise _bad(where, f"<{element.tag}> must hold text only")
    if element.attrib:
        raise _bad(where, f"<{element.tag}> takes no attributes")
    return str(element.text or "")


def parse_xml(data: bytes, *, list_name: str | None = None) -> tuple[ListEntry, ...]:
    """The entries of an XML list file (module docstring), or :class:`InvalidListFile`.

    ``list_name``: when the root names its list, it must be this one.
    """
    try:
        root = safe_et.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                  forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidListFile("the XML file declares a DTD or entities (refused)",
                              detail=repr(exc)) from None
    except (safe_et.ParseError, ValueError, UnicodeDecodeError) as exc:
        position = getattr(exc, "position", None)
        where = f" at line {position[0]}, column {position[1]}" if position else ""
        raise InvalidListFile(f"the file is not well-formed XML{where}",
                              detail=str(exc)) from None
    if root.tag != "list":
        raise InvalidListFile("the root element must be <list>")
    if set(root.attrib) - {"name"}:
        raise InvalidListFile("<list> takes only the attribute name")
    named = root.attrib.get("name")
    if named is not None and list_name is not None and named != list_name:
        raise InvalidListFile(f"<list name={named!r}> is not the list being published "
                              f"({list_name})")
    if (root.text or "").strip():
        raise InvalidListFile("<list> holds text outside its entries")

    def entries() -> Iterable[tuple[str, ListEntry]]:
        for index, element in enumerate(root, start=1):
            where = f"entry {index}"
            if element.tag != "entry":
                raise _bad(where, f"<{element.tag}> is not allowed in <list> (only <entry>)")
            if (element.tail or "").strip() or (element.text or "").strip():
                raise _bad(where, "text outside the fields of an entry")
            if set(element.attrib) - {"ref", "kind"}:
                raise _bad(where, "<entry> takes only the attributes ref and kind")
            raw: dict[str, Any] = {"ref": element.attrib.get("ref", ""),
                                   "kind": element.attrib.get("kind", ""), "names": []}
            for child in element:
                if child.tag not in _XML_FIELDS:
                    raise _bad(where, f"<{child.tag}> is not a field of an entry")
                if (child.tail or "").strip():
                    raise _bad(where, "text outside the fields of an entry")
                value = _children_text(where, child)
                if child.tag == "name":
                    raw["names"].append(value)
                elif child.tag in raw:
                    raise _bad(where, f"<{child.tag}> appears twice")
                else:
                    raw[child.tag] = value
            yield where, _entry(where, raw)

    return _unique(entries())


def parse_list_file(data: bytes, fmt: str, *, list_name: str | None = None
                    ) -> tuple[ListEntry, ...]:
    """``data`` in the format ``fmt`` (``csv`` or ``xml``)."""
    if fmt == "csv":
        return parse_csv(data)
    if fmt == "xml":
        return parse_xml(data, list_name=list_name)
    raise InvalidListFile(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def to_csv(entries: Sequence[ListEntry]) -> bytes:
    """The CSV form of ``entries`` (tests, the benchmark, examples)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow([e.ref, e.kind, e.iin_bin, "|".join(e.names), e.birth_date,
                         e.country, e.reference])
    return out.getvalue().encode("utf-8")


def to_xml(entries: Sequence[ListEntry], list_name: str | None = None) -> bytes:
    """The XML form of ``entries`` (tests, examples)."""
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
             f"<list name={quoteattr(list_name)}>" if list_name else "<list>"]
    for e in entries:
        parts.append(f"<entry ref={quoteattr(e.ref)} kind={quoteattr(e.kind)}>")
        if e.iin_bin:
            parts.append(f"<iin_bin>{escape(e.iin_bin)}</iin_bin>")
        parts.extend(f"<name>{escape(n)}</name>" for n in e.names)
        for tag in ("birth_date", "country", "reference"):
            value = getattr(e, tag)
            if value:
                parts.append(f"<{tag}>{escape(value)}</{tag}>")
        parts.append("</entry>")
    parts.append("</list>")
    return "\n".join(parts).encode("utf-8")
