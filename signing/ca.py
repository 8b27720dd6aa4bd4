"""A small file-based certification authority: the test stand-in for the national CA.

In production user certificates come from the national certifying centre (NCA); the
gateway only *verifies* them against the NCA's anchors and CRLs. This CA exists so that
tests, the demo and a closed test bench have real certificates, CRLs and revocations.
Its keys may be software keys (a PEM file in the CA directory, mode 0600, unencrypted:
acceptable for a test CA only) or any key URI that :func:`signing.load_signer` can load
(a SoftHSM token key, for instance).

Certificates and CRLs are built with ``asn1crypto`` and signed through a
:class:`~signing.api.Signer`, so the CA key may live on a token, which ``cryptography``'s
builders cannot use.

Directory layout::

    ca.json                 configuration: keys (file or URI), subjects, CRL number
    root.pem                the root certificate (the trust anchor to distribute)
    root-key.pem            the root key, when it is a software key
    intermediate.pem        optional issuing CA certificate (signed by the root)
    intermediate-key.pem    its key (always software)
    chain.pem               intermediate + root, the bundle verifiers need
    index.json              every certificate issued: serial, subject, profile, validity,
                            revocation
    issued/<serial>.pem     each issued certificate
    crl.pem                 the last CRL published by the issuing CA
    crl.der                 the same in DER, as a distribution point serves it
    root-crl.pem            with an intermediate: the root's CRL, published alongside
    root-crl.der            the same in DER
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import crl as a_crl
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.api import PublicKey, Signer
from signing.csr import load_csr, parse_name, signature_algorithm, spki, to_asn1_name
from signing.registry import load_signer
from signing.revocation import check_reason
from signing.software import SoftwareSigner
from signing.trust import GATEWAY_RESULT_EKU
from signing.verify import algorithms_for_key, check_key_algorithm
from siogw_api.errors import ConfigError, InputError, SiogwError, StorageError
from siogw_api.timeutil import astana_iso, ensure_utc, now_utc, parse_iso

CONFIG_FILE = "ca.json"
INDEX_FILE = "index.json"


class Profile(enum.StrEnum):
    """What an issued certificate is for."""

    USER = "user"  # agency users: digitalSignature + nonRepudiation
    SERVER = "server"  # the gateway's TLS endpoint: serverAuth EKU + SAN
    AUDIT = "audit"  # the audit sealer: digitalSignature + nonRepudiation
    #: the gateway's result key: digitalSignature + nonRepudiation + the EKU
    #: :data:`signing.trust.GATEWAY_RESULT_EKU`, so a person's certificate cannot pass
    #: for it and it cannot pass for a person's
    GATEWAY = "gateway"


class CAError(ConfigError):
    """The CA directory is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class IssuedRecord:
    """One line of the CA's index."""

    serial: int
    subject: str
    profile: str
    not_before: _dt.datetime
    not_after: _dt.datetime
    revoked_at: _dt.datetime | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": format(self.serial, "x"),
            "subject": self.subject,
            "profile": self.profile,
            "not_before": astana_iso(self.not_before),
            "not_after": astana_iso(self.not_after),
            "revoked_at": astana_iso(self.revoked_at) if self.revoked_at else None,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> IssuedRecord:
        return cls(
            serial=int(item["serial"], 16),
            subject=item["subject"],
            profile=item["profile"],
            not_before=parse_iso(item["not_before"]),
            not_after=parse_iso(item["not_after"]),
            revoked_at=parse_iso(item["revoked_at"]) if item.get("revoked_at") else None,
            reason=item.get("reason"),
        )


# --- ASN.1 building ----------------------------------------------------------------------
def _time(value: _dt.datetime) -> a_x509.Time:
    value = ensure_utc(value).replace(microsecond=0)
    if value.year < 2050:
        return a_x509.Time({"utc_time": value})
    return a_x509.Time({"general_time": value})


def _ext(name: str, value: Any, critical: bool = False) -> a_x509.Extension:
    return a_x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def _ski(public_key: PublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING."""
    return bytes(spki(public_key).sha1)


def new_serial() -> int:
    """A random positive 159-bit serial (CA/B Forum: at least 64 bits of entropy)."""
    return secrets.randbits(159) | 1


def build_certificate(
    issuer_signer: Signer,
    issuer_name: x509.Name,
    subject_name: x509.Name,
    subject_key: PublicKey,
    *,
    serial: int,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    extensions: Sequence[a_x509.Extension],
) -> x509.Certificate:
    """Assemble and sign a v3 certificate through ``issuer_signer`` (any backend)."""
    exts = [
        *extensions,
        _ext("key_identifier", _ski(subject_key)),
        _ext("authority_key_identifier", {"key_identifier": _ski(issuer_signer.public_key)}),
    ]
    alg = signature_algorithm(issuer_signer.algorithm)
    tbs = a_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": alg,
            "issuer": to_asn1_name(issuer_name),
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": to_asn1_name(subject_name),
            "subject_public_key_info": spki(subject_key),
            "extensions": exts,
        }
    )
    sig = issuer_signer.sign(tbs.dump())
    cert = a_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": alg, "signature_value": sig}
    )
    return x509.load_der_x509_certificate(cert.dump())


def ca_extensions(path_length: int | None) -> list[a_x509.Extension]:
    """basicConstraints CA:TRUE (+pathLen) and keyUsage keyCertSign+cRLSign, both critical."""
    bc: dict[str, Any] = {"ca": True}
    if path_length is not None:
        bc["path_len_constraint"] = path_length
    return [
        _ext("basic_constraints", bc, critical=True),
        _ext("key_usage", {"key_cert_sign", "crl_sign"}, critical=True),
    ]


def crl_points_extension(urls: Sequence[str]) -> a_x509.Extension:
    """cRLDistributionPoints (RFC 5280 §4.2.1.13, not critical): one point whose full
    name is ``urls`` (where the CRL covering the certificate is published over HTTP)."""
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise InputError(f"a CRL distribution point must be an http(s) URL: {url!r}")
    return _ext("crl_distribution_points", [
        {"distribution_point": {"full_name": [
            a_x509.GeneralName({"uniform_resource_identifier": url}) for url in urls]}}
    ])


def build_crl(
    issuer_signer: Signer,
    issuer_name: x509.Name,
    *,
    number: int,
    this_update: _dt.datetime,
    next_update: _dt.datetime,
    revoked: Sequence[tuple[int, _dt.datetime, str]],
) -> x509.CertificateRevocationList:
    """A v2 CRL of ``revoked`` ``(serial, revoked_at, reason)`` signed by ``issuer_signer``."""
    fields: dict[str, Any] = {
        "version": "v2",
        "signature": signature_algorithm(issuer_signer.algorithm),
        "issuer": to_asn1_name(issuer_name),
        "this_update": _time(this_update),
        "next_update": _time(next_update),
        "crl_extensions": [
            {"extn_id": "crl_number", "critical": False, "extn_value": number},
            {
                "extn_id": "authority_key_identifier",
                "critical": False,
                "extn_value": {"key_identifier": _ski(issuer_signer.public_key)},
            },
        ],
    }
    if revoked:
        fields["revoked_certificates"] = [
            {
                "user_certificate": serial,
                "revocation_date": _time(at),
                "crl_entry_extensions": [
                    {
                        "extn_id": "crl_reason",
                        "critical": False,
                        "extn_value": x509.ReasonFlags(reason).name,
                    }
                ],
            }
            for serial, at, reason in revoked
        ]
    tbs = a_crl.TbsCertList(fields)
    sig = issuer_signer.sign(tbs.dump())
    cert_list = a_crl.CertificateList(
        {
            "tbs_cert_list": tbs,
            "signature_algorithm": signature_algorithm(issuer_signer.algorithm),
            "signature": sig,
        }
    )
    return x509.load_der_x509_crl(cert_list.dump())


# --- files -------------------------------------------------------------------------------
def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Atomic write; private files are created 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}", detail=str(exc)) from exc


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _software_signer(path: Path) -> Signer:
    return SoftwareSigner.from_pem_file(path)


def _new_software_key(path: Path) -> Signer:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, private=True)
    return SoftwareSigner(key)


def _load_signer(directory: Path, spec: dict[str, Any]) -> Signer:
    kind = spec.get("kind")
    if kind == "file":
        return _software_signer(directory / str(spec["path"]))
    if kind == "uri":
        return load_signer(str(spec["uri"]))
    raise CAError(f"CA key of unknown kind {kind!r} in {directory / CONFIG_FILE}")


class CertificateAuthority:
    """A CA rooted in ``directory``. Create with :meth:`init`, reopen with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        config: dict[str, Any],
        root_signer: Signer,
        issuing_signer: Signer,
    ) -> None:
        self.directory = directory
        self._config = config
        self._root_signer = root_signer
        self._issuing_signer = issuing_signer
        inter = directory / "intermediate.pem"
        try:
            self.root_certificate = x509.load_pem_x509_certificate(
                (directory / "root.pem").read_bytes()
            )
            self.intermediate_certificate: x509.Certificate | None = (
                x509.load_pem_x509_certificate(inter.read_bytes()) if inter.exists() else None
            )
        except (OSError, ValueError) as exc:
            raise CAError(
                f"the CA certificates in {directory} are unreadable", detail=str(exc)
            ) from exc

    # -- creation -----------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        directory: str | os.PathLike[str],
        subject: x509.Name | str,
        *,
        key: Signer | None = None,
        key_uri: str | None = None,
        intermediate_subject: x509.Name | str | None = None,
        days: int = 3650,
        now: _dt.datetime | None = None,
        crl_url: str | None = None,
        root_crl_url: str | None = None,
    ) -> CertificateAuthority:
        """Create a CA: a self-signed root, and an intermediate if a subject is given.

        ``crl_url`` is where the issuing CA's CRL will be published (over HTTP): every
        certificate issued names it as its cRLDistributionPoint, and so does the root
        when it is the issuing CA. ``root_crl_url`` is where the root's own CRL is
        published (with an intermediate): the intermediate and the root name it.

        The root key is ``key`` (a Signer, e.g. a token key), the key at ``key_uri``
        (recorded in ``ca.json`` to be loaded again), or else a new software P-256 key
        written to ``root-key.pem``. ``key`` without ``key_uri`` cannot be reopened
        unless it is a software key, so it is refused for a root without an
        intermediate to issue with.
        """
        root_dir = Path(directory)
        if (root_dir / CONFIG_FILE).exists():
            raise CAError(f"{root_dir} already holds a CA")
        root_dir.mkdir(parents=True, exist_ok=True)
        now = ensure_utc(now or now_utc()).replace(microsecond=0)
        root_name = parse_name(subject) if isinstance(subject, str) else subject
        if key_uri is not None:
            root_spec: dict[str, Any] = {"kind": "uri", "uri": key_uri}
            root_signer = key if key is not None else _load_signer(root_dir, root_spec)
        elif key is not None:
            if not isinstance(key, SoftwareSigner):
                raise CAError("a non-software CA key needs its key URI so the CA can reopen it")
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write(root_dir / "root-key.pem", pem, private=True)
            root_signer = key
            root_spec = {"kind": "file", "path": "root-key.pem"}
        else:
            root_signer = _new_software_key(root_dir / "root-key.pem")
            root_spec = {"kind": "file", "path": "root-key.pem"}

        not_after = now + _dt.timedelta(days=days)
        own_url = root_crl_url or (crl_url if intermediate_subject is None else None)
        root_points = [crl_points_extension([own_url])] if own_url else []
        root = build_certificate(
            root_signer,
            root_name,
            root_name,
            root_signer.public_key,
            serial=new_serial(),
            not_before=now,
            not_after=not_after,
            extensions=[*ca_extensions(1 if intermediate_subject is not None else 0),
                        *root_points],
        )
        _write(root_dir / "root.pem", _pem(root))
        issuing_signer = root_signer
        inter_spec: dict[str, Any] | None = None
        chain = _pem(root)
        if intermediate_subject is not None:
            inter_name = (
                parse_name(intermediate_subject)
                if isinstance(intermediate_subject, str)
                else intermediate_subject
            )
            issuing_signer = _new_software_key(root_dir / "intermediate-key.pem")
            inter = build_certificate(
                root_signer,
                root_name,
                inter_name,
                issuing_signer.public_key,
                serial=new_serial(),
                not_before=now,
                not_after=not_after,
                extensions=[*ca_extensions(0),
                            *([crl_points_extension([root_crl_url])] if root_crl_url else [])],
            )
            _write(root_dir / "intermediate.pem", _pem(inter))
            chain = _pem(inter) + chain
            inter_spec = {"kind": "file", "path": "intermediate-key.pem"}
        _write(root_dir / "chain.pem", chain)
        config = {
            "version": 1,
            "root_key": root_spec,
            "intermediate_key": inter_spec,
            "crl_number": 0,
        }
        if crl_url:
            crl_points_extension([crl_url])  # checked before anything refers to it
            config["crl_url"] = crl_url
        _write(root_dir / CONFIG_FILE, json.dumps(config, indent=2).encode() + b"\n")
        _write(root_dir / INDEX_FILE, b'{"version": 1, "certificates": []}\n')
        return cls(root_dir, config, root_signer, issuing_signer)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> CertificateAuthority:
        """Reopen an existing CA directory (loads its keys)."""
        root_dir = Path(directory)
        try:
            config = json.loads((root_dir / CONFIG_FILE).read_text())
        except FileNotFoundError:
            raise CAError(f"no CA in {root_dir} (no {CONFIG_FILE}); run `siogw ca init`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise CAError(f"cannot read {root_dir / CONFIG_FILE}", detail=str(exc)) from exc
        if not isinstance(config, dict) or config.get("version") != 1:
            raise CAError(f"{root_dir / CONFIG_FILE} is not a version 1 CA configuration")
        root_signer = _load_signer(root_dir, config["root_key"])
        inter = config.get("intermediate_key")
        issuing = _load_signer(root_dir, inter) if inter else root_signer
        return cls(root_dir, config, root_signer, issuing)

    # -- properties ---------------------------------------------------------------------
    @property
    def issuing_certificate(self) -> x509.Certificate:
        """The CA certificate that signs end-entity certificates and the CRL."""
        return self.intermediate_certificate or self.root_certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Issuing CA first, root last."""
        if self.intermediate_certificate is not None:
            return (self.intermediate_certificate, self.root_certificate)
        return (self.root_certificate,)

    # -- index --------------------------------------------------------------------------
    def records(self) -> list[IssuedRecord]:
        """Every certificate issued, in issue order."""
        try:
            doc = json.loads((self.directory / INDEX_FILE).read_text())
            return [IssuedRecord.from_json(item) for item in doc["certificates"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CAError(f"cannot read {self.directory / INDEX_FILE}", detail=str(exc)) from exc

    def _save_records(self, records: list[IssuedRecord]) -> None:
        doc = {"version": 1, "certificates": [r.to_json() for r in records]}
        _write(self.directory / INDEX_FILE, json.dumps(doc, indent=2).encode() + b"\n")

    def certificate(self, serial: int) -> x509.Certificate:
        """An issued certificate by serial."""
        path = self.directory / "issued" / f"{serial:x}.pem"
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except FileNotFoundError:
            raise InputError(f"this CA issued no certificate with serial 0x{serial:x}") from None

    # -- operations ---------------------------------------------------------------------
    def issue(
        self,
        csr: bytes,
        profile: Profile | str = Profile.USER,
        days: int = 365,
        *,
        now: _dt.datetime | None = None,
        not_before: _dt.datetime | None = None,
        crl_url: str | None = None,
    ) -> x509.Certificate:
        """Issue a certificate for a PEM/DER CSR (its signature is checked first).

        The subject and key come from the CSR; its requested subjectAltName is honoured
        for server certificates (which get the CN as a DNS name when none is asked).
        The validity ends no later than the issuing CA's. ``not_before`` may be set to
        back- or forward-date the certificate (tests of expiry). ``crl_url`` (default:
        the CA's, ``init(crl_url=...)``) is put in the certificate as its
        cRLDistributionPoint.
        """
        prof = Profile(profile)
        if days < 1:
            raise InputError("a certificate must be valid for at least one day")
        req = load_csr(csr)
        now = ensure_utc(now or now_utc()).replace(microsecond=0)
        start = ensure_utc(not_before).replace(microsecond=0) if not_before else now
        end = min(start + _dt.timedelta(days=days), self.issuing_certificate.not_valid_after_utc)
        key = req.public_key()
        _check_subject_key(key)
        exts: list[a_x509.Extension] = [_ext("basic_constraints", {"ca": False}, critical=True)]
        if prof is Profile.SERVER:
            exts.append(_ext("key_usage", {"digital_signature"}, critical=True))
            exts.append(_ext("extended_key_usage", ["server_auth"]))
            exts.append(_ext("subject_alt_name", _server_names(req)))
        else:
            exts.append(_ext("key_usage", {"digital_signature", "non_repudiation"}, critical=True))
            if prof is Profile.GATEWAY:
                exts.append(_ext("extended_key_usage", [GATEWAY_RESULT_EKU.dotted_string]))
            san = _requested_san(req)
            if san:
                exts.append(_ext("subject_alt_name", san))
        point = crl_url or self._config.get("crl_url")
        if point:
            exts.append(crl_points_extension([str(point)]))
        issuer = self.issuing_certificate
        cert = build_certificate(
            self._issuing_signer,
            issuer.subject,
            req.subject,
            key,  # type: ignore[arg-type]
            serial=new_serial(),
            not_before=start,
            not_after=end,
            extensions=exts,
        )
        _write(self.directory / "issued" / f"{cert.serial_number:x}.pem", _pem(cert))
        records = self.records()
        records.append(
            IssuedRecord(
                serial=cert.serial_number,
                subject=cert.subject.rfc4514_string(),
                profile=prof.value,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
            )
        )
        self._save_records(records)
        return cert

    def revoke(
        self, serial: int, reason: str = "unspecified", at: _dt.datetime | None = None
    ) -> IssuedRecord:
        """Mark an issued certificate revoked; it appears on the next :meth:`publish_crl`."""
        check_reason(reason)
        when = ensure_utc(at or now_utc()).replace(microsecond=0)
        records = self.records()
        for i, rec in enumerate(records):
            if rec.serial == serial:
                if rec.revoked_at is not None:
                    return rec
                records[i] = IssuedRecord(
                    serial=rec.serial,
                    subject=rec.subject,
                    profile=rec.profile,
                    not_before=rec.not_before,
                    not_after=rec.not_after,
                    revoked_at=when,
                    reason=reason,
                )
                self._save_records(records)
                return records[i]
        raise InputError(f"this CA issued no certificate with serial 0x{serial:x}")

    def publish_crl(
        self,
        next_update: _dt.datetime | _dt.timedelta = _dt.timedelta(days=7),
        *,
        now: _dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        """Sign a CRL of every revoked certificate and write it to ``crl.pem``.

        With an intermediate, the root's (empty) CRL is renewed in ``root-crl.pem`` too.
        """
        now = ensure_utc(now or now_utc()).replace(microsecond=0)
        nxt = now + next_update if isinstance(next_update, _dt.timedelta) else next_update
        if ensure_utc(nxt) <= now:
            raise InputError("nextUpdate must be after thisUpdate")
        number = int(self._config.get("crl_number", 0)) + 1
        revoked = [
            (r.serial, r.revoked_at, r.reason or "unspecified")
            for r in self.records()
            if r.revoked_at is not None
        ]
        crl = build_crl(
            self._issuing_signer,
            self.issuing_certificate.subject,
            number=number,
            this_update=now,
            next_update=nxt,
            revoked=revoked,
        )
        self._config["crl_number"] = number
        if self.intermediate_certificate is not None:
            # The root's CRL covers the intermediate (never revoked by this tool), so that
            # verifiers with require_crl=True find a current CRL for every issuer.
            root_number = int(self._config.get("root_crl_number", 0)) + 1
            root_crl = build_crl(
                self._root_signer,
                self.root_certificate.subject,
                number=root_number,
                this_update=now,
                next_update=nxt,
                revoked=[],
            )
            self._config["root_crl_number"] = root_number
            _write(self.directory / "root-crl.pem",
                   root_crl.public_bytes(serialization.Encoding.PEM))
            _write(self.directory / "root-crl.der",
                   root_crl.public_bytes(serialization.Encoding.DER))
        _write(self.directory / CONFIG_FILE, json.dumps(self._config, indent=2).encode() + b"\n")
        _write(self.directory / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
        _write(self.directory / "crl.der", crl.public_bytes(serialization.Encoding.DER))
        return crl


def _check_subject_key(key: object) -> None:
    """Refuse keys sio-gateway cannot verify with (P-256, RSA >= 2048, Ed25519 only)."""
    try:
        algs = algorithms_for_key(key)  # type: ignore[arg-type]
        check_key_algorithm(key, algs[0])
    except SiogwError as exc:
        raise InputError(
            "the request's key is not one sio-gateway accepts", detail=exc.message
        ) from exc


def _requested_san(req: x509.CertificateSigningRequest) -> list[a_x509.GeneralName]:
    try:
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [a_x509.GeneralName({"dns_name": d}) for d in san.get_values_for_type(x509.DNSName)]
    out += [
        a_x509.GeneralName({"rfc822_name": e}) for e in san.get_values_for_type(x509.RFC822Name)
    ]
    return out


def _server_names(req: x509.CertificateSigningRequest) -> list[a_x509.GeneralName]:
    names = _requested_san(req)
    if names:
        return names
    cns = req.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not cns:
        raise InputError("a server certificate needs a subjectAltName or a CN to use as one")
    return [a_x509.GeneralName({"dns_name": str(cns[0].value)})]


def init_ca(
    directory: str | os.PathLike[str],
    subject: x509.Name | str,
    *,
    key: Signer | None = None,
    key_uri: str | None = None,
    intermediate_subject: x509.Name | str | None = None,
    days: int = 3650,
    crl_url: str | None = None,
    root_crl_url: str | None = None,
) -> CertificateAuthority:
    """Module-level form of :meth:`CertificateAuthority.init`."""
    return CertificateAuthority.init(
        directory,
        subject,
        key=key,
        key_uri=key_uri,
        intermediate_subject=intermediate_subject,
        days=days,
        crl_url=crl_url,
        root_crl_url=root_crl_url,
    )
