"""Signing with a private key on a PKCS#11 token: :class:`Pkcs11Signer`.

The token's session pool, login and self-healing are :mod:`signing.pkcs11_session`; this
module finds the key through a pooled session (handles cached per session), reads its
public half and certificate, and signs: ECDSA P-256 is hashed here and signed with
``CKM_ECDSA`` (SoftHSM has no hashed ECDSA mechanism), its raw r||s re-encoded as DER;
RSA-PSS, RSA PKCS#1 v1.5 and Ed25519 are signed by the token's hashed mechanisms.

Concurrency: every public method is safe to call from many threads. PKCS#11 calls block,
so asyncio callers should use ``await asyncio.to_thread(signer.sign, payload)`` (or
:meth:`Pkcs11Signer.sign_async`), never call :meth:`Pkcs11Signer.sign` on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11x

from signing.api import Algorithm, PublicKey, Signer, key_id_for
from signing.certfile import CertificateSpec, load_certificate
from signing.errors import KeyURIError, PinError, UnsupportedAlgorithm
from signing.modules import find_pkcs11_module
from signing.pins import PinSpec, as_pin_source
from signing.pkcs11_keys import find_objects, key_attrs, one_object, public_key_from_object
from signing.pkcs11_session import (
    PooledSession,
    TokenSession,
    check_pool_size,
    registry_pid,
    shared_session,
)
from signing.software import default_algorithm
from signing.uri import Pkcs11URI, parse_pkcs11_uri
from signing.verify import PSS_SALT_LENGTH, check_key_algorithm, coerce_algorithm

_PSS_PARAM = (Mechanism.SHA256, pkcs11.MGF.SHA256, PSS_SALT_LENGTH)
#: DER DigestInfo prefix of a SHA-256 digest (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")

#: Per algorithm, the mechanisms that sign it, preferred first. A token without the
#: hashed mechanism gets the digest signed by the bare one (ADR 0001, "Implementations":
#: openCryptoki 3.8 has no SHA256-RSA-PKCS; SoftHSM no hashed ECDSA).
_MECHANISMS: dict[Algorithm, tuple[Mechanism, ...]] = {
    Algorithm.ECDSA_P256_SHA256: (Mechanism.ECDSA,),
    Algorithm.RSA_PSS_SHA256: (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.RSA_PKCS_PSS),
    Algorithm.RSA_PKCS1_SHA256: (Mechanism.SHA256_RSA_PKCS, Mechanism.RSA_PKCS),
    Algorithm.ED25519: (Mechanism.EDDSA,),
}


def _token_mechanisms(session: Any) -> frozenset[Any]:
    return frozenset(session.token.slot.get_mechanisms())


def _sign_mechanism(alg: Algorithm, mechanisms: frozenset[Any], where: str) -> Mechanism:
    """The mechanism that signs ``alg`` on a token offering ``mechanisms``."""
    for mechanism in _MECHANISMS[alg]:
        if mechanism in mechanisms:
            return mechanism
    offered = ", ".join(m.name for m in _MECHANISMS[alg])
    raise UnsupportedAlgorithm(
        f"{where}: the token cannot sign {alg.value} (it has none of {offered})"
    )


class Pkcs11Signer(Signer):
    """Signs with a private key on a PKCS#11 token.

    ``uri`` is an RFC 7512 URI (string or parsed) naming the token and the key by
    ``object`` (label) and/or ``id``. The PIN comes from ``pin_source`` or the URI's
    ``pin-source``. ``algorithm`` picks RSA padding (default RSA-PSS-SHA256).
    ``certificate``: a certificate, a PEM/DER path, or ``None`` to look for a
    CKO_CERTIFICATE with the key's CKA_ID on the token.

    ``module_path``: the PKCS#11 module (else the URI's ``module-path``, else
    :func:`signing.modules.find_pkcs11_module`). ``sessions`` bounds the token's session
    pool in this process (>= 1, else :class:`~siogw_api.errors.ConfigError`; default the
    CPU count).

    Construction opens (or joins) the token's shared session and reads the public key,
    so a missing token, key or wrong PIN fails here.
    """

    def __init__(
        self,
        uri: str | Pkcs11URI,
        *,
        pin_source: PinSpec | None = None,
        certificate: CertificateSpec = None,
        algorithm: Algorithm | str | None = None,
        module_path: str | None = None,
        sessions: int | None = None,
    ) -> None:
        self._sessions = check_pool_size(sessions) if sessions is not None else None
        parsed = parse_pkcs11_uri(uri) if isinstance(uri, str) else uri
        if parsed.token is None:
            raise KeyURIError("a pkcs11: signing URI must name the token (token=...)")
        if parsed.object is None and parsed.id is None:
            raise KeyURIError("a pkcs11: signing URI must name the key (object= and/or id=)")
        if parsed.type not in (None, "private"):
            raise KeyURIError(f"a signing key URI must have type=private, not {parsed.type}")
        spec = pin_source if pin_source is not None else parsed.pin_source
        if spec is None:
            raise PinError(f"{parsed.describe()}: no PIN source (pin-source= or pin_source)")
        self._pin_spec: PinSpec = as_pin_source(spec)
        self._uri = parsed
        self._module_path = str(find_pkcs11_module(module_path or parsed.module_path))
        self._shared_cache: tuple[int, TokenSession] | None = None
        self._label = parsed.object
        self._id = parsed.id
        self._key_name = parsed.object if parsed.object is not None else parsed.id.hex()  # type: ignore[union-attr]
        self._handle_key = ("private", self._label, self._id)
        shared = self._shared()
        shared.check_pin(self._pin_spec)
        public_key, key_id = shared.run_pooled(
            self._load_public, pin_spec=self._pin_spec, what="read public key", key=self._key_name
        )
        self._public: PublicKey = public_key
        self._ck_id: bytes = key_id
        if algorithm is None:
            self._algorithm = default_algorithm(public_key)
        else:
            self._algorithm = coerce_algorithm(algorithm)
        check_key_algorithm(public_key, self._algorithm)
        mechanisms = shared.run(
            _token_mechanisms, pin_spec=self._pin_spec, what="list mechanisms",
            key=self._key_name,
        )
        self._mechanism = _sign_mechanism(self._algorithm, mechanisms, parsed.describe())
        self._key_id = key_id_for(public_key)
        self._certificate: x509.Certificate | None = None
        self._certificate_loaded = False
        if certificate is not None:
            self._certificate = load_certificate(certificate)
            self._certificate_loaded = True
            self._check_certificate(self._certificate)

    @classmethod
    def from_key_uri(
        cls,
        uri: str,
        *,
        pin_source: PinSpec | None,
        certificate: CertificateSpec,
        algorithm: Algorithm | None,
        sessions: int | None,
    ) -> Pkcs11Signer:
        """The ``pkcs11:`` backend of :func:`signing.load_signer`."""
        return cls(uri, pin_source=pin_source, certificate=certificate, algorithm=algorithm,
                   sessions=sessions)

    def _shared(self) -> TokenSession:
        # Remembered per process: after fork() the registry is new.
        cached = self._shared_cache
        if cached is not None and cached[0] == registry_pid() == os.getpid():
            return cached[1]
        assert self._uri.token is not None
        shared = shared_session(self._uri.token, self._module_path)
        if self._sessions is not None and shared.bound != self._sessions:
            shared.set_bound(self._sessions)
        self._shared_cache = (os.getpid(), shared)
        return shared

    def _private(self, entry: PooledSession) -> Any:
        """The private key object, through ``entry``'s handle cache."""
        handles = entry.handles
        key = handles.get(self._handle_key)
        if key is None:
            objs = find_objects(entry.session,
                         key_attrs(ObjectClass.PRIVATE_KEY, self._label, self._id))
            key = handles[self._handle_key] = one_object(objs, f"private key {self._key_name!r}")
        return key

    def _load_public(self, entry: PooledSession) -> tuple[PublicKey, bytes]:
        session = entry.session
        private = self._private(entry)
        key_id: bytes = private[Attribute.ID] or b""
        candidates: list[Any] = []
        if key_id:
            candidates = find_objects(session, key_attrs(ObjectClass.PUBLIC_KEY, None, key_id))
        if not candidates and self._label is not None:
            candidates = find_objects(session, key_attrs(ObjectClass.PUBLIC_KEY, self._label, None))
        if len(candidates) != 1:
            if private[Attribute.KEY_TYPE] == KeyType.RSA:
                # An RSA private key carries its modulus and public exponent.
                return public_key_from_object(private), key_id
            raise p11x.NoSuchKey("no unique public key object next to the private key")
        return public_key_from_object(candidates[0]), key_id

    def _check_certificate(self, cert: x509.Certificate | None) -> None:
        if cert is None:
            return
        cert_key = cert.public_key()
        if not isinstance(
            cert_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ) or key_id_for(cert_key) != self._key_id:
            raise UnsupportedAlgorithm(
                f"{self._uri.describe()}: the certificate does not belong to this key"
            )

    @property
    def uri(self) -> Pkcs11URI:
        return self._uri

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def ck_id(self) -> bytes:
        """The key's CKA_ID on the token."""
        return self._ck_id

    @property
    def certificate(self) -> x509.Certificate | None:
        if not self._certificate_loaded:
            cert = self._shared().run(
                self._load_certificate, pin_spec=self._pin_spec, what="read certificate",
                key=self._key_name,
            )
            self._check_certificate(cert)
            self._certificate = cert
            self._certificate_loaded = True
        return self._certificate

    def _load_certificate(self, session: Any) -> x509.Certificate | None:
        if not self._ck_id:
            return None
        objs = find_objects(
            session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: self._ck_id}
        )
        if not objs:
            return None
        return x509.load_der_x509_certificate(bytes(objs[0][Attribute.VALUE]))

    def sign(self, payload: bytes) -> bytes:
        """Sign ``payload``; ECDSA comes out DER-encoded. Thread-safe.

        Borrows one session of the token's pool for the one C_SignInit/C_Sign pair.
        """
        mechanism = self._mechanism
        if mechanism is Mechanism.ECDSA:
            # SoftHSM has no hashed ECDSA mechanism: hash here, sign the digest.
            digest = hashlib.sha256(payload).digest()

            def op(entry: PooledSession) -> bytes:
                raw = self._private(entry).sign(digest, mechanism=Mechanism.ECDSA)
                half = len(raw) // 2
                return encode_dss_signature(
                    int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
                )
        else:
            kwargs: dict[str, Any] = {"mechanism": mechanism}
            if mechanism is Mechanism.SHA256_RSA_PKCS_PSS:
                data = bytes(payload)
                kwargs["mechanism_param"] = _PSS_PARAM
            elif mechanism is Mechanism.RSA_PKCS_PSS:
                # No hashed PSS on the token: the digest is signed (same signature).
                data = hashlib.sha256(payload).digest()
                kwargs["mechanism_param"] = _PSS_PARAM
            elif mechanism is Mechanism.RSA_PKCS:
                # No SHA256-RSA-PKCS (openCryptoki 3.8): sign DigestInfo(SHA-256) raw.
                data = _SHA256_DIGEST_INFO + hashlib.sha256(payload).digest()
            else:  # SHA256_RSA_PKCS, EDDSA
                data = bytes(payload)

            def op(entry: PooledSession) -> bytes:
                return bytes(self._private(entry).sign(data, **kwargs))

        return self._shared().run_pooled(
            op, pin_spec=self._pin_spec, what="sign", key=self._key_name
        )

    async def sign_async(self, payload: bytes) -> bytes:
        """:meth:`sign` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.sign, payload)

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self._uri.describe()}, {self._algorithm.value})"
