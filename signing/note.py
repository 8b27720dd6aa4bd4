"""C2SP signed notes and checkpoints, pure: keys, signatures, encoding and opening.

A checkpoint (C2SP ``tlog-checkpoint``) inside a C2SP ``signed-note``: origin line,
decimal tree size, base64 root, extension lines, a blank line, then
``— <name> <base64(key hash[4] || signature)>``. :func:`open_checkpoint` verifies the
signature *before* parsing the body. With an Ed25519 key the note is a standard C2SP
one (key hash over ``name LF 0x01 raw-key``) that C2SP tools and witnesses verify.
:func:`audit_key_statement` is what a gateway's result key signs to vouch for its audit
key. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signing.api import Algorithm, PublicKey, key_id_for
from signing.errors import BadSignature, CheckpointError, UnsupportedAlgorithm
from signing.merkle import HASH_SIZE
from signing.verify import verify_signature


# --- keys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrustedKey:
    """A key allowed to sign checkpoints, with the tree sizes it may sign.

    ``valid_from_size`` is the tree size at which the key took over; a key may sign
    checkpoints of size ``>= valid_from_size`` and, once a later key took over at size
    ``S``, only those of size ``<= S`` (so seals made before a rotation still verify).
    """

    public_key: PublicKey
    algorithm: Algorithm
    valid_from_size: int = 0
    valid_from_time: str | None = None
    retired: bool = False

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


def default_algorithm(public_key: PublicKey) -> Algorithm:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return Algorithm.ECDSA_P256_SHA256
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return Algorithm.ED25519
    return Algorithm.RSA_PSS_SHA256


def verify_raw_signature(
    public_key: PublicKey, algorithm: Algorithm, payload: bytes, sig: bytes
) -> bool:
    """True if ``sig`` verifies ``payload`` under the project's policy; False otherwise."""
    try:
        verify_signature(public_key, algorithm, payload, sig)
    except (BadSignature, UnsupportedAlgorithm):
        return False
    return True


def note_key_hash(name: str, public_key: PublicKey, algorithm: Algorithm) -> bytes:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || type || key)[:4].

    Type 0x01 with the raw key for Ed25519, 0x02 with the SPKI DER for ECDSA, and for
    RSA the private-use type 0xFF followed by the algorithm name and the SPKI DER.
    """
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        typed = b"\x01" + public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            typed = b"\x02" + spki
        else:
            typed = b"\xff" + algorithm.value.encode("ascii") + spki
    return hashlib.sha256(name.encode("utf-8") + b"\n" + typed).digest()[:4]


def audit_key_statement(origin: str, public_key: PublicKey) -> bytes:
    """What a gateway's result key signs to vouch for its audit key (the ``audit_key``
    of ``siogw.v1.Checkpoint``): ``siogw audit key v1 LF origin LF`` + the SPKI DER."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b"siogw audit key v1\n" + origin.encode("utf-8") + b"\n" + spki


def load_public_pem(pem: bytes, where: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CheckpointError("not a PEM public key", where=where) from exc
    if not isinstance(
        key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        raise CheckpointError("unsupported public key type", where=where)
    return key


# --- checkpoints and signed notes ---------------------------------------------------------
_EM_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP checkpoint: origin, tree size, root hash and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("bad checkpoint origin")
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise CheckpointError("bad checkpoint extension line")
            lines.append(ext)
        return ("\n".join(lines) + "\n").encode("utf-8")

    def ext(self, keyword: str) -> list[str]:
        """The fields of the extension line starting with ``keyword`` (CheckpointError)."""
        for line in self.extensions:
            parts = line.split(" ")
            if parts[0] == keyword:
                return parts[1:]
        raise CheckpointError(f"checkpoint has no {keyword!r} line")


def sign_note(body: bytes, name: str, sign: Callable[[bytes], bytes], key_hash: bytes) -> bytes:
    """Append a signature line to ``body`` (which must end in a newline)."""
    if not body.endswith(b"\n") or b"\n\n" in body:
        raise CheckpointError("note body must end in one newline and have no blank line")
    sig = sign(body)
    line = f"{_EM_DASH} {name} {base64.b64encode(key_hash + sig).decode()}\n"
    return body + b"\n" + line.encode("utf-8")


def sign_checkpoint(
    checkpoint: Checkpoint,
    sign: Callable[[bytes], bytes],
    public_key: PublicKey,
    algorithm: Algorithm,
) -> bytes:
    """Signed-note bytes of ``checkpoint``; the key name is the origin."""
    kh = note_key_hash(checkpoint.origin, public_key, algorithm)
    return sign_note(checkpoint.body(), checkpoint.origin, sign, kh)


def open_note(
    note: bytes, keys: Sequence[TrustedKey], *, name: str | None = None, where: str | None = None
) -> tuple[bytes, TrustedKey]:
    """Verify a signed note; return (body, key). The body is NOT parsed here.

    ``name`` restricts the accepted key name (the log origin). Unknown signature lines
    are ignored; a known key whose signature fails rejects the note.
    """
    if len(note) > 1 << 20:
        raise CheckpointError("note too large", where=where)
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError("note is not UTF-8", where=where) from exc
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise CheckpointError("note has no signature block", where=where)
    body = text[: split + 1].encode("utf-8")
    sig_lines = text[split + 2 : -1].split("\n")
    for line in sig_lines:
        if not line.startswith(_EM_DASH + " "):
            raise CheckpointError("malformed signature line", where=where)
        try:
            line_name, b64 = line[2:].rsplit(" ", 1)
            blob = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError("malformed signature line", where=where) from exc
        if len(blob) < 5 or (name is not None and line_name != name):
            continue
        kh, sig = blob[:4], blob[4:]
        for key in keys:
            if note_key_hash(line_name, key.public_key, key.algorithm) != kh:
                continue
            if verify_raw_signature(key.public_key, key.algorithm, body, sig):
                return body, key
            raise CheckpointError(
                f"bad signature by key {key.key_id[:16]}", where=where
            )
    raise CheckpointError("no signature from a trusted key", where=where)


def parse_checkpoint_body(body: bytes, *, where: str | None = None) -> Checkpoint:
    """Parse a checkpoint body (only ever call on a body whose signature verified)."""
    try:
        lines = body.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise CheckpointError("checkpoint is not UTF-8", where=where) from exc
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("checkpoint body too short", where=where)
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise CheckpointError("bad checkpoint origin or size", where=where)
    try:
        root = base64.b64decode(root_text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError("bad checkpoint root hash", where=where) from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError("bad checkpoint root hash length", where=where)
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:-1]))


def open_checkpoint(
    note: bytes,
    keys: Sequence[TrustedKey],
    *,
    origin: str | None = None,
    where: str | None = None,
) -> tuple[Checkpoint, TrustedKey]:
    """Verify the signature, THEN parse; checks the origin if given."""
    body, key = open_note(note, keys, name=origin, where=where)
    cp = parse_checkpoint_body(body, where=where)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} != {origin!r}", where=where)
    return cp, key

