"""A hypothesis strategy for any protobuf message: random values for every field.

Strings mix free text with values the caller names per field (``hints``) so that
examples also get past the first checks; oneofs set exactly one member; nesting is
bounded. Used by the bad-input tests (tests/server/test_bad_input_*.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor, hints: Mapping[str, Sequence[Any]]) -> st.SearchStrategy[Any]:
    hinted = hints.get(field.name)
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        base: st.SearchStrategy[Any] = st.text(max_size=40)
    elif t == FieldDescriptor.TYPE_BYTES:
        base = st.binary(max_size=120)
    elif t == FieldDescriptor.TYPE_BOOL:
        base = st.booleans()
    elif t == FieldDescriptor.TYPE_ENUM:
        base = st.sampled_from([v.number for v in field.enum_type.values] + [99])
    elif t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]
        base = st.one_of(st.integers(min_value=max(lo, -3), max_value=min(hi, 100)),
                         st.integers(min_value=lo, max_value=hi))
    elif t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        base = st.floats(allow_nan=True, width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    else:  # pragma: no cover - groups are not used by our protos
        raise TypeError(f"unsupported field type {t}")
    if hinted:
        return st.one_of(st.sampled_from(list(hinted)), st.sampled_from(list(hinted)), base)
    return base


def _class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def messages(
    descriptor: Descriptor,
    cls: type[Message],
    *,
    hints: Mapping[str, Sequence[Any]] | None = None,
    depth: int = 3,
) -> st.SearchStrategy[Message]:
    """Random instances of ``cls`` (whose descriptor is ``descriptor``)."""
    hints = hints or {}

    @st.composite
    def build(draw: Any) -> Message:
        msg = cls()
        chosen: dict[str, str] = {
            oneof.name: draw(st.sampled_from([f.name for f in oneof.fields]))
            for oneof in descriptor.oneofs
        }
        for field in descriptor.fields:
            oneof = field.containing_oneof
            if oneof is not None and chosen.get(oneof.name) != field.name:
                continue
            _fill(draw, msg, field, hints, depth, required=oneof is not None)
        return msg

    return build()


def _fill(draw: Any, msg: Message, field: FieldDescriptor, hints: Mapping[str, Sequence[Any]],
          depth: int, *, required: bool) -> None:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    if is_message and field.message_type.GetOptions().map_entry:
        entry = field.message_type
        key_f, val_f = entry.fields_by_name["key"], entry.fields_by_name["value"]
        if val_f.type == FieldDescriptor.TYPE_MESSAGE:
            return
        entries = draw(st.dictionaries(_scalar(key_f, hints), _scalar(val_f, hints), max_size=2))
        getattr(msg, field.name).update(entries)
        return
    if field.is_repeated:
        count = draw(st.integers(min_value=0, max_value=2)) if depth > 0 or not is_message else 0
        target = getattr(msg, field.name)
        for _ in range(count):
            if is_message:
                target.append(draw(messages(field.message_type, _class(field.message_type),
                                            hints=hints, depth=depth - 1)))
            else:
                target.append(draw(_scalar(field, hints)))
        return
    if is_message:
        if depth <= 0 and not required:
            return
        if required or draw(st.booleans()):
            sub = draw(messages(field.message_type, _class(field.message_type),
                                hints=hints, depth=max(depth - 1, 0)))
            getattr(msg, field.name).CopyFrom(sub)
        return
    if required or draw(st.integers(min_value=0, max_value=3)) > 0:
        setattr(msg, field.name, draw(_scalar(field, hints)))
