"""Fuzzing in CI (issue 13): every parser of outside input, property-based.

Parsers: DSSE envelopes (``signing.dsse``), the signed query and admin payloads
(``server.query.parse_query``, ``server.admin.parse_admin_command``), certificates and
CRLs (``signing.trust.load_certificates``, ``signing.crl.load_crl``), audit segments,
records, seals/checkpoints (``audit.segments``, ``audit.record``, ``signing.note``) and
the gateway's configuration (``server.config.load_config``).

Properties:

* **only our errors**: any input is parsed or refused with a
  :class:`~siogw_api.errors.SiogwError` -- never a ``ValueError``, ``KeyError``,
  ``RecursionError``, ``UnicodeDecodeError`` ...;
* **no accepted forgery**: a mutated signed input (envelope, checkpoint) either does not
  verify or verifies as exactly what was signed;
* **bounded memory**: inputs over a parser's cap are refused before they are parsed.

Seeds come from ``tests/fuzz/corpus/`` (real samples; ``generate.py`` remakes them); the
strategies mutate them (bit flips, truncation, splices) and add random bytes. Example
counts are bounded so that the whole set runs in well under two minutes.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.record import decode_record
from audit.segments import (
    FRAME_HEADER,
    MAGIC,
    check_segment_content,
    parse_key_history,
    scan_frames,
)
from server.admin import parse_admin_command
from server.config import load_config
from server.query import parse_query
from signing import dsse
from signing.crl import load_crl
from signing.note import Checkpoint, TrustedKey, note_key_hash, open_checkpoint, sign_note
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import PublicKeyVerifier, load_certificates
from siogw_api.errors import SiogwError

CORPUS = Path(__file__).parent / "corpus"
#: ``SIOGW_FUZZ_EXAMPLES`` raises the count for a longer local run (CI keeps 150).
FUZZ = settings(max_examples=int(os.environ.get("SIOGW_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def seeds(kind: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / kind).iterdir()) if p.is_file()]


@st.composite
def mutated(draw: Any, samples: list[bytes]) -> bytes:
    """A corpus sample, mutated a few times (flip, delete, insert, duplicate, truncate)."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "dup", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup" and data:
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seeds(kind)), st.binary(max_size=512))


def only_our_errors(parse: Any, data: Any) -> Any:
    try:
        return parse(data)
    except SiogwError:
        return None


# --- DSSE -----------------------------------------------------------------------------
NESTED = st.integers(1, 20000).map(lambda n: b"[" * n)  # deep nesting: RecursionError


@FUZZ
@given(st.one_of(inputs("dsse"), NESTED))
def test_dsse_decode(data: bytes) -> None:
    only_our_errors(dsse.decode_envelope, data)


_SIGNER = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
_SIGNED = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"the signed query", _SIGNER)
_SIGNED_JSON = _SIGNED.to_json()


@FUZZ
@given(mutated([_SIGNED_JSON]))
def test_dsse_no_accepted_forgery(data: bytes) -> None:
    env = only_our_errors(dsse.decode_envelope, data)
    if env is None:
        return
    verified = only_our_errors(
        lambda e: dsse.verify_envelope(e, PublicKeyVerifier([_SIGNER.public_key])), env)
    if verified is not None:
        assert (verified.payload_type, verified.payload) == (_SIGNED.payload_type,
                                                             _SIGNED.payload)


def test_dsse_oversized_is_refused_before_parsing() -> None:
    with pytest.raises(SiogwError, match="over the limit"):
        dsse.decode_envelope(b" " * (dsse.MAX_ENVELOPE_BYTES + 1))


# --- signed payloads ------------------------------------------------------------------
@FUZZ
@given(inputs("query"))
def test_parse_query(data: bytes) -> None:
    only_our_errors(parse_query, data)


@FUZZ
@given(inputs("admin"))
def test_parse_admin_command(data: bytes) -> None:
    only_our_errors(parse_admin_command, data)


# --- certificates and CRLs --------------------------------------------------------------
@FUZZ
@given(inputs("cert"))
def test_load_certificates(data: bytes) -> None:
    only_our_errors(load_certificates, data)


def test_certificate_of_unknown_version_is_our_error() -> None:
    """Found by the atheris target: ``cryptography`` raises ``InvalidVersion`` (not a
    ``ValueError``) for a certificate whose version field is out of range."""
    from server.certcheck import parse_certificate

    der = bytearray((CORPUS / "cert" / "leaf.der").read_bytes())
    at = der.index(bytes([0xA0, 0x03, 0x02, 0x01, 0x02]))  # [0] EXPLICIT INTEGER 2 (v3)
    der[at + 4] = 6
    with pytest.raises(SiogwError):
        load_certificates(bytes(der))
    with pytest.raises(SiogwError):
        parse_certificate(bytes(der))  # BeginLogin's certificate_der


@FUZZ
@given(inputs("crl"))
def test_load_crl(data: bytes) -> None:
    only_our_errors(load_crl, data)


# --- the audit log's formats ------------------------------------------------------------
@FUZZ
@given(inputs("segment"))
def test_scan_frames_and_segment_content(data: bytes) -> None:
    scan = scan_frames(data)  # never raises: it reports where the good frames stop
    assert scan.good_length <= len(data)
    for strict in (True, False):
        only_our_errors(lambda d: check_segment_content(d, strict), data)


@FUZZ
@given(st.one_of(inputs("record"), NESTED))
def test_decode_record(data: bytes) -> None:
    only_our_errors(decode_record, data)


@FUZZ
@given(st.one_of(inputs("record"), NESTED))
def test_parse_key_history(data: bytes) -> None:
    only_our_errors(parse_key_history, data)


def test_frame_length_is_capped_before_allocating() -> None:
    """A header claiming a 4 GiB frame is refused without reading or allocating it."""
    data = MAGIC + FRAME_HEADER.pack(0xFFFFFFFF, 0) + b"x" * 64
    tracemalloc.start()
    try:
        scan = scan_frames(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scan.complete_frame_bad and not scan.bodies
    assert peak < 1 << 20


_ORIGIN = "sio-gateway/fuzz"
_CP = Checkpoint(_ORIGIN, 7, bytes(range(32)), ("key fuzz",))
_NOTE = sign_note(_CP.body(), _ORIGIN, _SIGNER.sign,
                  note_key_hash(_ORIGIN, _SIGNER.public_key, _SIGNER.algorithm))
_KEYS = [TrustedKey(_SIGNER.public_key, _SIGNER.algorithm)]


@FUZZ
@given(st.one_of(mutated([_NOTE]), inputs("note")))
def test_checkpoint_no_accepted_forgery(data: bytes) -> None:
    opened = only_our_errors(lambda d: open_checkpoint(d, _KEYS, origin=_ORIGIN), data)
    if opened is not None:
        assert opened[0] == _CP


def test_note_is_capped() -> None:
    with pytest.raises(SiogwError, match="too large"):
        open_checkpoint(b"x" * ((1 << 20) + 1), _KEYS)


# --- configuration ----------------------------------------------------------------------
_KEYS_OF = {
    "server": ["port", "host", "database_url", "workers", "prot"],
    "trust": ["anchors", "crls", "crl", "require_crl"],
    "limits": ["max_message_bytes", "clock_skew_seconds", "session_ttl_seconds"],
    "tls": ["cert_file", "key_file"],
    "trsut": ["anchors"],
}
_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.booleans().map(lambda b: str(b).lower()),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"')
                             .replace("\n", "\\n") + '"'),
    st.lists(st.text("abc/._", max_size=8), max_size=3).map(
        lambda xs: "[" + ", ".join(f'"{x}"' for x in xs) + "]"),
    st.floats(allow_nan=False).map(repr), st.just("{}"), st.just("[[1], \"a\"]"),
)


@st.composite
def toml_text(draw: Any) -> bytes:
    lines: list[str] = []
    for section in draw(st.lists(st.sampled_from(sorted(_KEYS_OF)), max_size=4)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(_KEYS_OF[section]), max_size=4)):
            lines.append(f"{key} = {draw(_VALUES)}")
    return "\n".join(lines).encode()


@FUZZ
@given(st.one_of(toml_text(), inputs("config")))
def test_load_config(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    home = tmp_path_factory.mktemp("cfg")
    (home / "siogw.toml").write_bytes(data)
    only_our_errors(lambda h: load_config(h, env={}), home)
