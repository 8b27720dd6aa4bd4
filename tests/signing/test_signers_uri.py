"""RFC 7512 pkcs11: URI and file:/software: key URI parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.errors import KeyURIError
from signing.uri import (
    Pkcs11URI,
    SoftwareKeyURI,
    parse_key_uri,
    parse_pkcs11_uri,
    percent_decode,
)


def test_full_uri_is_decoded() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=My%20Token;object=sign%2Fkey;id=%01%02%a0%FF;type=private;"
        "serial=abc;slot-id=7;x-vendor=v"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin"
    )
    assert uri.token == "My Token"
    assert uri.object == "sign/key"
    assert uri.id == b"\x01\x02\xa0\xff"
    assert uri.type == "private"
    assert uri.serial == "abc"
    assert uri.slot_id == 7
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin_source == "file:/run/pin"
    assert uri.vendor == {"x-vendor": "v"}


def test_round_trip_through_str() -> None:
    uri = Pkcs11URI(token="a b;c", object="k?=&", id=b"\x00\xff", type="private",
                    pin_source="env:PIN")
    assert parse_pkcs11_uri(str(uri)) == uri


def test_utf8_label() -> None:
    assert parse_pkcs11_uri("pkcs11:token=%D0%90%D1%81").token == "\u0410\u0441"


def test_empty_pkcs11_uri_is_valid() -> None:
    assert parse_pkcs11_uri("pkcs11:") == Pkcs11URI()


def test_id_is_raw_bytes_not_utf8() -> None:
    assert parse_pkcs11_uri("pkcs11:id=%80%81").id == b"\x80\x81"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pkcs11:token=a?pin-value=1234", "pin-value is refused"),
        ("pkcs11:token=a;token=b", "appears twice"),
        ("pkcs11:id=%01;id=%02", "appears twice"),
        ("pkcs11:color=red", "unknown path attribute 'color'"),
        ("pkcs11:token=a?speed=fast", "unknown query attribute 'speed'"),
        ("pkcs11:token=a;;object=b", "empty attribute"),
        ("pkcs11:token", "has no '='"),
        ("pkcs11:token=a%2", "'%' not followed by two hex digits"),
        ("pkcs11:token=a%zz", "'%' not followed by two hex digits"),
        ("pkcs11:token=a b", "must be percent-encoded"),
        ("pkcs11:token=\u0410\u0441", "non-ASCII"),
        ("pkcs11:token=%ff%fe", "not valid UTF-8"),
        ("pkcs11:type=secret", "type must be one of"),
        ("pkcs11:slot-id=x1", "slot-id must be a decimal"),
        ("pkcs11:id=", "id is empty"),
        ("pkcs11:token=a#frag", "no fragment"),
        ("pkcs11:Token=a", "not a valid name"),
        ("pkcs11:?module-path=/a&module-name=b", "not both"),
        ("pkcs12:token=a", "not a pkcs11: URI"),
    ],
)
def test_bad_pkcs11_uris(text: str, message: str) -> None:
    with pytest.raises(KeyURIError) as info:
        parse_pkcs11_uri(text)
    assert message in info.value.diagnostics()


def test_pin_value_error_does_not_echo_the_pin() -> None:
    with pytest.raises(KeyURIError) as info:
        parse_pkcs11_uri("pkcs11:token=a?pin-value=s3cret-991")
    assert "s3cret-991" not in info.value.diagnostics()


def test_percent_decode_strict() -> None:
    assert percent_decode("a%41%7e", what="x") == b"aA~"
    with pytest.raises(KeyURIError):
        percent_decode("%4", what="x")


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("file:/etc/key.pem", "/etc/key.pem"),
        ("file:///etc/key.pem", "/etc/key.pem"),
        ("file://localhost/etc/key.pem", "/etc/key.pem"),
        ("software:keys/ca%20key.pem", "keys/ca key.pem"),
    ],
)
def test_software_uris(text: str, path: str) -> None:
    uri = parse_key_uri(text)
    assert isinstance(uri, SoftwareKeyURI)
    assert uri.path == Path(path)


def test_software_uri_pin_source() -> None:
    uri = parse_key_uri("file:/k.pem?pin-source=env:KEYPASS")
    assert isinstance(uri, SoftwareKeyURI)
    assert uri.pin_source == "env:KEYPASS"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file://remote.example/k.pem", "remote host"),
        ("file:", "has no path"),
        ("file:/k.pem?pin-value=1", "pin-value is refused"),
        ("file:/k.pem?x=1", "unknown query attribute"),
        ("gcpkms:projects/x", "unknown key URI scheme 'gcpkms'"),
        ("just-a-path.pem", "has no scheme"),
        ("", "non-empty"),
    ],
)
def test_bad_key_uris(text: str, message: str) -> None:
    with pytest.raises(KeyURIError) as info:
        parse_key_uri(text)
    assert message in info.value.diagnostics()
