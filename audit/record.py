"""Audit records and their canonical encoding (pure, no I/O).

A record on disk (and the leaf of the Merkle tree) is **canonical JSON**, UTF-8:

* one JSON object with exactly the keys ``v, seq, time, actor, cert, event, outcome,
  details, payload``, sorted, separators ``,`` and ``:``, no whitespace, non-ASCII kept
  as UTF-8 (``ensure_ascii=False``);
* ``v`` is the format version (1); ``seq`` the 0-based sequence number, which is also
  the leaf index in the log's Merkle tree;
* ``time`` is the log's sequencing time, ISO 8601 in Astana time (R9) with microseconds
  and its offset, e.g. ``2026-11-22T04:17:02.123456+05:00``; it never decreases with seq;
* ``cert`` is the lowercase hex SHA-256 fingerprint of the actor's certificate, or null;
* ``details`` is a JSON object of strings, integers (|n| < 2**53), booleans, null, lists
  and objects — floats are refused because their text form is not canonical;
* ``payload`` is standard base64 (with padding) of the optional raw bytes, or null.

The leaf hash of a record is ``SHA-256(0x00 || canonical bytes)`` (RFC 9162 §2.1.1).

A request envelope is kept in ``payload`` as its raw bytes -- the deterministic protobuf
encoding of the ``siogw.v1.Envelope`` received -- base64 once, never re-escaped as JSON:
a record grows with the request by 4/3 and no more, so every request the gateway accepts
yields a record under the log's ``max_record_bytes``. When something cannot be kept
whole (a refusal of an oversized call), :func:`keep_bytes` keeps its SHA-256, its size
and its first bytes instead (details ``payload_sha256``, ``payload_bytes``,
``payload_truncated``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.errors import MalformedRecord
from siogw_api.timeutil import ensure_utc, to_astana

FORMAT_VERSION = 1
_KEYS = frozenset(
    {"v", "seq", "time", "actor", "cert", "event", "outcome", "details", "payload"}
)
_MAX_INT = 2**53


class EventType(enum.StrEnum):
    """Event types the gateway records. Other dotted lowercase names are allowed."""

    LOGIN = "login"
    CONSENT = "consent"
    QUERY = "query"
    REFUSAL = "refusal"
    ADMIN = "admin"
    OPERATOR = "operator"
    EMERGENCY = "emergency"
    PROSECUTOR_READ = "prosecutor.read"
    REPORT_READ = "report.read"
    AUDIT_OPENED = "audit.opened"
    AUDIT_RECOVERED = "audit.recovered"
    AUDIT_KEY_ROTATED = "audit.key_rotated"


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    REFUSED = "refused"


@dataclass(frozen=True)
class AuditRecord:
    """What a caller asks to record. The log assigns ``seq`` and ``time``.

    Conventional ``details`` keys (the index picks them up): ``resource``, ``basis``,
    ``task``, ``request_id``, ``code``, ``reason`` and ``message`` (refusals),
    ``result_sha256``, ``result_summary`` and ``truncated`` (queries), and for a query
    (answered or refused) ``justification``, ``subject``, ``parameters`` and ``unit``.
    For a call with a signed request envelope, ``payload`` is the deterministic protobuf
    bytes of that ``siogw.v1.Envelope``.
    """

    actor: str
    event: str
    outcome: str
    cert_fingerprint: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    payload: bytes | None = None

    def __post_init__(self) -> None:
        event = self.event.value if isinstance(self.event, enum.Enum) else self.event
        outcome = self.outcome.value if isinstance(self.outcome, enum.Enum) else self.outcome
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "outcome", outcome)
        if not isinstance(self.actor, str) or not self.actor:
            raise MalformedRecord("record actor must be a non-empty string")
        if not isinstance(event, str) or not event or not _is_event_name(event):
            raise MalformedRecord(f"bad event type {event!r}")
        if not isinstance(outcome, str) or not outcome:
            raise MalformedRecord("record outcome must be a non-empty string")
        fp = self.cert_fingerprint
        if fp is not None and not _is_hex(fp, 64):
            raise MalformedRecord("cert_fingerprint must be 64 lowercase hex characters")
        if not isinstance(self.details, Mapping):
            raise MalformedRecord("details must be a mapping")
        _check_json(dict(self.details), "details")
        if self.payload is not None and not isinstance(self.payload, bytes | bytearray):
            raise MalformedRecord("payload must be bytes")


@dataclass(frozen=True)
class LoggedRecord:
    """A record as stored: sequence number and time assigned."""

    seq: int
    time: _dt.datetime
    actor: str
    cert_fingerprint: str | None
    event: str
    outcome: str
    details: Mapping[str, Any]
    payload: bytes | None


def _is_event_name(name: str) -> bool:
    return all(c.islower() or c.isdigit() or c in "._-" for c in name) and name.isascii()


def _is_hex(text: object, length: int) -> bool:
    return (
        isinstance(text, str)
        and len(text) == length
        and all(c in "0123456789abcdef" for c in text)
    )


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -_MAX_INT < value < _MAX_INT:
            raise MalformedRecord(f"{path}: integer out of range")
        return
    if isinstance(value, float):
        raise MalformedRecord(f"{path}: floats are not allowed (not canonical)")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise MalformedRecord(f"{path}: non-string key {k!r}")
            _check_json(v, f"{path}.{k}")
        return
    raise MalformedRecord(f"{path}: unsupported type {type(value).__name__}")


def keep_bytes(data: bytes, limit: int) -> tuple[bytes, dict[str, Any]]:
    """What a record keeps of ``data`` within ``limit`` bytes, and the details that say so.

    ``data`` itself and no details when it fits; otherwise its first ``limit`` bytes and
    ``{"payload_sha256": <hex>, "payload_bytes": <size>, "payload_truncated": True}``.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(data) <= limit:
        return bytes(data), {}
    return bytes(data[:limit]), {
        "payload_sha256": hashlib.sha256(data).hexdigest(),
        "payload_bytes": len(data),
        "payload_truncated": True,
    }


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (with a marker when cut)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "\u2026"


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(value: _dt.datetime) -> str:
    """Record time: Astana ISO 8601 with microseconds and offset."""
    return to_astana(value).isoformat(timespec="microseconds")


def encode_record(record: AuditRecord, seq: int, time: _dt.datetime) -> bytes:
    """The canonical bytes of ``record`` stored at ``seq`` at ``time``."""
    payload = record.payload
    obj = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "time": format_time(ensure_utc(time)),
        "actor": record.actor,
        "cert": record.cert_fingerprint,
        "event": record.event,
        "outcome": record.outcome,
        "details": dict(record.details),
        "payload": base64.b64encode(bytes(payload)).decode("ascii") if payload else None,
    }
    return canonical_json(obj)


def decode_record(data: bytes, *, check_canonical: bool = True) -> LoggedRecord:
    """Parse canonical record bytes. Raises :class:`MalformedRecord` on any defect."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting too
        raise MalformedRecord("record is not JSON", detail=str(exc)[:200]) from None
    if not isinstance(obj, dict) or obj.keys() != _KEYS:
        raise MalformedRecord("record does not have exactly the v1 fields")
    if obj["v"] != FORMAT_VERSION:
        raise MalformedRecord(f"unknown record version {obj['v']!r}")
    seq = obj["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise MalformedRecord("bad seq")
    try:
        time = _dt.datetime.fromisoformat(obj["time"])
    except (TypeError, ValueError) as exc:
        raise MalformedRecord("bad time") from exc
    if time.tzinfo is None:
        raise MalformedRecord("time without offset")
    for key in ("actor", "event", "outcome"):
        if not isinstance(obj[key], str) or not obj[key]:
            raise MalformedRecord(f"bad {key}")
    cert = obj["cert"]
    if cert is not None and not _is_hex(cert, 64):
        raise MalformedRecord("bad cert fingerprint")
    if not isinstance(obj["details"], dict):
        raise MalformedRecord("details is not an object")
    payload_text = obj["payload"]
    payload: bytes | None = None
    if payload_text is not None:
        if not isinstance(payload_text, str):
            raise MalformedRecord("bad payload")
        try:
            payload = base64.b64decode(payload_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedRecord("payload is not base64") from exc
    if check_canonical and canonical_json(obj) != data:
        raise MalformedRecord("record bytes are not canonical JSON")
    return LoggedRecord(
        seq=seq,
        time=time.astimezone(_dt.UTC),
        actor=obj["actor"],
        cert_fingerprint=cert,
        event=obj["event"],
        outcome=obj["outcome"],
        details=obj["details"],
        payload=payload,
    )
