"""Batch signatures (issue 18, ADR 0011): one signature over the Merkle root of many
results; every envelope verifies alone, in JSON and on the wire, and a wrong leaf, path,
index, root, size or key is refused. The parsers of the extension are fuzzed."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from signing import batch, dsse
from signing.dsse import Envelope, decode_envelope, pae, sign_batch, verify_envelope
from signing.errors import BadSignature, MalformedEnvelope
from signing.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion
from signing.software import SoftwareSigner
from signing.trust import PublicKeyVerifier
from signing.wire import envelope_from_proto, envelope_to_proto

AT = "2026-12-05T06:00:00+05:00"
SIGNER = SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
VERIFIER = PublicKeyVerifier([SIGNER.public_key])


def _items(n: int) -> list[tuple[str, bytes]]:
    return [(dsse.PAYLOAD_RESULT, f"result {i}".encode()) for i in range(n)]


class CountingSigner(SoftwareSigner):
    calls = 0

    def sign(self, data: bytes) -> bytes:
        type(self).calls += 1
        return super().sign(data)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64])
def test_every_envelope_of_a_batch_verifies_alone(n: int) -> None:
    signer = CountingSigner(ec.generate_private_key(ec.SECP256R1()))
    CountingSigner.calls = 0
    envs = sign_batch(_items(n), signer, at=AT)
    assert CountingSigner.calls == 1  # one token signature for the whole batch
    verifier = PublicKeyVerifier([signer.public_key])
    for i, env in enumerate(envs):
        verified = verify_envelope(env, verifier, payload_types=[dsse.PAYLOAD_RESULT])
        assert verified.payload == f"result {i}".encode()
        proof = env.signatures[0].batch
        assert proof is not None and proof.index == i
        # JSON and the wire keep the proof
        assert verify_envelope(decode_envelope(env.to_json()), verifier).payload == env.payload
        wire = envelope_from_proto(envelope_to_proto(env))
        assert wire == env
    # the statement names the RFC 9162 root over the leaves = leaf hash of each PAE
    statement = batch.parse_statement(envs[0].signatures[0].batch.statement)  # type: ignore[union-attr]
    size, root = root_from_leaf_hashes(leaf_hash(pae(t, p)) for t, p in _items(n))
    assert (statement.size, statement.root, statement.keyid) == (n, root, signer.key_id)
    assert statement.time == AT
    for i, env in enumerate(envs):
        proof = env.signatures[0].batch
        assert proof is not None
        verify_inclusion(leaf_hash(env.pae()), i, size, proof.path, root)


def test_a_batch_of_one_has_an_empty_path_and_the_root_is_the_leaf() -> None:
    (env,) = sign_batch(_items(1), SIGNER, at=AT)
    proof = env.signatures[0].batch
    assert proof is not None and proof.path == () and proof.index == 0
    assert batch.parse_statement(proof.statement).root == leaf_hash(env.pae())
    verify_envelope(env, VERIFIER)


def _with_proof(env: Envelope, **changes: object) -> Envelope:
    sig = env.signatures[0]
    assert sig.batch is not None
    proof = batch.BatchProof(
        statement=changes.get("statement", sig.batch.statement),  # type: ignore[arg-type]
        index=changes.get("index", sig.batch.index),  # type: ignore[arg-type]
        path=changes.get("path", sig.batch.path),  # type: ignore[arg-type]
    )
    return Envelope(env.payload_type, env.payload, (dsse.EnvSig(
        keyid=sig.keyid, sig=sig.sig, cert_der=sig.cert_der, batch=proof),))


def _flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


def test_a_tampered_leaf_path_index_or_root_is_refused() -> None:
    envs = sign_batch(_items(5), SIGNER, at=AT)
    env = envs[2]
    proof = env.signatures[0].batch
    assert proof is not None
    # the leaf: another payload under the same proof
    other_payload = Envelope(env.payload_type, b"result X", env.signatures)
    with pytest.raises(BadSignature, match="does not lead to the signed root"):
        verify_envelope(other_payload, VERIFIER)
    # another envelope's payload with this one's proof
    swapped = Envelope(env.payload_type, envs[3].payload, env.signatures)
    with pytest.raises(BadSignature):
        verify_envelope(swapped, VERIFIER)
    # the path
    bad_path = (_flip(proof.path[0]), *proof.path[1:])
    with pytest.raises(BadSignature, match="does not lead to the signed root"):
        verify_envelope(_with_proof(env, path=bad_path), VERIFIER)
    with pytest.raises(BadSignature, match="does not fit"):
        verify_envelope(_with_proof(env, path=proof.path[:-1]), VERIFIER)
    # the index
    with pytest.raises(BadSignature):
        verify_envelope(_with_proof(env, index=1), VERIFIER)
    with pytest.raises(BadSignature, match="outside the signed batch"):
        verify_envelope(_with_proof(env, index=5), VERIFIER)
    # the root (and size) in the statement: its signature no longer verifies
    st_ = batch.parse_statement(proof.statement)
    forged_root = batch.encode_statement(
        batch.BatchStatement(st_.keyid, leaf_hash(b"forged"), st_.size, st_.time))
    with pytest.raises(BadSignature):
        verify_envelope(_with_proof(env, statement=forged_root), VERIFIER)
    # a root that the path does lead to (a forged tree), but unsigned
    _size, root = root_from_leaf_hashes([leaf_hash(env.pae())])
    forged_tree = batch.encode_statement(batch.BatchStatement(st_.keyid, root, 1, st_.time))
    with pytest.raises(BadSignature):
        verify_envelope(_with_proof(env, statement=forged_tree, index=0, path=()), VERIFIER)
    # the key named by the statement must be the signature's
    other_key = batch.encode_statement(
        batch.BatchStatement("ab" * 32, st_.root, st_.size, st_.time))
    with pytest.raises(BadSignature, match="another key"):
        verify_envelope(_with_proof(env, statement=other_key), VERIFIER)
    # the untouched one still verifies
    verify_envelope(env, VERIFIER)


def test_only_results_may_be_batched() -> None:
    with pytest.raises(MalformedEnvelope, match="cannot be batch-signed"):
        sign_batch([(dsse.PAYLOAD_QUERY, b"q")], SIGNER, at=AT)
    (env,) = sign_batch(_items(1), SIGNER, at=AT)
    as_query = Envelope(dsse.PAYLOAD_QUERY, env.payload, env.signatures)
    with pytest.raises(MalformedEnvelope, match="cannot carry a batch signature"):
        verify_envelope(as_query, VERIFIER)


def test_the_statement_must_be_canonical_and_complete() -> None:
    good = batch.encode_statement(batch.BatchStatement("k", b"\x01" * 32, 3, AT))
    assert batch.parse_statement(good).size == 3
    doc = json.loads(good)
    for bad in (
        json.dumps(doc).encode(),  # spaces: not canonical
        json.dumps({**doc, "size": 0}, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps({**doc, "size": True}, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps({**doc, "root": "zz" * 32}, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps({**doc, "extra": 1}, separators=(",", ":"), sort_keys=True).encode(),
        b"\xff",
        b"x" * (batch.MAX_STATEMENT_BYTES + 1),
    ):
        with pytest.raises(MalformedEnvelope):
            batch.parse_statement(bad)


def test_json_extension_is_bounded() -> None:
    (env,) = sign_batch(_items(2)[:1], SIGNER, at=AT)
    doc = json.loads(env.to_json())
    ext = doc["signatures"][0]["batch"]
    for bad in (
        {**ext, "path": "not a list"},
        {**ext, "path": [base64.b64encode(b"\x00" * 32).decode()] * 17},
        {**ext, "path": [base64.b64encode(b"short").decode()]},
        {**ext, "index": -1},
        {**ext, "index": "0"},
        {**ext, "statement": 5},
        "not an object",
    ):
        doc["signatures"][0]["batch"] = bad
        with pytest.raises(MalformedEnvelope):
            decode_envelope(json.dumps(doc))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(ext=_json_values)
def test_fuzz_json_extension_never_crashes(ext: object) -> None:
    (env,) = sign_batch(_items(1), SIGNER, at=AT)
    doc = json.loads(env.to_json())
    doc["signatures"][0]["batch"] = ext
    try:
        decoded = decode_envelope(json.dumps(doc))
    except MalformedEnvelope:
        return
    # a proof that decoded is either the real one or refused by verification
    try:
        verify_envelope(decoded, VERIFIER)
    except (BadSignature, MalformedEnvelope):
        return
    assert decoded.signatures[0].batch in (None, env.signatures[0].batch)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_statement_parser(data: bytes) -> None:
    try:
        statement = batch.parse_statement(data)
    except MalformedEnvelope:
        return
    assert batch.encode_statement(statement) == data


@settings(max_examples=100, deadline=None)
@given(statement=st.binary(max_size=64), index=st.integers(min_value=0, max_value=2**64 - 1),
       path=st.lists(st.binary(min_size=0, max_size=40), max_size=20))
def test_fuzz_wire_proof(statement: bytes, index: int, path: list[bytes]) -> None:
    (env,) = sign_batch(_items(1), SIGNER, at=AT)
    msg = envelope_to_proto(env)
    msg.signatures[0].batch.statement = statement
    msg.signatures[0].batch.index = index
    del msg.signatures[0].batch.path[:]
    msg.signatures[0].batch.path.extend(path)
    try:
        decoded = envelope_from_proto(msg)
    except MalformedEnvelope:
        return
    try:
        verify_envelope(decoded, VERIFIER)
    except (BadSignature, MalformedEnvelope):
        return
    assert decoded == env  # only the genuine proof verifies
