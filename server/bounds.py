"""Caps on every client-chosen field, checked before anything else reads the request.

The audit record keeps what a client sent (details copied from the request and the
signed envelope), so a record is bounded only if every field it can copy is bounded.
:func:`check_request` walks a request message (every field, nested messages and
repeated fields included) and refuses the first field over its cap with
:class:`FieldTooLarge` (``INVALID_ARGUMENT``). An envelope whose payload is one of the
gateway's protobuf payloads (a query, an admin command) is parsed and walked too: the
query's ``request_id``, ``task_ref``, ``justification`` and ``created_at`` are bounded
before the signature is checked, before the session is read and before any of them is
copied into the record's details.

The caps are by field name (:data:`STRING_CAPS`, :data:`BYTES_CAPS`); a string field
not named there has :data:`DEFAULT_STRING_CAP`; a bytes field not named there is bounded
by the message-size limit only (payloads, signed documents, CSV/CRL uploads); a repeated
field has at most :data:`DEFAULT_REPEATED_CAP` items (``signatures``: at most
:data:`signing.dsse.MAX_SIGNATURES`). Messages name the field and its size, never its
value.

With these caps the largest request the gateway accepts (``limits.max_message_bytes``)
yields a record well under ``audit.max_record_bytes``: the envelope is kept as its
protobuf bytes (at most the message limit, base64 once: 4/3 of it) and the details hold
only capped strings (see ``docs/adr/0003-audit-log.md``).
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from signing import dsse
from siogw_api.errors import InputError
from siogw_api.v1 import admin_pb2, query_pb2, screening_pb2


class FieldTooLarge(InputError):
    """A client-chosen field is over its cap (``INVALID_ARGUMENT``)."""


#: Characters, by field name.
STRING_CAPS: dict[str, int] = {
    "keyid": dsse.MAX_KEYID_LEN,
    "key_id": dsse.MAX_KEYID_LEN,
    "device_key_id": dsse.MAX_KEYID_LEN,
    "payload_type": dsse.MAX_PAYLOAD_TYPE_LEN,
    "request_id": 128,
    "login_id": 128,
    "session_token": 256,
    "task_ref": 256,
    "task": 256,
    "justification": 2000,
    "created_at": 64,
    "user_id": 64,
    "user_ids": 64,
    "full_name": 256,
    "sms_code": 16,
    "pin_changed_at": 64,
    "reason": 2000,
    "note": 2000,
    "description": 2000,
    "text": 4000,
    "message": 2000,
    "measures": 4000,
    "causes": 4000,
    "client_ref": 128,  # the List and the Lists (server/screening)
    "source_reference": 500,
}
#: Strings not named in :data:`STRING_CAPS` (identifiers, times, bases, short names).
DEFAULT_STRING_CAP = 512
#: Bytes, by field name; other bytes fields are bounded by the message limit.
BYTES_CAPS: dict[str, int] = {
    "sig": dsse.MAX_SIG_BYTES,
    "signature": dsse.MAX_SIG_BYTES,
    "cert_der": dsse.MAX_CERT_DER_BYTES,
    "certificate_der": dsse.MAX_CERT_DER_BYTES,
    "device_public_key_der": 4096,
    "leaf_hash": 64,
    "root_hash": 64,
    "hashes": 64,
}
#: Items of a repeated field, by name; others have :data:`DEFAULT_REPEATED_CAP`.
REPEATED_CAPS: dict[str, int] = {"signatures": dsse.MAX_SIGNATURES}
DEFAULT_REPEATED_CAP = 1000
#: Nesting depth walked (the gateway's messages are shallow; deeper is refused).
MAX_DEPTH = 16

#: Envelope payload types whose payload is walked as this message.
_PAYLOAD_MESSAGES: dict[str, type[Message]] = {
    dsse.PAYLOAD_QUERY: query_pb2.Query,
    dsse.PAYLOAD_ADMIN: admin_pb2.AdminCommand,
    dsse.PAYLOAD_LIST_PUBLICATION: screening_pb2.ListPublication,
}


def check_request(message: Message) -> None:
    """Refuse (:class:`FieldTooLarge`) the first field of ``message`` over its cap."""
    _walk(message, "", 0)


def _walk(message: Message, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FieldTooLarge(f"{path or 'request'} is nested too deeply")
    for fd, value in message.ListFields():
        name = fd.name
        where = f"{path}{name}"
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                items = list(value.items())
            else:
                items = list(value)
            cap = REPEATED_CAPS.get(name, DEFAULT_REPEATED_CAP)
            if len(items) > cap:
                raise FieldTooLarge(f"{where} has {len(items)} items, over the limit of {cap}")
            for i, item in enumerate(items):
                _check_value(fd, name, f"{where}[{i}]", item, depth)
        else:
            _check_value(fd, name, where, value, depth)
    if message.DESCRIPTOR.full_name == "siogw.v1.Envelope":
        _walk_payload(message, path, depth)


def _check_value(fd: FieldDescriptor, name: str, where: str, value: object, depth: int) -> None:
    if isinstance(value, tuple):  # a map entry: (key, value)
        for part in value:
            if isinstance(part, str) and len(part) > DEFAULT_STRING_CAP:
                raise FieldTooLarge(
                    f"{where} has a {len(part)}-character entry, over the limit of "
                    f"{DEFAULT_STRING_CAP}"
                )
            if isinstance(part, Message):
                _walk(part, f"{where}.", depth + 1)
        return
    if isinstance(value, Message):
        _walk(value, f"{where}.", depth + 1)
    elif isinstance(value, str):
        cap = STRING_CAPS.get(name, DEFAULT_STRING_CAP)
        if len(value) > cap:
            raise FieldTooLarge(
                f"{where} is {len(value)} characters, over the limit of {cap}"
            )
    elif isinstance(value, bytes):
        bcap = BYTES_CAPS.get(name)
        if bcap is not None and len(value) > bcap:
            raise FieldTooLarge(f"{where} is {len(value)} bytes, over the limit of {bcap}")


def _walk_payload(envelope: Message, path: str, depth: int) -> None:
    kind = _PAYLOAD_MESSAGES.get(getattr(envelope, "payload_type", ""))
    if kind is None:
        return
    inner = kind()
    try:
        inner.ParseFromString(bytes(getattr(envelope, "payload", b"")))
    except DecodeError:
        return  # refused later, once the signature is known good (a precise reason)
    _walk(inner, f"{path}payload.", depth + 1)
