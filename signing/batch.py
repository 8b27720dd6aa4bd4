"""Batch signatures: one token signature over the Merkle root of many envelopes (issue 18).

A slow token (an HSM over the network, a USB device, a TPM) signs a few dozen to a few
hundred times a second. A *batch* signs many payloads with one signature
(``docs/adr/0011-batch-signing.md``):

* each payload's **leaf** is the RFC 9162 leaf hash of its exact DSSE pre-authentication
  encoding, ``SHA-256(0x00 || PAE(type, payload))``;
* the leaves, in batch order, form an RFC 9162 Merkle tree (:mod:`signing.merkle`);
* the signer signs a small **statement** (payload type :data:`PAYLOAD_RESULT_BATCH`,
  canonical JSON ``{"keyid", "root", "size", "time"}``) once, under DSSE's PAE as any
  envelope;
* each payload's envelope carries an ordinary DSSE signature whose ``sig`` is that
  signature over the statement, plus the extension :class:`BatchProof`: the statement,
  the leaf index and the inclusion path.

A verifier recomputes the leaf from the envelope it holds, walks the path to a root,
requires that root, the tree size and the key id to be the statement's, and then checks
``sig`` over ``PAE(PAYLOAD_RESULT_BATCH, statement)`` with the signer's key exactly as it
checks any signature (:func:`signing.dsse.verify_envelope`). A batch of one is a tree of
one leaf with an empty path.

Pure: no I/O, no keys. Every field of a proof is bounded before use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from signing.errors import BadSignature, MalformedEnvelope, ProofError
from signing.merkle import (
    HASH_SIZE,
    inclusion_proof,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
)

#: The payload type of the signed batch statement.
PAYLOAD_RESULT_BATCH = "application/vnd.siogw.result-batch+json"
#: Largest batch a verifier accepts (and a signer builds): 65,536 leaves.
MAX_BATCH_SIZE = 1 << 16
#: Longest inclusion path accepted: log2 of :data:`MAX_BATCH_SIZE`.
MAX_PATH_LENGTH = 16
#: Largest statement accepted, in bytes (a real one is about 200).
MAX_STATEMENT_BYTES = 1024
#: Longest ``time`` and ``keyid`` strings of a statement.
MAX_STATEMENT_TEXT = 128
_STATEMENT_KEYS = frozenset({"keyid", "root", "size", "time"})


@dataclass(frozen=True)
class BatchProof:
    """The extension of a batch-signed DSSE signature: the signed statement, this
    envelope's leaf index in the batch and its inclusion path (leaf side first)."""

    statement: bytes
    index: int
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class BatchStatement:
    """What the token signs once per batch."""

    keyid: str
    root: bytes
    size: int
    time: str


def leaf_for(pae_bytes: bytes) -> bytes:
    """The leaf of an envelope in a batch: the RFC 9162 leaf hash of its PAE."""
    return leaf_hash(pae_bytes)


def encode_statement(statement: BatchStatement) -> bytes:
    """Canonical JSON of ``statement`` (sorted keys, no spaces, the root in hex)."""
    doc = {
        "keyid": statement.keyid,
        "root": statement.root.hex(),
        "size": statement.size,
        "time": statement.time,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")


def parse_statement(data: bytes) -> BatchStatement:
    """A statement from its bytes, strictly (:class:`MalformedEnvelope` naming the first
    problem); the bytes must be exactly the canonical encoding of what they say."""
    if len(data) > MAX_STATEMENT_BYTES:
        raise MalformedEnvelope(
            f"batch statement is {len(data)} bytes, over the limit of {MAX_STATEMENT_BYTES}"
        )
    try:
        doc = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEnvelope("batch statement is not ASCII JSON") from exc
    if not isinstance(doc, dict) or set(doc) != _STATEMENT_KEYS:
        raise MalformedEnvelope("batch statement must have exactly keyid, root, size and time")
    keyid, root_hex, size, time = doc["keyid"], doc["root"], doc["size"], doc["time"]
    if not isinstance(keyid, str) or not isinstance(time, str):
        raise MalformedEnvelope("batch statement keyid and time must be strings")
    if len(keyid) > MAX_STATEMENT_TEXT or len(time) > MAX_STATEMENT_TEXT:
        raise MalformedEnvelope("batch statement keyid or time is too long")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise MalformedEnvelope(f"batch statement size must be between 1 and {MAX_BATCH_SIZE}")
    if not isinstance(root_hex, str) or len(root_hex) != 2 * HASH_SIZE:
        raise MalformedEnvelope("batch statement root is not a hex SHA-256")
    try:
        root = bytes.fromhex(root_hex)
    except ValueError as exc:
        raise MalformedEnvelope("batch statement root is not a hex SHA-256") from exc
    statement = BatchStatement(keyid=keyid, root=root, size=size, time=time)
    if encode_statement(statement) != data:
        raise MalformedEnvelope("batch statement is not in canonical form")
    return statement


def check_proof_shape(proof: Any, where: str) -> BatchProof:
    """``proof``'s fields bounded and typed (:class:`MalformedEnvelope` otherwise)."""
    statement, index, path = proof.statement, proof.index, proof.path
    if not isinstance(statement, bytes | bytearray) or not statement:
        raise MalformedEnvelope(f"{where}.statement is missing")
    if len(statement) > MAX_STATEMENT_BYTES:
        raise MalformedEnvelope(
            f"{where}.statement is {len(statement)} bytes, over the limit of "
            f"{MAX_STATEMENT_BYTES}"
        )
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_BATCH_SIZE:
        raise MalformedEnvelope(f"{where}.index must be between 0 and {MAX_BATCH_SIZE - 1}")
    if len(path) > MAX_PATH_LENGTH:
        raise MalformedEnvelope(
            f"{where}.path has {len(path)} hashes, over the limit of {MAX_PATH_LENGTH}"
        )
    for i, h in enumerate(path):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise MalformedEnvelope(f"{where}.path[{i}] is not a {HASH_SIZE}-byte hash")
    return BatchProof(bytes(statement), index, tuple(bytes(h) for h in path))


def statement_for(proof: BatchProof, pae_bytes: bytes, keyid: str) -> BatchStatement:
    """Check that ``proof`` places the envelope whose PAE is ``pae_bytes`` in the tree its
    statement names, for the key ``keyid``; return the statement (whose signature the
    caller then checks over ``PAE(PAYLOAD_RESULT_BATCH, proof.statement)``).

    :class:`MalformedEnvelope` for a malformed statement; :class:`BadSignature` when the
    leaf, path, root, size or key id do not match (the signature then says nothing about
    this payload)."""
    statement = parse_statement(proof.statement)
    if statement.keyid != keyid:
        raise BadSignature("the batch statement names another key than the signature")
    if proof.index >= statement.size:
        raise BadSignature(
            f"batch leaf index {proof.index} is outside the signed batch of {statement.size}"
        )
    try:
        root = root_from_inclusion_proof(
            leaf_for(pae_bytes), proof.index, statement.size, proof.path
        )
    except ProofError as exc:  # a path of the wrong length for the tree
        raise BadSignature(
            "the batch inclusion path does not fit the signed batch", detail=str(exc)
        ) from exc
    if root != statement.root:
        raise BadSignature("the batch inclusion path does not lead to the signed root")
    return statement


class _Levels:
    """A :class:`signing.merkle.HashSource` over a list of leaves, each subtree hashed once."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.memo: dict[tuple[int, int], bytes] = {}

    def subtree_hash(self, lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return self.leaves[lo]
        key = (lo, hi)
        found = self.memo.get(key)
        if found is None:
            k = largest_power_of_two_below(hi - lo)
            found = node_hash(self.subtree_hash(lo, lo + k), self.subtree_hash(lo + k, hi))
            self.memo[key] = found
        return found


def build_tree(paes: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """``(root, paths)`` of the batch over the envelopes whose PAEs are ``paes``, in
    order: ``paths[i]`` is the inclusion path of leaf ``i``. At least one, at most
    :data:`MAX_BATCH_SIZE`."""
    if not 1 <= len(paes) <= MAX_BATCH_SIZE:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} envelopes, not {len(paes)}")
    src = _Levels([leaf_for(p) for p in paes])
    size = len(paes)
    root = src.subtree_hash(0, size)
    paths = [tuple(inclusion_proof(src, i, size)) for i in range(size)]
    return root, paths
