"""Offline checks of what a client or auditor holds: receipts, proofs, checkpoints.

Pure functions over bytes and parsed JSON (no file system, gRPC or SQLAlchemy):
:func:`verify_receipt` (a record is in a signed checkpoint's tree),
:func:`verify_consistency_notes` (two signed checkpoints of one log are consistent), and
:func:`bundle_json` (the canonical text of a proof bundle, ``siogw audit prove --bundle``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signing.errors import ProofError, RootMismatch, VerificationError
from signing.merkle import check_hash, leaf_hash, verify_consistency, verify_inclusion
from signing.note import Checkpoint, TrustedKey, open_checkpoint


def bundle_json(obj: Mapping[str, Any]) -> bytes:
    """A proof bundle as JSON text: sorted keys, one-space indent, final newline."""
    return json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class ProvedReceipt:
    """What :func:`verify_receipt` established."""

    origin: str
    seq: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    key_id: str


def _hex_hash(obj: Any, what: str) -> bytes:
    try:
        value = bytes.fromhex(obj)
    except (TypeError, ValueError) as exc:
        raise ProofError(f"{what} is not hex") from exc
    check_hash(value, what)
    return value


def verify_receipt(
    checkpoint_note: bytes,
    receipt: Mapping[str, Any],
    proof: Mapping[str, Any],
    keys: Sequence[TrustedKey],
    *,
    record: bytes | None = None,
) -> ProvedReceipt:
    """Check offline that a receipt's record is in the signed checkpoint's tree.

    Order: the checkpoint's signature (before parsing it), then the receipt and proof
    fields, then the inclusion proof; if ``record`` (canonical record bytes) is given,
    its leaf hash must be the receipt's.
    """
    cp, key = open_checkpoint(checkpoint_note, keys, where="checkpoint")
    try:
        if receipt.get("origin") != cp.origin:
            raise ProofError("receipt is for another log", where="receipt")
        seq = int(receipt["seq"])
        leaf = _hex_hash(receipt["leaf_hash"], "receipt leaf_hash")
        if proof.get("type") != "inclusion":
            raise ProofError("proof is not an inclusion proof", where="proof")
        index = int(proof["leaf_index"])
        size = int(proof["tree_size"])
        hashes = [_hex_hash(h, f"proof hash {i}") for i, h in enumerate(proof["hashes"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"malformed receipt or proof: {exc}") from exc
    if index != seq:
        raise ProofError(f"proof is for seq {index}, receipt for {seq}", where="proof")
    if size != cp.size:
        raise ProofError(f"proof is for tree size {size}, checkpoint has {cp.size}",
                         where="proof")
    if record is not None and leaf_hash(record) != leaf:
        raise RootMismatch(leaf_hash(record), leaf, what="record does not match receipt",
                           where="record", seq=seq)
    try:
        verify_inclusion(leaf, seq, cp.size, hashes, cp.root_hash)
    except VerificationError as exc:
        exc.where, exc.seq = "proof", seq
        exc.args = (exc.place(),)
        raise
    return ProvedReceipt(cp.origin, seq, leaf, cp, key.key_id)


def verify_consistency_notes(
    old_note: bytes, new_note: bytes, proof: Mapping[str, Any], keys: Sequence[TrustedKey]
) -> tuple[Checkpoint, Checkpoint]:
    """Both checkpoints signed, same origin, and the consistency proof links them."""
    old, _ = open_checkpoint(old_note, keys, where="old checkpoint")
    new, _ = open_checkpoint(new_note, keys, origin=old.origin, where="checkpoint")
    try:
        if proof.get("type") != "consistency":
            raise ProofError("proof is not a consistency proof", where="consistency proof")
        size1, size2 = int(proof["size1"]), int(proof["tree_size"])
        hashes = [_hex_hash(h, f"proof hash {i}") for i, h in enumerate(proof["hashes"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"malformed consistency proof: {exc}") from exc
    if (size1, size2) != (old.size, new.size):
        raise ProofError("consistency proof sizes do not match the checkpoints",
                         where="consistency proof")
    verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    return old, new
