"""What server and client share on the wire beyond the generated messages.

* DSSE envelopes to and from ``siogw.v1.Envelope`` (:func:`envelope_to_proto`,
  :func:`envelope_from_proto`); a malformed one is a
  :class:`~signing.errors.MalformedEnvelope`;
* the session token in call metadata (``authorization: Bearer <token>``):
  :func:`bearer_metadata` builds it, :func:`bearer_from_metadata` reads it.

No I/O; imports only the API package and :mod:`signing.dsse`.
"""

from __future__ import annotations

from collections.abc import Iterable

from signing import dsse
from siogw_api.v1 import common_pb2

#: The call-metadata key of the session token.
AUTH_METADATA_KEY = "authorization"


def envelope_to_proto(envelope: dsse.Envelope) -> common_pb2.Envelope:
    """The wire message for a DSSE envelope."""
    fields = envelope.to_proto_fields()
    return common_pb2.Envelope(
        payload_type=fields["payload_type"],
        payload=fields["payload"],
        signatures=[common_pb2.Signature(**s) for s in fields["signatures"]],
    )


def envelope_from_proto(msg: common_pb2.Envelope) -> dsse.Envelope:
    """A checked DSSE envelope from the wire (:class:`~signing.errors.MalformedEnvelope`)."""
    return dsse.Envelope.from_proto_fields(
        msg.payload_type, bytes(msg.payload), list(msg.signatures)
    )


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries the session ``token``."""
    return ((AUTH_METADATA_KEY, f"Bearer {token}"),)


def bearer_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The session token in call metadata, or None when there is none."""
    for key, value in metadata or ():
        if key.lower() == AUTH_METADATA_KEY and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
