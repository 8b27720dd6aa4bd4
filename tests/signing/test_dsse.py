"""DSSE v1: PAE vectors from the spec, JSON and proto round trips, multi-signature,
threshold, and every malformed-input case naming its precise reason."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from signing import dsse
from signing.dsse import Envelope, EnvSig, decode_envelope, pae, sign_envelope, verify_envelope
from signing.errors import BadSignature, MalformedEnvelope, UnknownSigner
from signing.software import SoftwareSigner
from signing.trust import PublicKeyVerifier


def test_pae_spec_vector() -> None:
    # signing-spec protocol.md, "Test vectors"/example: type http://example.com/HelloWorld
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_empty_and_binary() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "
    # lengths are in bytes, not characters, and the body is copied verbatim
    assert pae("тип", b"\x00 \xff") == "DSSEv1 6 тип 3 ".encode() + b"\x00 \xff"


def test_pae_separates_type_from_body() -> None:
    # moving bytes between type and body must change the encoding
    assert pae("a b", b"c") != pae("a", b"b c")


def _ec() -> SoftwareSigner:
    return SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))


def test_sign_json_round_trip_and_verify() -> None:
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_QUERY, b'{"q":1}', [s])
    doc = json.loads(env.to_json())
    assert doc["payloadType"] == dsse.PAYLOAD_QUERY
    assert base64.b64decode(doc["payload"]) == b'{"q":1}'
    assert doc["signatures"][0]["keyid"] == s.key_id
    back = decode_envelope(env.to_json())
    assert back == env
    verified = verify_envelope(back, PublicKeyVerifier([s.public_key]))
    assert verified.payload == b'{"q":1}'
    assert verified.signers[0].keyid == s.key_id


def test_signature_is_over_pae_not_payload() -> None:
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_CONSENT, b"yes", s)
    # a raw signature over the payload alone must not verify
    raw = Envelope(env.payload_type, env.payload, (EnvSig(s.key_id, s.sign(b"yes")),))
    with pytest.raises(BadSignature):
        verify_envelope(raw, PublicKeyVerifier([s.public_key]))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: Envelope(dsse.PAYLOAD_RESULT, e.payload, e.signatures),  # type confusion
        lambda e: Envelope(e.payload_type, e.payload + b"!", e.signatures),
        lambda e: Envelope(
            e.payload_type,
            e.payload,
            (EnvSig(e.signatures[0].keyid, e.signatures[0].sig[:-1] + b"\x00"),),
        ),
    ],
    ids=["payload-type", "payload", "sig"],
)
def test_tampering_is_bad_signature(mutate) -> None:  # type: ignore[no-untyped-def]
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_QUERY, b"select", [s])
    with pytest.raises(BadSignature):
        verify_envelope(mutate(env), PublicKeyVerifier([s.public_key]))


def test_unknown_signer() -> None:
    env = sign_envelope(dsse.PAYLOAD_QUERY, b"x", [_ec()])
    with pytest.raises(UnknownSigner):
        verify_envelope(env, PublicKeyVerifier([_ec().public_key]))


def test_multi_signature_threshold() -> None:
    a, b = _ec(), SoftwareSigner(ed25519.Ed25519PrivateKey.generate())
    env = sign_envelope(dsse.PAYLOAD_ADMIN, b"block user 7", [a, b])
    assert len(env.signatures) == 2
    both = PublicKeyVerifier([a.public_key, b.public_key])
    assert len(verify_envelope(env, both, threshold=2).signers) == 2
    only_a = PublicKeyVerifier([a.public_key])
    with pytest.raises(UnknownSigner):  # every signature must verify (issue 12)
        verify_envelope(env, only_a)
    with pytest.raises(UnknownSigner):
        verify_envelope(env, only_a, threshold=2)


def test_one_failing_signature_refuses_the_envelope() -> None:
    """Issue 12: an extra signature that does not verify is not ignored beside a good one."""
    a = _ec()
    good = sign_envelope(dsse.PAYLOAD_QUERY, b"q", [a])
    verifier = PublicKeyVerifier([a.public_key])
    assert verify_envelope(good, verifier).signers[0].keyid == a.key_id
    extra = Envelope(good.payload_type, good.payload,
                     (*good.signatures, EnvSig(a.key_id, good.signatures[0].sig[:-1] + b"!")))
    with pytest.raises(BadSignature):
        verify_envelope(extra, verifier)
    junk = Envelope(good.payload_type, good.payload,
                    (*good.signatures, EnvSig("\x01" * 100, b"sig")))
    with pytest.raises(UnknownSigner):
        verify_envelope(junk, verifier)


def test_signature_fields_are_capped() -> None:
    a = _ec()
    env = sign_envelope(dsse.PAYLOAD_QUERY, b"q", [a])
    sig = env.signatures[0]
    for item, what in [
        ({"keyid": "\x01" * (dsse.MAX_KEYID_LEN + 1), "sig": sig.sig}, "keyid"),
        ({"keyid": "k", "sig": b"s" * (dsse.MAX_SIG_BYTES + 1)}, "sig"),
        ({"keyid": "k", "sig": sig.sig, "cert_der": b"c" * (dsse.MAX_CERT_DER_BYTES + 1)},
         "certificate"),
    ]:
        with pytest.raises(MalformedEnvelope, match=what):
            Envelope.from_proto_fields(env.payload_type, env.payload, [item])
    long_keyid = json.loads(env.to_json())
    long_keyid["signatures"][0]["keyid"] = "k" * (dsse.MAX_KEYID_LEN + 1)
    with pytest.raises(MalformedEnvelope, match="keyid"):
        decode_envelope(json.dumps(long_keyid))


def test_threshold_must_be_positive() -> None:
    from siogw_api.errors import InputError

    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_ADMIN, b"x", [s])
    with pytest.raises(InputError):
        verify_envelope(env, PublicKeyVerifier([s.public_key]), threshold=0)


def test_threshold_counts_distinct_keys() -> None:
    a = _ec()
    env = sign_envelope(dsse.PAYLOAD_ADMIN, b"x", [a, a])
    with pytest.raises(BadSignature, match="distinct keys"):
        verify_envelope(env, PublicKeyVerifier([a.public_key]), threshold=2)


def test_threshold_prefers_informative_error() -> None:
    a, stranger = _ec(), _ec()
    env = sign_envelope(dsse.PAYLOAD_QUERY, b"x", [stranger, a])
    bad = Envelope(env.payload_type, b"y", env.signatures)
    # the stranger is unknown, a's signature is bad: report the bad signature
    with pytest.raises(BadSignature):
        verify_envelope(bad, PublicKeyVerifier([a.public_key]))


def test_payload_type_allow_list() -> None:
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_RESULT, b"x", [s])
    with pytest.raises(MalformedEnvelope, match="unexpected payloadType"):
        verify_envelope(env, PublicKeyVerifier([s.public_key]), payload_types=[dsse.PAYLOAD_QUERY])


def test_proto_fields_round_trip() -> None:
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_LOGIN_CHALLENGE, b"nonce", [s, _ec()])
    fields = env.to_proto_fields()
    first = {"keyid": s.key_id, "sig": env.signatures[0].sig, "cert_der": b""}
    assert fields["signatures"][0] == first
    back = Envelope.from_proto_fields(**fields)
    assert back == env

    class Msg:  # attribute access, like a generated message
        keyid = s.key_id
        sig = env.signatures[0].sig
        cert_der = b""

    assert Envelope.from_proto_fields(env.payload_type, env.payload, [Msg()]).signatures[0] == (
        env.signatures[0]
    )
    with pytest.raises(MalformedEnvelope, match="no signatures"):
        Envelope.from_proto_fields(env.payload_type, env.payload, [])
    with pytest.raises(MalformedEnvelope, match=r"signatures\[0\].sig"):
        Envelope.from_proto_fields(env.payload_type, env.payload, [{"keyid": "k", "sig": b""}])
    with pytest.raises(MalformedEnvelope, match="payload is not bytes"):
        Envelope.from_proto_fields(env.payload_type, "text", fields["signatures"])  # type: ignore[arg-type]


def test_urlsafe_base64_and_unknown_fields_accepted() -> None:
    payload = bytes(range(256))  # forces + and / in standard base64
    s = _ec()
    env = sign_envelope(dsse.PAYLOAD_RESULT, payload, [s])
    doc = json.loads(env.to_json())
    doc["payload"] = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    doc["extra"] = {"ignored": True}
    doc["signatures"][0]["future"] = 1
    back = decode_envelope(json.dumps(doc))
    assert back.payload == payload
    verify_envelope(back, PublicKeyVerifier([s.public_key]))


def _good() -> dict:  # type: ignore[type-arg]
    return {
        "payload": base64.b64encode(b"p").decode(),
        "payloadType": dsse.PAYLOAD_QUERY,
        "signatures": [{"keyid": "k", "sig": base64.b64encode(b"s").decode()}],
    }


def _with(**changes):  # type: ignore[no-untyped-def]
    doc = _good()
    for k, v in changes.items():
        if v is _DROP:
            del doc[k]
        else:
            doc[k] = v
    return json.dumps(doc).encode()


_DROP = object()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (_with(payload=_DROP), "no 'payload' field"),
        (_with(payloadType=_DROP), "no 'payloadType' field"),
        (_with(signatures=_DROP), "no 'signatures' field"),
        (_with(payloadType=5), "payloadType is not a string"),
        (_with(payloadType=""), "payloadType is missing or empty"),
        (_with(payload="@@@"), "payload is not valid base64"),
        (_with(payload=12), "payload is not a base64 string"),
        (_with(signatures={}), "signatures is not a list"),
        (_with(signatures=[]), "no signatures"),
        (_with(signatures=["x"]), r"signatures\[0\] is not an object"),
        (_with(signatures=[{"keyid": "k"}]), r"signatures\[0\] has no 'sig'"),
        (_with(signatures=[{"keyid": 1, "sig": "AA=="}]), r"signatures\[0\].keyid"),
        (_with(signatures=[{"sig": "%%"}]), r"signatures\[0\].sig is not valid base64"),
        (_with(signatures=[{"sig": ""}]), r"signatures\[0\].sig is empty"),
        (_with(signatures=[{"sig": "AA==", "cert": "nope"}]), "not a PEM certificate"),
        (_with(signatures=[{"sig": "AA=="}] * 17), "more than 16 signatures"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"payload": "", "payload": "", "payloadType": "x", "signatures": []}',
         "duplicate 'payload' field"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedEnvelope, match=reason):
        decode_envelope(data)


def test_oversize() -> None:
    data = _with(payload=base64.b64encode(b"x" * 2000).decode())
    with pytest.raises(MalformedEnvelope, match="over the limit of 1000"):
        decode_envelope(data, max_bytes=1000)
    assert decode_envelope(data).payload == b"x" * 2000


def test_sign_envelope_needs_signers() -> None:
    with pytest.raises(MalformedEnvelope):
        sign_envelope(dsse.PAYLOAD_QUERY, b"x", [])


def test_payload_type_constants() -> None:
    assert dsse.PAYLOAD_TYPES == {
        "application/vnd.siogw.query+protobuf",
        "application/vnd.siogw.result+protobuf",
        "application/vnd.siogw.consent+json",
        "application/vnd.siogw.login-challenge",
        "application/vnd.siogw.admin+protobuf",
        "application/vnd.siogw.refusal+json",
        "application/vnd.siogw.list-publication+protobuf",
    }


def test_round_trip_through_generated_protobuf() -> None:
    common_pb2 = pytest.importorskip("siogw_api.v1.common_pb2")
    from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed

    s = SoftwareSigner(_ed.Ed25519PrivateKey.generate())
    second = _ec()
    env = sign_envelope(dsse.PAYLOAD_QUERY, b"\x00\x01binary", [s, second])
    fields = env.to_proto_fields()
    msg = common_pb2.Envelope(
        payload_type=fields["payload_type"],
        payload=fields["payload"],
        signatures=[common_pb2.Signature(**sig) for sig in fields["signatures"]],
    )
    wire = msg.SerializeToString()
    back_msg = common_pb2.Envelope.FromString(wire)
    back = Envelope.from_proto_fields(back_msg.payload_type, back_msg.payload,
                                      back_msg.signatures)
    assert back == env
    verify_envelope(back, PublicKeyVerifier([s.public_key, second.public_key]))
