"""Key URIs: RFC 7512 ``pkcs11:`` URIs and ``file:``/``software:`` PEM key paths.

Parsing is pure (no I/O). Every malformed input raises :class:`signing.errors.KeyURIError`
naming the offending part; a ``pin-value`` query attribute is refused outright, because a
PIN inside a URI ends up in configuration files, process listings and logs. Use
``pin-source`` (``env:VAR`` or ``file:/path``, see :mod:`signing.pins`) instead.

Examples::

    pkcs11:token=siogw-user-1;object=sign;type=private?pin-source=env:SIOGW_PIN
    pkcs11:token=hsm;id=%01%02%a0?module-path=/usr/lib/softhsm/libsofthsm2.so
    file:/etc/siogw/ca-key.pem
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import quote

from signing.errors import KeyURIError

#: Path attributes RFC 7512 defines (section 2.3).
PATH_ATTRIBUTES = frozenset(
    {
        "token", "manufacturer", "serial", "model",
        "library-manufacturer", "library-description", "library-version",
        "object", "type", "id",
        "slot-manufacturer", "slot-description", "slot-id",
    }
)
#: Query attributes RFC 7512 defines (section 2.3).
QUERY_ATTRIBUTES = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
#: Values of the ``type`` path attribute.
OBJECT_TYPES = frozenset({"public", "private", "cert", "secret-key", "data"})

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# Characters never allowed raw in a URI (RFC 3986 neither reserves nor leaves them unreserved).
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\"<>\\^`{}#]")
_PCT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def percent_decode(text: str, *, what: str) -> bytes:
    """Decode ``%XX`` escapes strictly: a stray ``%`` or a non-ASCII character is an error."""
    bad = _FORBIDDEN.search(text)
    if bad:
        raise KeyURIError(f"{what}: character {bad.group()!r} must be percent-encoded")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise KeyURIError(f"{what}: non-ASCII characters must be percent-encoded") from None
    if _PCT.search(raw):
        raise KeyURIError(f"{what}: '%' not followed by two hex digits")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _decode_text(text: str, *, what: str) -> str:
    raw = percent_decode(text, what=what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyURIError(f"{what}: not valid UTF-8 after percent-decoding") from None


def _pct(value: str | bytes, safe: str = "") -> str:
    return quote(value, safe=safe)


@dataclass(frozen=True)
class Pkcs11URI:
    """A parsed RFC 7512 URI. Attribute values are percent-decoded."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    slot_id: int | None = None
    module_path: str | None = None
    module_name: str | None = None
    pin_source: str | None = None
    #: Other standard path attributes (library-*, slot-*), decoded.
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Vendor attributes (``x-...``), path and query, decoded.
    vendor: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    scheme = "pkcs11"

    def __str__(self) -> str:
        path: list[str] = []
        for name, value in (
            ("token", self.token), ("manufacturer", self.manufacturer),
            ("serial", self.serial), ("model", self.model), ("object", self.object),
        ):
            if value is not None:
                path.append(f"{name}={_pct(value)}")
        if self.type is not None:
            path.append(f"type={self.type}")
        if self.id is not None:
            path.append("id=" + "".join(f"%{b:02x}" for b in self.id))
        if self.slot_id is not None:
            path.append(f"slot-id={self.slot_id}")
        path.extend(f"{k}={_pct(v)}" for k, v in sorted(self.extra.items()))
        query: list[str] = []
        if self.module_name is not None:
            query.append(f"module-name={_pct(self.module_name)}")
        if self.module_path is not None:
            query.append(f"module-path={_pct(self.module_path, safe='/')}")
        if self.pin_source is not None:
            query.append(f"pin-source={_pct(self.pin_source, safe='/:')}")
        text = "pkcs11:" + ";".join(path)
        return text + ("?" + "&".join(query) if query else "")

    def describe(self) -> str:
        """Token and key, for error messages (never contains a PIN)."""
        key = self.object if self.object is not None else (
            self.id.hex() if self.id is not None else "?"
        )
        return f"token {self.token!r} key {key!r}"


@dataclass(frozen=True)
class SoftwareKeyURI:
    """``file:/path/key.pem`` or ``software:/path/key.pem``: a PEM private key file."""

    path: Path
    pin_source: str | None = None
    scheme: str = "file"

    def __str__(self) -> str:
        text = f"{self.scheme}:{_pct(str(self.path), safe='/')}"
        if self.pin_source is not None:
            text += f"?pin-source={_pct(self.pin_source, safe='/:')}"
        return text


KeyURI = Pkcs11URI | SoftwareKeyURI


def _split_attrs(text: str, sep: str, *, part: str) -> list[tuple[str, str]]:
    if text == "":
        return []
    pairs: list[tuple[str, str]] = []
    for item in text.split(sep):
        if item == "":
            raise KeyURIError(f"empty attribute in the {part} (stray {sep!r})")
        name, eq, value = item.partition("=")
        if not eq:
            raise KeyURIError(f"{part} attribute {name!r} has no '='")
        if not _NAME.match(name):
            raise KeyURIError(f"{part} attribute name {name!r} is not a valid name")
        pairs.append((name, value))
    return pairs


def parse_pkcs11_uri(uri: str) -> Pkcs11URI:
    """Parse an RFC 7512 ``pkcs11:`` URI."""
    if not isinstance(uri, str):
        raise KeyURIError("a key URI must be a string")
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "pkcs11":
        raise KeyURIError("not a pkcs11: URI", detail=_redact(uri))
    if "#" in rest:
        raise KeyURIError("a pkcs11: URI has no fragment ('#' must be percent-encoded)")
    path_part, _, query_part = rest.partition("?")
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    vendor: dict[str, str] = {}
    ident: bytes | None = None
    for name, value in _split_attrs(path_part, ";", part="path"):
        if name.startswith("x-"):
            vendor[name] = _decode_text(value, what=name)
            continue
        if name not in PATH_ATTRIBUTES:
            raise KeyURIError(f"unknown path attribute {name!r}")
        if name in values or (name == "id" and ident is not None):
            raise KeyURIError(f"path attribute {name!r} appears twice")
        if name == "id":
            ident = percent_decode(value, what="id")
            if not ident:
                raise KeyURIError("id is empty")
            continue
        values[name] = _decode_text(value, what=name)
    query: dict[str, str] = {}
    for name, value in _split_attrs(query_part, "&", part="query"):
        if name.startswith("x-"):
            vendor[name] = _decode_text(value, what=name)
            continue
        if name not in QUERY_ATTRIBUTES:
            raise KeyURIError(f"unknown query attribute {name!r}")
        if name == "pin-value":
            raise KeyURIError(
                "pin-value is refused: a PIN inside a URI ends up in logs; "
                "use pin-source=env:VAR or pin-source=file:/path"
            )
        if name in query:
            raise KeyURIError(f"query attribute {name!r} appears twice")
        query[name] = _decode_text(value, what=name)
    obj_type = values.pop("type", None)
    if obj_type is not None and obj_type not in OBJECT_TYPES:
        raise KeyURIError(
            f"type must be one of {', '.join(sorted(OBJECT_TYPES))}", detail=repr(obj_type)
        )
    slot_text = values.pop("slot-id", None)
    slot_id: int | None = None
    if slot_text is not None:
        if not slot_text.isdigit() or not slot_text.isascii():
            raise KeyURIError("slot-id must be a decimal number", detail=repr(slot_text))
        slot_id = int(slot_text)
    known = {k: values.pop(k) for k in ("token", "object", "serial", "manufacturer", "model")
             if k in values}
    extra.update(values)
    if "module-path" in query and "module-name" in query:
        raise KeyURIError("give module-path or module-name, not both")
    return Pkcs11URI(
        token=known.get("token"),
        object=known.get("object"),
        id=ident,
        type=obj_type,
        serial=known.get("serial"),
        manufacturer=known.get("manufacturer"),
        model=known.get("model"),
        slot_id=slot_id,
        module_path=query.get("module-path"),
        module_name=query.get("module-name"),
        pin_source=query.get("pin-source"),
        extra=MappingProxyType(extra),
        vendor=MappingProxyType(vendor),
    )


def parse_software_uri(uri: str) -> SoftwareKeyURI:
    """Parse ``file:/abs/path``, ``file:///abs/path``, ``file:rel/path`` or ``software:...``."""
    scheme, colon, rest = uri.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("file", "software"):
        raise KeyURIError("not a file: or software: key URI", detail=_redact(uri))
    path_part, _, query_part = rest.partition("?")
    if path_part.startswith("//"):
        authority, slash, tail = path_part[2:].partition("/")
        if authority not in ("", "localhost"):
            raise KeyURIError("file URIs must not name a remote host", detail=authority)
        path_part = slash + tail
    if not path_part:
        raise KeyURIError(f"{scheme}: URI has no path")
    path = Path(_decode_text(path_part, what="path"))
    pin_source: str | None = None
    for name, value in _split_attrs(query_part, "&", part="query"):
        if name == "pin-value":
            raise KeyURIError("pin-value is refused: a PIN inside a URI ends up in logs")
        if name != "pin-source":
            raise KeyURIError(f"unknown query attribute {name!r} in a {scheme}: URI")
        if pin_source is not None:
            raise KeyURIError("query attribute 'pin-source' appears twice")
        pin_source = _decode_text(value, what=name)
    return SoftwareKeyURI(path=path, pin_source=pin_source, scheme=scheme)


def parse_key_uri(uri: str) -> KeyURI:
    """Parse any key URI sio-gateway knows, choosing by scheme."""
    if not isinstance(uri, str) or not uri:
        raise KeyURIError("a key URI must be a non-empty string")
    scheme = uri.partition(":")[0].lower()
    if scheme == "pkcs11":
        return parse_pkcs11_uri(uri)
    if scheme in ("file", "software"):
        return parse_software_uri(uri)
    if ":" not in uri:
        raise KeyURIError("key URI has no scheme (expected pkcs11:, file: or software:)")
    raise KeyURIError(
        f"unknown key URI scheme {scheme!r}", detail="expected pkcs11:, file: or software:"
    )


def _redact(uri: str) -> str:
    """A URI for an error message, with any query part (which may carry secrets) dropped."""
    return uri.partition("?")[0][:200]
