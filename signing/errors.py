"""Errors of the signing and trust layer (sub-roots from :mod:`siogw_api.errors`)."""

from __future__ import annotations

import datetime as _dt

from siogw_api.errors import AuditError, ConfigError, SigningError, TrustError
from siogw_api.timeutil import astana_iso


# --- producing signatures -------------------------------------------------------------
class KeyURIError(ConfigError):
    """A key URI is malformed or names an unknown scheme."""


class PinError(ConfigError):
    """A PIN source is missing, unreadable or refused by the token."""


class TokenNotFound(SigningError):
    """No token with the given label is present."""


class KeyNotFound(SigningError):
    """The token has no key with the given label/id."""


class TokenError(SigningError):
    """The PKCS#11 module failed (wraps ``pkcs11.PKCS11Error``)."""


class UnsupportedAlgorithm(SigningError):
    """The key type or algorithm is not one sio-gateway signs with."""


# --- verifying signatures, envelopes, certificates -------------------------------------
class MalformedEnvelope(TrustError):
    """The envelope is not a well-formed DSSE envelope."""

    reason_code = "MALFORMED_ENVELOPE"


class BadSignature(TrustError):
    """The signature does not verify with the key it names."""

    reason_code = "BAD_SIGNATURE"


class UnknownSigner(TrustError):
    """No trusted certificate or key matches the signature's key id."""

    reason_code = "UNKNOWN_SIGNER"


class UntrustedChain(TrustError):
    """The certificate does not chain to a configured trust anchor."""

    reason_code = "UNTRUSTED_CHAIN"


class CertificateExpired(TrustError):
    """The certificate is outside its validity period at the time of checking."""

    reason_code = "EXPIRED"


class KeyUsageRefused(TrustError):
    """The certificate's key usage does not allow digital signatures."""

    reason_code = "KEY_USAGE"


class CertificateRevoked(TrustError):
    """The certificate has been revoked (CRL or the gateway's own store)."""

    reason_code = "REVOKED"

    def __init__(
        self,
        message: str,
        *,
        revoked_at: _dt.datetime,
        revocation_reason: str,
        serial: int,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.revoked_at = revoked_at
        self.revocation_reason = revocation_reason
        self.serial = serial

    def diagnostics(self) -> str:
        return (
            f"{self.message}: revoked at {astana_iso(self.revoked_at)} "
            f"(reason: {self.revocation_reason})"
        )

    def public_message(self) -> str:
        return self.diagnostics()  # our own texts only: the time and the CRL's reason


class StaleCRL(TrustError):
    """A CRL is past its nextUpdate or its signature does not verify."""

    reason_code = "STALE_CRL"


class CRLUnavailable(StaleCRL):
    """The CRL of a certificate's issuer, fetched from its distribution point, is past its
    nextUpdate plus the configured grace (or was never fetched) and no fresh one could
    be fetched: the gateway cannot check revocation, so it refuses that issuer's
    certificates until a fresh CRL arrives (fail closed, ADR 0002 section 11)."""

    reason_code = "CRL_UNAVAILABLE"


# --- verification of transparency-log material (signing.merkle, signing.note) ---------
# Their origin is audit verification: they derive from AuditError (exit code, status).
class VerificationError(AuditError):
    """Something in the archive, a proof or a checkpoint does not verify.

    ``where`` names the file (segment or seal), ``seq`` the sequence number when one is
    known, ``what`` the failed check. :meth:`place` is the one line the CLI prints.
    """

    def __init__(
        self, what: str, *, where: str | None = None, seq: int | None = None
    ) -> None:
        self.what = what
        self.where = where
        self.seq = seq
        super().__init__(self.place())

    def place(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.what}" if prefix else self.what

    def diagnostics(self) -> str:
        return self.place()


class ProofError(VerificationError):
    """A Merkle proof is malformed or its preconditions do not hold."""


class RootMismatch(ProofError):
    """A proof or a set of leaves computes a different root from the expected one."""

    def __init__(
        self,
        computed: bytes,
        expected: bytes,
        *,
        what: str = "root mismatch",
        where: str | None = None,
        seq: int | None = None,
    ) -> None:
        self.computed = computed
        self.expected = expected
        super().__init__(
            f"{what} (computed {computed.hex()[:16]}…, expected {expected.hex()[:16]}…)",
            where=where,
            seq=seq,
        )


class CheckpointError(VerificationError):
    """A checkpoint (signed note) is malformed or its signature does not verify."""
