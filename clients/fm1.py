"""FM-1 reporting on the client side (issue 16): sign a message, check the gateway's
receipt offline, and write what an auditor needs to check it again.

Pure functions over protobuf messages and bytes (no channel): the plans of
:mod:`clients._core` and the ``siogw client fm1`` command use them.

:func:`verify_fm1_receipt` checks, with nothing but the pinned gateway certificate:

1. the acknowledgement is signed by the pinned gateway key
   (``application/vnd.siogw.fm1-receipt+json``) and names the message that was sent (its
   id, provider and the SHA-256 of the signed envelope's bytes);
2. the checkpoint is signed by the audit key the gateway key endorses, and the receipt's
   record is in its tree (the inclusion proof), at the seq and leaf the
   acknowledgement names.

:func:`proof_bundle` is the same receipt as a bundle for ``siogw audit prove --bundle F
--keys AUDIT-KEY.pem``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from google.protobuf import json_format

from clients import _common as c
from clients.errors import ResultVerificationError
from signing import dsse
from signing.api import Signer
from signing.wire import envelope_from_proto, envelope_to_proto
from siogw_api.errors import TrustError
from siogw_api.v1 import reporting_pb2

#: The acknowledgement's ``type``.
RECEIPT_TYPE = "siogw.fm1.receipt/v1"


def fm1_payload(message: Mapping[str, Any]) -> bytes:
    """The bytes signed for an FM-1 message (UTF-8 JSON, keys sorted)."""
    return json.dumps(message, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def sign_fm1(message: Mapping[str, Any], signer: Signer) -> reporting_pb2.SubmitFm1Request:
    """A ``SubmitFm1Request`` with the message signed on the officer's token."""
    envelope = dsse.sign_envelope(dsse.PAYLOAD_FM1, fm1_payload(message), signer)
    return reporting_pb2.SubmitFm1Request(envelope=envelope_to_proto(envelope))


def envelope_digest(request: reporting_pb2.SubmitFm1Request) -> str:
    """SHA-256 (hex) of the signed envelope as the gateway keeps it."""
    return hashlib.sha256(request.envelope.SerializeToString(deterministic=True)).hexdigest()


@dataclass(frozen=True)
class Fm1ReceiptInfo:
    """A verified FM-1 receipt."""

    acknowledgement: dict[str, Any]
    receipt: c.Receipt
    tree_size: int
    origin: str
    late: bool
    lateness_seconds: int
    deadline_at: str
    audit_key_der: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"acknowledgement": self.acknowledgement, "receipt": self.receipt.as_dict(),
                "checkpoint_tree_size": self.tree_size, "verified": True}


def verify_fm1_receipt(
    response: reporting_pb2.Fm1Receipt,
    verifier: c.PinnedGatewayVerifier,
    *,
    sent: reporting_pb2.SubmitFm1Request | None = None,
) -> Fm1ReceiptInfo:
    """Check the gateway's answer to an FM-1 submission offline (module docstring).

    ``sent``: the request that was sent; its message id and envelope digest must be the
    acknowledgement's. Raises :class:`~clients.errors.ResultVerificationError` (or an
    audit proof error) when anything does not verify.
    """
    if not response.HasField("acknowledgement"):
        raise ResultVerificationError("the answer carries no signed acknowledgement")
    try:
        verified = dsse.verify_envelope(envelope_from_proto(response.acknowledgement),
                                        verifier, payload_types=[dsse.PAYLOAD_FM1_RECEIPT])
    except TrustError as exc:
        raise ResultVerificationError("the acknowledgement's signature did not verify",
                                      detail=exc.diagnostics()) from exc
    try:
        ack = json.loads(verified.payload)
        audit = ack["audit"]
        seq, leaf, size = int(audit["seq"]), bytes.fromhex(audit["leaf_hash"]), \
            int(audit["tree_size"])
        origin = str(audit["origin"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultVerificationError("the acknowledgement is not an FM-1 receipt") from exc
    if ack.get("type") != RECEIPT_TYPE:
        raise ResultVerificationError("the acknowledgement is not an FM-1 receipt")
    status = response.status
    if (ack.get("message_id"), ack.get("provider_bin")) != (status.message_id,
                                                            status.provider_bin):
        raise ResultVerificationError("the acknowledgement names another message")
    if sent is not None:
        payload = json.loads(bytes(sent.envelope.payload))
        if ack["message_id"] != payload.get("message_id"):
            raise ResultVerificationError("the acknowledgement is for another message id")
        if ack.get("envelope_sha256") != envelope_digest(sent):
            raise ResultVerificationError("the acknowledgement is for another signed message")
    receipt = c.Receipt(seq=seq, leaf_hash=leaf, tree_size=size)
    if (status.receipt.seq, bytes(status.receipt.leaf_hash)) != (seq, leaf):
        raise ResultVerificationError("the receipt differs from the acknowledged one")
    if not response.HasField("checkpoint") or not response.HasField("inclusion_proof"):
        raise ResultVerificationError("the answer carries no checkpoint and inclusion proof")
    cp = c.checkpoint_from_proto(response.checkpoint)
    proof = c.proof_from_proto(response.inclusion_proof)
    tree_size = c.verify_receipt(receipt, proof, cp, verifier.public_keys, origin=origin)
    assert cp.audit_key is not None
    return Fm1ReceiptInfo(
        acknowledgement=ack, receipt=receipt, tree_size=tree_size, origin=origin,
        late=bool(ack.get("late")), lateness_seconds=int(ack.get("lateness_seconds", 0)),
        deadline_at=str(ack.get("deadline_at", "")), audit_key_der=cp.audit_key.public_key_der,
    )


def proof_bundle(response: reporting_pb2.Fm1Receipt, origin: str) -> dict[str, Any]:
    """``siogw audit prove --bundle`` input for the receipt of ``response``."""
    r, p = response.status.receipt, response.inclusion_proof
    return {
        "checkpoint": bytes(response.checkpoint.signed_checkpoint).decode("utf-8"),
        "receipt": {"origin": origin, "seq": r.seq, "leaf_hash": bytes(r.leaf_hash).hex()},
        "proof": {"type": "inclusion", "leaf_index": p.leaf_index, "tree_size": p.tree_size,
                  "hashes": [bytes(h).hex() for h in p.hashes]},
    }


def audit_key_pem(info: Fm1ReceiptInfo) -> bytes:
    """The endorsed audit key as PEM (``--keys`` of ``siogw audit prove``)."""
    key = serialization.load_der_public_key(info.audit_key_der)
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def acknowledgement_json(response: reporting_pb2.Fm1Receipt) -> bytes:
    """The signed acknowledgement as a DSSE JSON envelope (``siogw verify`` input)."""
    return envelope_from_proto(response.acknowledgement).to_json()


def status_dict(status: reporting_pb2.Fm1Status) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(status, preserving_proto_field_name=True)
    return out


__all__ = [
    "RECEIPT_TYPE",
    "Fm1ReceiptInfo",
    "acknowledgement_json",
    "audit_key_pem",
    "envelope_digest",
    "fm1_payload",
    "proof_bundle",
    "sign_fm1",
    "status_dict",
    "verify_fm1_receipt",
]
