"""PKCS#10 certificate requests signed through any :class:`~signing.api.Signer`.

``cryptography`` can only sign a CSR with a private key object it holds, which a PKCS#11
token never hands out. So the ``CertificationRequestInfo`` is built with ``asn1crypto``,
its DER is signed by the Signer (token or software), and the result is assembled by hand.
The signature-algorithm identifiers shared with :mod:`signing.ca` live here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from asn1crypto import algos as a_algos
from asn1crypto import csr as a_csr
from asn1crypto import keys as a_keys
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing.api import Algorithm, PublicKey, Signer
from signing.errors import BadSignature, UnsupportedAlgorithm
from siogw_api.errors import InputError

#: RSASSA-PSS salt length written into PSS AlgorithmIdentifiers (= SHA-256 digest size).
PSS_SALT_LENGTH = 32


def signature_algorithm(algorithm: Algorithm) -> a_algos.SignedDigestAlgorithm:
    """The X.509 AlgorithmIdentifier for signatures made with ``algorithm``."""
    if algorithm is Algorithm.ECDSA_P256_SHA256:
        return a_algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    if algorithm is Algorithm.RSA_PKCS1_SHA256:
        return a_algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": None})
    if algorithm is Algorithm.ED25519:
        return a_algos.SignedDigestAlgorithm({"algorithm": "ed25519"})
    if algorithm is Algorithm.RSA_PSS_SHA256:
        params = a_algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": "sha256"},
                "mask_gen_algorithm": {
                    "algorithm": "mgf1",
                    "parameters": {"algorithm": "sha256"},
                },
                "salt_length": PSS_SALT_LENGTH,
                "trailer_field": "trailer_field_bc",
            }
        )
        return a_algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    raise UnsupportedAlgorithm(f"no X.509 signature algorithm for {algorithm!r}")


def spki(public_key: PublicKey) -> a_keys.PublicKeyInfo:
    """``public_key`` as an asn1crypto SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return a_keys.PublicKeyInfo.load(der)


def to_asn1_name(name: x509.Name) -> a_x509.Name:
    """A ``cryptography`` Name as an asn1crypto Name (byte-identical DER)."""
    return a_x509.Name.load(name.public_bytes())


def parse_name(text: str) -> x509.Name:
    """Parse an RFC 4514 distinguished name (``CN=Alice,O=AFM,C=KZ``); InputError if bad."""
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise InputError(f"not an RFC 4514 distinguished name: {text!r}", detail=str(exc)) from exc
    if not list(name):
        raise InputError("the distinguished name is empty")
    return name


def build_csr(
    signer: Signer,
    subject: x509.Name | str,
    *,
    dns_names: Sequence[str] = (),
    emails: Sequence[str] = (),
) -> bytes:
    """A DER PKCS#10 request for ``signer``'s key, signed by ``signer``.

    ``dns_names``/``emails`` become a subjectAltName in the extensionRequest attribute.
    """
    name = parse_name(subject) if isinstance(subject, str) else subject
    attributes = []
    general_names = [a_x509.GeneralName({"dns_name": d}) for d in dns_names]
    general_names += [a_x509.GeneralName({"rfc822_name": e}) for e in emails]
    if general_names:
        ext = a_x509.Extension(
            {"extn_id": "subject_alt_name", "critical": False, "extn_value": general_names}
        )
        attributes.append(
            a_csr.CRIAttribute(
                {"type": "extension_request", "values": [a_x509.Extensions([ext])]}
            )
        )
    info = a_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": to_asn1_name(name),
            "subject_pk_info": spki(signer.public_key),
            "attributes": attributes,
        }
    )
    sig = signer.sign(info.dump())
    req = a_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": signature_algorithm(signer.algorithm),
            "signature": sig,
        }
    )
    return bytes(req.dump())


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR and check its self-signature.

    :class:`InputError` if unparsable, :class:`BadSignature` if the proof of possession
    does not verify.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            req = x509.load_pem_x509_csr(data)
        else:
            req = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise InputError("not a PEM or DER PKCS#10 request", detail=str(exc)) from exc
    try:
        ok = req.is_signature_valid
    except (ValueError, TypeError) as exc:
        raise BadSignature("the request's signature cannot be checked", detail=str(exc)) from exc
    if not ok:
        raise BadSignature("the request's signature does not verify with its public key")
    return req


def csr_pem(der: bytes) -> bytes:
    """PEM armour for a DER CSR."""
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
