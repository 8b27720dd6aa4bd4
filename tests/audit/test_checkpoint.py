"""C2SP checkpoints in signed notes: format, key hashes, verify-before-parse."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from audit.segments import parse_seal, seal_extensions
from signing import Algorithm, SoftwareSigner, generate_software_key
from signing.errors import CheckpointError
from signing.note import (
    Checkpoint,
    TrustedKey,
    note_key_hash,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

ROOT = hashlib.sha256(b"root").digest()


def _signer(alg: Algorithm) -> SoftwareSigner:
    return SoftwareSigner(generate_software_key(alg))


def _trusted(s: SoftwareSigner) -> TrustedKey:
    return TrustedKey(public_key=s.public_key, algorithm=s.algorithm)


@pytest.mark.parametrize("alg", list(Algorithm), ids=lambda a: a.value)
def test_roundtrip_every_algorithm(alg: Algorithm) -> None:
    s = _signer(alg)
    cp = Checkpoint("example.org/log", 42, ROOT, ("time 2026-11-22T04:00:00+05:00",))
    note = sign_checkpoint(cp, s.sign, s.public_key, s.algorithm)
    text = note.decode()
    body, sigs = text.split("\n\n")
    assert body.split("\n") == ["example.org/log", "42", base64.b64encode(ROOT).decode(),
                                "time 2026-11-22T04:00:00+05:00"]
    assert sigs.startswith("\u2014 example.org/log ") and sigs.endswith("\n")
    opened, key = open_checkpoint(note, [_trusted(s)], origin="example.org/log")
    assert opened == cp and key.key_id == s.key_id


def test_ed25519_key_hash_follows_signed_note_spec() -> None:
    s = _signer(Algorithm.ED25519)
    raw = s.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = hashlib.sha256(b"log.example\n\x01" + raw).digest()[:4]
    assert note_key_hash("log.example", s.public_key, s.algorithm) == expected


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    s, other = _signer(Algorithm.ECDSA_P256_SHA256), _signer(Algorithm.ECDSA_P256_SHA256)
    garbage = b"not a checkpoint\nxx\n"
    kh = note_key_hash("o", other.public_key, other.algorithm)
    note = sign_note(garbage, "o", other.sign, kh)
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(note, [_trusted(s)])
    # The same garbage signed by a trusted key gets as far as the parser.
    note = sign_note(garbage, "o", s.sign, note_key_hash("o", s.public_key, s.algorithm))
    with pytest.raises(CheckpointError, match="checkpoint body too short"):
        open_checkpoint(note, [_trusted(s)])


def test_tampering_and_foreign_lines() -> None:
    s, other = _signer(Algorithm.ECDSA_P256_SHA256), _signer(Algorithm.ED25519)
    cp = Checkpoint("o", 3, ROOT)
    note = sign_checkpoint(cp, s.sign, s.public_key, s.algorithm)
    with pytest.raises(CheckpointError, match="bad signature"):
        open_checkpoint(note.replace(b"\n3\n", b"\n4\n"), [_trusted(s)])
    # An extra signature from an unknown key (a witness) is ignored.
    extra = sign_note(cp.body(), "witness", other.sign,
                      note_key_hash("witness", other.public_key, other.algorithm))
    cosigned = note + extra.split(b"\n\n")[1]
    assert open_checkpoint(cosigned, [_trusted(s)])[0] == cp
    body, _ = open_note(cosigned, [_trusted(other)])
    assert body == cp.body()
    with pytest.raises(CheckpointError, match="no signature"):  # key name = origin
        open_checkpoint(note, [_trusted(s)], origin="another")
    for bad in (b"", b"o\n3\n", note.replace("\u2014".encode(), b"--"), b"\xff\n\n"):
        with pytest.raises(CheckpointError):
            open_checkpoint(bad, [_trusted(s)])


def test_seal_lines_roundtrip_and_must_be_canonical() -> None:
    ext = seal_extensions(number=2, prev="0" * 64, first_seq=5, last_seq=9,
                          first_time="2026-11-22T04:00:00.000001+05:00",
                          last_time="2026-11-22T04:00:01.000001+05:00",
                          segment_name="seg-00000002.log", segment_sha256="a" * 64,
                          segment_length=123, key_id="b" * 64,
                          sealed_at="2026-11-22T04:00:02.000001+05:00")
    seal = parse_seal(Checkpoint("o", 10, ROOT, ext))
    assert (seal.number, seal.first_seq, seal.last_seq, seal.segment_length) == (2, 5, 9, 123)
    with pytest.raises(CheckpointError, match="canonical"):
        parse_seal(Checkpoint("o", 10, ROOT, (*ext, "extra line")))
    with pytest.raises(CheckpointError, match="not a seal"):
        parse_seal(Checkpoint("o", 10, ROOT, ext[1:]))
