"""Access rights applied on the server before any answer leaves it (SPEC R2).

A truncated resource declares a *schema* (:class:`~server.resources.catalogue.
TruncatedSchema`), not a list of key names: filtering key names alone let any value
through under an allowed key (rows sent as arrays, bare numbers as rows, nested objects
under ``period`` ...), so an upstream could carry an amount out under an allowed name.
The answer that leaves is *rebuilt* by the gateway from the schema:

* ``subject`` — an object with exactly the schema's subject fields, each of its type,
  and, when the dispatcher passes the query's parameters, equal to them;
* ``records`` — a list (at most ``max_rows``) of objects; from each, only the schema's row
  fields are taken, every one present, of its type (``None`` only where nullable); other
  keys of a row are dropped with their values, whatever their shape;
* ``count`` — ``len(records)``, computed here; the upstream's own count is ignored;
* every other top-level key is dropped.

Field types (:class:`~server.resources.catalogue.FieldType`) are strings checked in full
(an IIN or BIN with its check digit, ``YYYY-MM``, a calendar date, a name with at least
one letter); no field is a JSON number, so the only number in a truncated answer is the
gateway's count. Anything that does not fit is refused as :class:`UpstreamRejected`
(``UPSTREAM_REJECTED``; the interceptor records the refusal). Full-access resources pass
through unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from server.resources.catalogue import FieldType, Resource, TruncatedSchema
from server.resources.errors import InvalidIdentifier, UpstreamRejected
from server.resources.identifiers import validate_bin, validate_iin

__all__ = ["apply_access_right", "check_field"]

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_NAME = 256


def _valid(kind: FieldType, value: str) -> bool:
    if kind is FieldType.IIN or kind is FieldType.BIN:
        try:
            (validate_iin if kind is FieldType.IIN else validate_bin)(value)
        except InvalidIdentifier:
            return False
        return True
    if kind is FieldType.MONTH:
        return _MONTH.fullmatch(value) is not None
    if kind is FieldType.DATE:
        if _DATE.fullmatch(value) is None:
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    # FieldType.NAME
    return 0 < len(value) <= _MAX_NAME and any(c.isalpha() for c in value)


def check_field(kind: FieldType, value: object) -> bool:
    """``True`` if ``value`` is a string of type ``kind`` (never for a number or a container)."""
    return isinstance(value, str) and _valid(kind, value)


def _reject(resource: Resource, what: str) -> UpstreamRejected:
    return UpstreamRejected(f"resource {resource.number}: upstream answer {what}")


def _fields(
    resource: Resource,
    obj: Mapping[str, Any],
    fields: Mapping[str, FieldType],
    nullable: frozenset[str],
    where: str,
) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, kind in fields.items():
        if name not in obj:
            raise _reject(resource, f"lacks a field of the {where}")
        value = obj[name]
        if value is None and name in nullable:
            out[name] = None
        elif check_field(kind, value):
            out[name] = value
        else:
            raise _reject(resource, f"has a {where} field that does not fit its type")
    return out


def _truncate(
    resource: Resource,
    schema: TruncatedSchema,
    data: Mapping[str, Any],
    params: Mapping[str, str] | None,
) -> dict[str, Any]:
    subject = data.get("subject")
    if not isinstance(subject, dict):
        raise _reject(resource, "has no subject object")
    kept_subject = _fields(resource, subject, schema.subject, frozenset(), "subject")
    if params is not None and kept_subject != dict(params):
        raise _reject(resource, "is about another subject than the query's")
    records = data.get("records")
    if not isinstance(records, list):
        raise _reject(resource, "has no list of records")
    if len(records) > schema.max_rows:
        raise _reject(resource, f"has more than {schema.max_rows} records")
    rows: list[dict[str, str | None]] = []
    for row in records:
        if not isinstance(row, dict):
            raise _reject(resource, "has a record that is not an object")
        rows.append(_fields(resource, row, schema.row, schema.nullable, "record"))
    return {"subject": kept_subject, "count": len(rows), "records": rows}


def apply_access_right(
    resource: Resource, data: dict[str, Any], params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The part of ``data`` the agency may receive for ``resource``.

    Full-access resources get ``data`` back unchanged. For a truncated one a new structure
    is built from the resource's schema (``data`` is not modified); an answer that does not
    fit it raises :class:`UpstreamRejected`. ``params`` (the validated query parameters),
    when given, must be the answer's subject.
    """
    if not resource.truncated:
        return data
    if resource.schema is None:  # fail closed: a truncated resource without a schema
        raise _reject(resource, "cannot be truncated: the resource has no schema")
    return _truncate(resource, resource.schema, data, params)
