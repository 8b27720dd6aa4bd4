"""Regenerate the DSSE test vectors: ``python tests/vectors/dsse/generate.py``.

Writes ``vectors.json`` beside this script. Keys are the Ed25519 keys of RFC 8032 §7.1
test vectors 1 and 2 (deterministic signatures, so the file is reproducible); key ids
are sio-gateway key ids (hex SHA-256 of the SPKI). Each vector holds an envelope in
DSSE JSON, the trusted keys, a threshold, the accepted payload types, the expected PAE
(hex, when the envelope decodes) and the expected outcome: ``accept`` or the name of the
``signing.errors`` class a correct verifier raises. Single-bit flips of the signature,
payload and payload type of the first vector are appended as ``reject`` cases.
``tests/signing/test_dsse_vectors.py`` checks that this script reproduces the file byte
for byte and that every vector has its expected outcome.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from signing.api import key_id_for  # noqa: E402
from signing.dsse import PAYLOAD_CONSENT, PAYLOAD_QUERY, pae  # noqa: E402

# RFC 8032 section 7.1, TEST 1 and TEST 2 secret keys (public test data).
SEEDS = {
    "A": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "B": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
}
BODY = b'{"resource":1,"iin":"880101300123","basis":"financial monitoring"}'


def key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEEDS[name]))


def kid(name: str) -> str:
    return key_id_for(key(name).public_key())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope(ptype: str, body: bytes, signers: list[str], *, keyids: bool = True,
             sign_type: str | None = None, urlsafe: bool = False) -> dict[str, Any]:
    message = pae(sign_type if sign_type is not None else ptype, body)
    enc = (lambda d: base64.urlsafe_b64encode(d).decode().rstrip("=")) if urlsafe else b64
    sigs = []
    for name in signers:
        item = {"sig": enc(key(name).sign(message))}
        if keyids:
            item["keyid"] = kid(name)
        sigs.append(item)
    return {"payload": enc(body), "payloadType": ptype, "signatures": sigs}


def vector(vid: str, description: str, env: dict[str, Any], expect: str, *,
           trusted: tuple[str, ...] = ("A",), threshold: int = 1,
           types: tuple[str, ...] = (PAYLOAD_QUERY,), pae_of: tuple[str, bytes] | None = None,
           ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": vid,
        "description": description,
        "envelope": env,
        "trustedKeys": list(trusted),
        "threshold": threshold,
        "supportedPayloadTypes": list(types),
    }
    if pae_of is not None:
        out["pae"] = pae(*pae_of).hex()
    out["expect"] = expect
    return out


def flip_b64(text: str, bit: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    return b64(bytes(raw))


def build() -> dict[str, Any]:
    q = PAYLOAD_QUERY
    odd = bytes([0xFB, 0xFF, 0xBF, 0x3E, 0x3F])  # base64 alphabet characters + / - _
    vectors = [
        vector("single-signature", "One trusted Ed25519 signature over the PAE.",
               envelope(q, BODY, ["A"]), "accept", pae_of=(q, BODY)),
        vector("url-safe-base64", "URL-safe, unpadded base64 must be accepted.",
               envelope(q, odd, ["A"], urlsafe=True), "accept", pae_of=(q, odd)),
        vector("payload-type-swapped", "Signed as a consent, presented as a query.",
               envelope(q, BODY, ["A"], sign_type=PAYLOAD_CONSENT), "BadSignature",
               types=(q, PAYLOAD_CONSENT), pae_of=(q, BODY)),
        vector("unsupported-payload-type", "A valid signature, but a type the verifier refuses.",
               envelope(PAYLOAD_CONSENT, BODY, ["A"]), "MalformedEnvelope",
               pae_of=(PAYLOAD_CONSENT, BODY)),
        vector("non-ascii-payload-type", "LEN(type) counts UTF-8 bytes, not characters.",
               envelope("application/vnd.siogw.тест", BODY, ["A"]), "accept",
               types=("application/vnd.siogw.тест",),
               pae_of=("application/vnd.siogw.тест", BODY)),
        vector("empty-payload", "An empty body is signed as '... 0 ' with a trailing space.",
               envelope(q, b"", ["A"]), "accept", pae_of=(q, b"")),
        vector("empty-payload-type", "An empty payloadType is malformed.",
               envelope("", BODY, ["A"]), "MalformedEnvelope"),
        vector("untrusted-key", "Signed by B, only A is trusted.",
               envelope(q, BODY, ["B"]), "UnknownSigner", pae_of=(q, BODY)),
        vector("threshold-two-distinct-keys", "A and B meet a threshold of two.",
               envelope(q, BODY, ["A", "B"]), "accept", trusted=("A", "B"), threshold=2,
               pae_of=(q, BODY)),
        vector("threshold-two-one-key-twice", "A twice is one distinct key.",
               envelope(q, BODY, ["A", "A"]), "BadSignature", trusted=("A", "B"),
               threshold=2, pae_of=(q, BODY)),
        vector("threshold-two-without-keyids", "keyid is optional: signers found by trial.",
               envelope(q, BODY, ["A", "B"], keyids=False), "accept", trusted=("A", "B"),
               threshold=2, pae_of=(q, BODY)),
        vector("no-signatures", "An envelope without signatures is malformed.",
               {"payload": b64(BODY), "payloadType": q, "signatures": []}, "MalformedEnvelope"),
    ]
    base = envelope(q, BODY, ["A"])
    for bit in (0, 7, 100, 255, 511):
        env = json.loads(json.dumps(base))
        env["signatures"][0]["sig"] = flip_b64(env["signatures"][0]["sig"], bit)
        vectors.append(vector(f"flip-sig-bit-{bit}", "One bit of the signature flipped.",
                              env, "BadSignature"))
    for bit in (0, 9, 8 * len(BODY) - 1):
        env = json.loads(json.dumps(base))
        env["payload"] = flip_b64(env["payload"], bit)
        vectors.append(vector(f"flip-payload-bit-{bit}", "One bit of the payload flipped.",
                              env, "BadSignature"))
    for pos in (0, len(q) - 1):
        env = json.loads(json.dumps(base))
        ch = env["payloadType"][pos]
        env["payloadType"] = q[:pos] + chr(ord(ch) ^ 1) + q[pos + 1 :]
        vectors.append(vector(f"flip-payload-type-char-{pos}",
                              "One bit of the payloadType flipped (type allowed).", env,
                              "BadSignature", types=(env["payloadType"],)))
    return {
        "description": "sio-gateway DSSE v1 vectors; see generate.py",
        "keys": {
            name: {
                "algorithm": "ed25519",
                "seed": SEEDS[name],
                "public": key(name).public_key().public_bytes_raw().hex(),
                "keyid": kid(name),
            }
            for name in SEEDS
        },
        "vectors": vectors,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    (HERE / "vectors.json").write_text(render(), encoding="utf-8")
