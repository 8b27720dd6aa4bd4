"""``siogw ca``, ``siogw token`` and ``siogw verify``.

* ``ca init|issue|revoke|crl|list`` — the file-based test CA (:mod:`signing.ca`), the
  stand-in for the national certifying centre.
* ``token init|keygen|import-cert|list|rotate|change-pin`` — key lifecycle on PKCS#11
  tokens (SoftHSM store under ``$SIOGW_HOME/softhsm``). PIN changes are dated in
  ``$SIOGW_HOME/softhsm/pin-ages.json``; ``token list`` warns when a PIN is older than
  :data:`signing.pin_ages.PIN_MAX_AGE_DAYS` (R8: the token password changes at least monthly).
* ``verify ENVELOPE.json --trust CA.pem ...`` — verify a DSSE envelope offline (a
  result the gateway signed, ``siogw client query --export``, or a query the analyst
  signed, ``--export-request``): exit 0 and print ``valid: signed by <subject DN> (key
  <key id>, certificate serial <hex>, issued by <DN>)`` for each signer, then what a
  query or result says, or exit non-zero with one line naming the reason.
  Certificates after ``--cert`` may be a PEM bundle (leaf + intermediates, as TLS tools
  write them): all of them are also offered as intermediates. The signer's purpose is
  checked: ``--signer-cert PEM`` pins the signer, ``--expect-eku OID|gateway`` demands
  an extended key usage; an envelope of the result payload type expects the gateway's
  result EKU unless a signer certificate is pinned.

PINs come from environment variables or files only (``--pin-env``/``--pin-file`` and
friends), never from argv. python-pkcs11 is imported inside the token commands only, so
``siogw`` starts without it. ``token`` commands and ``ca`` with a token key point SoftHSM
at the project-local store (:class:`softhsm.store.TokenStore`, development tooling) unless
``SOFTHSM2_CONF`` is set; the signing library itself never imports :mod:`softhsm`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing.api import key_id_for
from signing.batch import parse_statement
from signing.ca import CertificateAuthority, Profile
from signing.crl import load_crl
from signing.csr import build_csr, csr_pem
from signing.dsse import PAYLOAD_QUERY, PAYLOAD_RESULT, decode_envelope, verify_envelope
from signing.errors import KeyNotFound, UntrustedChain
from signing.home import default_home
from signing.pin_ages import load_pin_ages, pin_age_warning, record_pin_change
from signing.pins import resolve_pin
from signing.revocation import JsonFileRevocationStore
from signing.trust import (
    GATEWAY_RESULT_EKU,
    CertificateVerifier,
    TrustStore,
    load_certificates,
)
from siogw_api.errors import ConfigError, InputError, TrustError
from siogw_api.timeutil import astana_iso, parse_iso
from softhsm.store import TokenStore


# --- shared helpers ----------------------------------------------------------------------
def _home(args: argparse.Namespace) -> Path:
    home: Path | None = getattr(args, "home", None)
    return home if home is not None else default_home()


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}", detail=exc.strerror) from exc


def _write_out(path: str | Path, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write {path}", detail=exc.strerror) from exc


def _pin_spec(
    args: argparse.Namespace, prefix: str, what: str, *, required: bool = True
) -> str | None:
    env = getattr(args, f"{prefix}_env", None)
    path = getattr(args, f"{prefix}_file", None)
    flag = "--" + prefix.replace("_", "-")
    if env is not None and path is not None:
        raise ConfigError(f"give only one of {flag}-env or {flag}-file for the {what}")
    if env is not None:
        return f"env:{env}"
    if path is not None:
        return f"file:{Path(path).absolute()}"
    if required:
        raise ConfigError(f"the {what} is needed: give {flag}-env VAR or {flag}-file PATH")
    return None


def _add_pin_args(p: argparse.ArgumentParser, prefix: str, what: str) -> None:
    flag = "--" + prefix.replace("_", "-")
    p.add_argument(f"{flag}-env", dest=f"{prefix}_env", metavar="VAR",
                   help=f"environment variable holding the {what}")
    p.add_argument(f"{flag}-file", dest=f"{prefix}_file", metavar="PATH",
                   help=f"file (mode 600) holding the {what}")


def _parse_serial(text: str) -> int:
    try:
        return int(text[2:] if text.lower().startswith("0x") else text, 16)
    except ValueError:
        raise InputError(f"serial must be hexadecimal, got {text!r}") from None


def _activate_store(args: argparse.Namespace) -> Any:
    """The token store, with SoftHSM pointed at it.

    If ``SOFTHSM2_CONF`` is already set, the store is the one it belongs to (so that a
    token initialised here is visible to the signers of this process); otherwise the
    store under ``--home``/``$SIOGW_HOME``, activated.
    """
    conf = os.environ.get("SOFTHSM2_CONF")
    if conf:
        store = TokenStore(Path(conf).parent.parent)
        if store.conf_path != Path(conf).absolute():
            raise ConfigError(
                f"SOFTHSM2_CONF={conf} is not a sio-gateway token store configuration",
                detail="unset it or point it at $SIOGW_HOME/softhsm/softhsm2.conf",
            )
        return store
    store = TokenStore(_home(args))
    store.activate()
    return store


# --- ca ----------------------------------------------------------------------------------
def _ca_dir(args: argparse.Namespace) -> Path:
    if args.dir is not None:
        return Path(args.dir)
    return _home(args) / "ca"


def _ca_init(args: argparse.Namespace) -> int:
    if args.key_uri:
        _activate_store(args)
    ca = CertificateAuthority.init(
        _ca_dir(args), args.subject, key_uri=args.key_uri,
        intermediate_subject=args.intermediate, days=args.days,
        crl_url=args.crl_url, root_crl_url=args.root_crl_url,
    )
    print(f"CA created in {ca.directory}")
    print(f"trust anchor: {ca.directory / 'root.pem'}")
    print(f"issuing CA: {ca.issuing_certificate.subject.rfc4514_string()}")
    return 0


def _open_ca(args: argparse.Namespace) -> Any:
    directory = _ca_dir(args)
    config = directory / "ca.json"
    if config.exists() and '"uri"' in config.read_text("utf-8"):
        _activate_store(args)
    return CertificateAuthority.open(directory)


def _ca_issue(args: argparse.Namespace) -> int:
    ca = _open_ca(args)
    cert = ca.issue(_read(args.csr, "CSR"), args.profile, args.days, crl_url=args.crl_url)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if args.out:
        _write_out(args.out, pem)
    else:
        sys.stdout.write(pem.decode("ascii"))
    print(f"issued serial {cert.serial_number:x} to {cert.subject.rfc4514_string()}",
          file=sys.stderr if not args.out else sys.stdout)
    return 0


def _ca_revoke(args: argparse.Namespace) -> int:
    ca = _open_ca(args)
    at = parse_iso(args.at) if args.at else None
    serial = _parse_serial(args.serial)
    rec = ca.revoke(serial, args.reason, at)
    assert rec.revoked_at is not None
    if args.revocations:
        JsonFileRevocationStore(args.revocations).revoke(
            ca.issuing_certificate.subject, serial, rec.reason or args.reason, rec.revoked_at
        )
    print(f"revoked serial {serial:x} ({rec.subject}) at {astana_iso(rec.revoked_at)} "
          f"reason {rec.reason}")
    return 0


def _ca_crl(args: argparse.Namespace) -> int:
    ca = _open_ca(args)
    nxt: _dt.datetime | _dt.timedelta
    nxt = parse_iso(args.next_update) if args.next_update else _dt.timedelta(days=args.days)
    crl = ca.publish_crl(nxt)
    encoding = serialization.Encoding.DER if args.der else serialization.Encoding.PEM
    if args.out:
        _write_out(args.out, crl.public_bytes(encoding))
    if args.root_out:
        if ca.intermediate_certificate is None:
            raise InputError("--root-out needs a CA with an intermediate (the root is the "
                             "issuing CA: its CRL is --out)")
        _write_out(args.root_out, (ca.directory / "root-crl.der").read_bytes() if args.der
                   else (ca.directory / "root-crl.pem").read_bytes())
    print(f"CRL {ca.directory / 'crl.pem'}: {len(list(crl))} revoked, next update "
          f"{astana_iso(crl.next_update_utc)}")
    if ca.intermediate_certificate is not None:
        print(f"root CRL {ca.directory / 'root-crl.pem'} renewed as well")
    return 0


def _ca_list(args: argparse.Namespace) -> int:
    ca = _open_ca(args)
    for r in ca.records():
        state = f"revoked {astana_iso(r.revoked_at)} {r.reason}" if r.revoked_at else "valid"
        print(f"{r.serial:x}\t{r.profile}\t{r.subject}\tuntil {astana_iso(r.not_after)}\t{state}")
    return 0


# --- token -------------------------------------------------------------------------------
def _token(args: argparse.Namespace, label: str) -> Any:
    # Deferred: python-pkcs11 is imported only by the commands that use a token.
    from signing.pkcs11_token import Pkcs11Token

    _activate_store(args)
    spec = _pin_spec(args, "pin", "user PIN")
    assert spec is not None
    return Pkcs11Token(label, pin_source=spec)


def _token_init(args: argparse.Namespace) -> int:
    store = _activate_store(args)
    so = _pin_spec(args, "so_pin", "SO PIN")
    user = _pin_spec(args, "pin", "user PIN")
    assert so is not None and user is not None
    info = store.init_token(
        args.label,
        resolve_pin(so, f"SO PIN of token {args.label!r}"),
        resolve_pin(user, f"user PIN of token {args.label!r}"),
    )
    record_pin_change(store.home, info.label)
    print(f"initialised token {info.label!r} serial {info.serial}")
    return 0


def _make_csr(
    token: Any, key_label: str, ck_id: bytes, subject: str, algorithm: str | None
) -> bytes:
    # Deferred: python-pkcs11 is imported only by the commands that use a token.
    from signing.pkcs11_signer import Pkcs11Signer

    signer = Pkcs11Signer(token.uri(key_label, ck_id), algorithm=algorithm)
    return build_csr(signer, subject)


def _token_keygen(args: argparse.Namespace) -> int:
    token = _token(args, args.label)
    ck_id = token.generate_keypair(args.type, args.key)
    print(f"generated {args.type} key {args.key!r} id {ck_id.hex()} on token {args.label!r}")
    print(f"uri: {token.uri(args.key, ck_id)}")
    if args.csr_out:
        if not args.subject:
            raise ConfigError("--csr-out needs --subject")
        _write_out(args.csr_out, csr_pem(_make_csr(token, args.key, ck_id, args.subject, None)))
        print(f"CSR written to {args.csr_out}")
    return 0


def _token_import_cert(args: argparse.Namespace) -> int:
    """Store a key's certificate on the token, beside the key (what signers and
    ``siogw client login`` without ``--cert`` read)."""
    certs = load_certificates(_read(args.cert, "certificate"))
    if not certs:
        raise InputError(f"{args.cert} holds no certificate")
    cert = certs[0]
    token = _token(args, args.label)
    keys = [k for k in token.list_keys() if k.label == args.key]
    if len(keys) != 1:
        raise KeyNotFound(
            f"token {args.label!r} has {'no' if not keys else 'more than one'} key "
            f"labelled {args.key!r}"
        )
    key = keys[0]
    if key.key_id is None or key.key_id != key_id_for(cert.public_key()):  # type: ignore[arg-type]
        raise InputError(
            f"{args.cert} is not the certificate of key {args.key!r} on token {args.label!r}",
            detail="its public key is another one",
        )
    token.import_certificate(cert, key_id=key.id, label=args.key, replace=args.replace)
    print(f"certificate serial {cert.serial_number:x} for {cert.subject.rfc4514_string()} "
          f"stored on token {args.label!r} with key {args.key!r}")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    store = _activate_store(args)
    ages = load_pin_ages(store.home)
    now = _dt.datetime.now(_dt.UTC)
    wanted = set(args.labels)
    for info in store.list_tokens():
        if not info.initialized or (wanted and info.label not in wanted):
            continue
        changed = ages.get(info.label)
        when = astana_iso(changed) if changed else "unknown"
        print(f"{info.label}\tserial={info.serial}\tpin-changed={when}")
        warning = pin_age_warning(info.label, changed, now)
        if warning:
            print(warning, file=sys.stderr)
        if _pin_spec(args, "pin", "user PIN", required=False) and len(wanted) == 1:
            for key in _token(args, info.label).list_keys():
                print(f"  key {key.label!r}\t{key.key_type}\tid={key.id.hex()}\t"
                      f"keyid={key.key_id or '?'}")
    return 0


def _token_rotate(args: argparse.Namespace) -> int:
    """New key on the token + CSR + certificate; the old key and certificate stay."""
    token = _token(args, args.label)
    ck_id = token.generate_keypair(args.type, args.key)
    csr = _make_csr(token, args.key, ck_id, args.subject, None)
    print(f"new {args.type} key {args.key!r} id {ck_id.hex()} on token {args.label!r}")
    if args.csr_out:
        _write_out(args.csr_out, csr_pem(csr))
        print(f"CSR written to {args.csr_out}")
    if args.ca_dir:
        ca = CertificateAuthority.open(args.ca_dir)
        cert = ca.issue(csr, args.profile, args.days)
        token.import_certificate(cert, key_id=ck_id, label=args.key)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if args.cert_out:
            _write_out(args.cert_out, pem)
        print(f"certificate serial {cert.serial_number:x} for {cert.subject.rfc4514_string()} "
              "stored on the token; the previous certificate stays valid until revoked or expired")
    elif not args.csr_out:
        raise ConfigError("rotate needs --ca-dir (issue now) or --csr-out (send to the CA)")
    return 0


def _token_change_pin(args: argparse.Namespace) -> int:
    token = _token(args, args.label)
    new = _pin_spec(args, "new_pin", "new user PIN")
    assert new is not None
    token.set_pin(new)
    record_pin_change(_activate_store(args).home, args.label)
    print(f"PIN of token {args.label!r} changed")
    return 0


# --- verify ------------------------------------------------------------------------------
class VerificationFailed(TrustError):
    """``siogw verify`` refused an envelope; the message starts with the reason, in words."""

    def __init__(self, cause: TrustError, hint: str = "") -> None:
        reason = cause.reason_code.lower().replace("_", " ").replace("crl", "CRL")
        text = " ".join(cause.diagnostics().split())  # one line, always
        super().__init__(f"{reason}: {text}{hint}")
        self.reason = reason


#: How ``--intermediate`` is explained when a chain does not reach an anchor.
_CHAIN_HINT = (
    "; give the issuing CA certificates with --intermediate FILE, or pass the signer's "
    "certificate as a PEM bundle (leaf first, then its intermediates) with --cert FILE"
)


def _expected_purpose(
    args: argparse.Namespace, pinned: list[x509.Certificate] | None, payload_type: str
) -> x509.ObjectIdentifier | None:
    if args.expect_eku is None:
        if pinned:
            # The pin decides who may sign; a pinned gateway certificate is checked for
            # its own purpose (a person's check would refuse its EKU).
            return GATEWAY_RESULT_EKU if any(_names_gateway(c) for c in pinned) else None
        if PAYLOAD_RESULT in (args.payload_type, payload_type):
            return GATEWAY_RESULT_EKU  # a result is the gateway's word, never a person's
        return None
    if args.expect_eku == "gateway":
        return GATEWAY_RESULT_EKU
    try:
        return x509.ObjectIdentifier(args.expect_eku)
    except ValueError as exc:
        raise InputError(f"--expect-eku {args.expect_eku!r} is not an OID or 'gateway'") from exc


def _names_gateway(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return GATEWAY_RESULT_EKU in eku


def _verify(args: argparse.Namespace) -> int:
    anchors = [c for path in args.trust for c in load_certificates(_read(path, "trust anchor"))]
    inters = [c for p in args.intermediate for c in load_certificates(_read(p, "certificate"))]
    certs = [c for p in args.cert for c in load_certificates(_read(p, "certificate"))]
    pinned = (
        [c for p in args.signer_cert for c in load_certificates(_read(p, "certificate"))[:1]]
        if args.signer_cert else None
    )
    crls = [load_crl(_read(p, "CRL")) for p in args.crl]
    revocations = JsonFileRevocationStore(args.revocations) if args.revocations else None
    data = _read(args.envelope, "envelope")
    try:
        # A --cert bundle's extra certificates are intermediates (the builder only uses
        # a certificate that signs the one below it and is a CA).
        store = TrustStore(anchors, [*inters, *certs], crls, revocations)
        envelope = decode_envelope(data)
        purpose = _expected_purpose(args, pinned, envelope.payload_type)
        at = parse_iso(args.at) if args.at else None
        verified = verify_envelope(
            envelope,
            CertificateVerifier(
                store, [*certs, *(pinned or ())], at=at, purpose=purpose, pinned=pinned
            ),
            threshold=args.threshold,
            payload_types=[args.payload_type] if args.payload_type else None,
        )
    except UntrustedChain as exc:
        hint = _CHAIN_HINT if "neither a trust anchor" in str(exc) else ""
        raise VerificationFailed(exc, hint) from exc
    except TrustError as exc:
        raise VerificationFailed(exc) from exc
    if args.payload_out:
        _write_out(args.payload_out, verified.payload)
    for signer in verified.signers:
        print(f"valid: signed by {describe_signer(signer)}")
    for line in describe_batches(envelope):
        print(line)
    for line in describe_payload(verified.payload_type, verified.payload):
        print(line)
    return 0


def describe_batches(envelope: Any) -> list[str]:
    """One line per batch signature of a verified envelope (ADR 0011): its leaf, the
    batch's size, root and time as the signed statement gives them."""
    lines = []
    for sig in envelope.signatures:
        if sig.batch is not None:
            st = parse_statement(sig.batch.statement)
            lines.append(
                f"batch-signed: leaf {sig.batch.index} of {st.size} under root "
                f"{st.root.hex()} (statement of {_shown(st.time)}; inclusion path checked)"
            )
    return lines


def describe_signer(signer: Any) -> str:
    """``<subject DN> (key <key id>, certificate serial <hex>, issued by <DN>)`` of a
    :class:`signing.dsse.VerifiedSigner`; a bare key is named by its key id alone."""
    cert: x509.Certificate | None = signer.certificate
    if cert is None:
        return f"the key {signer.keyid} (no certificate)"
    return (
        f"{cert.subject.rfc4514_string()} (key {signer.keyid}, certificate serial "
        f"{cert.serial_number:x}, issued by {cert.issuer.rfc4514_string()})"
    )


def _shown(text: object, limit: int = 200) -> str:
    """``text`` safe for a terminal: control characters escaped, at most ``limit`` chars."""
    value = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in str(text)
    )
    return value if len(value) <= limit else value[:limit] + "..."


def describe_payload(payload_type: str, payload: bytes) -> list[str]:
    """What a verified query or result says, in a few lines (nothing for other payloads,
    or for one that does not parse: the signature is what was checked)."""
    from google.protobuf.message import DecodeError

    # The generated API is loaded only when a query or result is shown:
    # Deferred: so that `siogw --help` stays light.
    from siogw_api.v1 import query_pb2

    try:
        if payload_type == PAYLOAD_QUERY:
            q = query_pb2.Query.FromString(payload)
            if not q.request_id:
                return []
            params = ", ".join(f"{k}={v}" for k, v in sorted(q.parameters.items()))
            return [
                f"query {_shown(q.request_id)} created {_shown(q.created_at)}: resource "
                f"{q.resource}" + (f" ({_shown(params)})" if params else ""),
                f"basis {_shown(q.basis)}; task {_shown(q.task_ref)}; "
                f"justification: {_shown(q.justification)}",
            ]
        if payload_type == PAYLOAD_RESULT:
            r = query_pb2.QueryResult.FromString(payload)
            if not r.request_id:
                return []
            return [
                f"result for query {_shown(r.request_id)} produced {_shown(r.produced_at)}: "
                f"resource {r.resource} {_shown(r.resource_name)} [{_shown(r.access_right)}]"
            ]
    except DecodeError:
        return []
    return []


# --- argparse ----------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ca``, ``token`` and ``verify`` to the ``siogw`` command."""

    def home(p: argparse.ArgumentParser) -> None:
        p.add_argument("--home", type=Path, default=None,
                       help="sio-gateway home (default: $SIOGW_HOME or ~/.local/state/siogw)")

    # ca
    ca = subparsers.add_parser("ca", help="the test certification authority")
    ca_sub = ca.add_subparsers(dest="ca_command", metavar="ACTION")
    ca_sub.required = True

    def ca_common(p: argparse.ArgumentParser) -> None:
        home(p)
        p.add_argument("--dir", default=None, help="CA directory (default: $SIOGW_HOME/ca)")

    p = ca_sub.add_parser("init", help="create a root (and optional intermediate) CA")
    ca_common(p)
    p.add_argument("--subject", required=True, help="root subject DN, e.g. 'CN=Test NCA,C=KZ'")
    p.add_argument("--intermediate", default=None, help="subject DN of an issuing intermediate")
    p.add_argument("--key-uri", default=None, help="root key URI (default: new software key)")
    p.add_argument("--days", type=int, default=3650)
    p.add_argument("--crl-url", default=None,
                   help="http(s) URL the issuing CA's CRL is published at: every certificate "
                   "issued names it as its CRL distribution point")
    p.add_argument("--root-crl-url", default=None,
                   help="with --intermediate: URL of the root's CRL (named by the "
                   "intermediate and the root)")
    p.set_defaults(func=_ca_init)

    p = ca_sub.add_parser("issue", help="issue a certificate for a CSR")
    ca_common(p)
    p.add_argument("--csr", required=True, help="PKCS#10 request (PEM or DER)")
    p.add_argument("--profile", choices=[prof.value for prof in Profile], default="user")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--out", default=None, help="write the certificate here (default: stdout)")
    p.add_argument("--crl-url", default=None,
                   help="CRL distribution point to name (default: the CA's --crl-url)")
    p.set_defaults(func=_ca_issue)

    p = ca_sub.add_parser("revoke", help="revoke an issued certificate")
    ca_common(p)
    p.add_argument("serial", help="serial number in hex (as `ca list` prints it)")
    p.add_argument("--reason", default="unspecified", help="RFC 5280 reason, e.g. keyCompromise")
    p.add_argument("--at", default=None, help="revocation time, ISO 8601 with offset")
    p.add_argument("--revocations", default=None,
                   help="also record in this gateway revocation file (immediate effect)")
    p.set_defaults(func=_ca_revoke)

    p = ca_sub.add_parser("crl", help="publish a CRL")
    ca_common(p)
    p.add_argument("--days", type=int, default=7, help="nextUpdate in days (default 7)")
    p.add_argument("--next-update", default=None, help="nextUpdate as ISO 8601")
    p.add_argument("--out", default=None,
                   help="also write the CRL here (the file a distribution point serves)")
    p.add_argument("--root-out", default=None,
                   help="with an intermediate: also write the root's CRL here")
    p.add_argument("--der", action="store_true",
                   help="write --out/--root-out in DER (what HTTP distribution points serve)")
    p.set_defaults(func=_ca_crl)

    p = ca_sub.add_parser("list", help="list issued certificates")
    ca_common(p)
    p.set_defaults(func=_ca_list)

    # token
    tok = subparsers.add_parser("token", help="key lifecycle on PKCS#11 tokens")
    tok_sub = tok.add_subparsers(dest="token_command", metavar="ACTION")
    tok_sub.required = True

    p = tok_sub.add_parser("init", help="initialise a SoftHSM token")
    home(p)
    p.add_argument("label")
    _add_pin_args(p, "so_pin", "SO PIN")
    _add_pin_args(p, "pin", "user PIN")
    p.set_defaults(func=_token_init)

    p = tok_sub.add_parser("keygen", help="generate a key pair on a token")
    home(p)
    p.add_argument("label", help="token label")
    p.add_argument("--key", required=True, help="label of the new key")
    p.add_argument("--type", choices=["ec", "rsa", "ed25519"], default="ec")
    p.add_argument("--subject", default=None, help="subject DN for --csr-out")
    p.add_argument("--csr-out", default=None, help="write a CSR signed by the new key")
    _add_pin_args(p, "pin", "user PIN")
    p.set_defaults(func=_token_keygen)

    p = tok_sub.add_parser(
        "import-cert",
        help="store a key's certificate on the token (then a login needs no --cert)",
    )
    home(p)
    p.add_argument("label", help="token label")
    p.add_argument("--key", required=True, help="label of the key the certificate is for")
    p.add_argument("--cert", required=True, help="the certificate (PEM or DER)")
    p.add_argument("--replace", action="store_true",
                   help="replace a certificate already stored for that key")
    _add_pin_args(p, "pin", "user PIN")
    p.set_defaults(func=_token_import_cert)

    p = tok_sub.add_parser("list", help="list tokens (and keys), warn about old PINs")
    home(p)
    p.add_argument("labels", nargs="*", help="only these tokens (one label + PIN: list keys)")
    _add_pin_args(p, "pin", "user PIN")
    p.set_defaults(func=_token_list)

    p = tok_sub.add_parser("rotate", help="new key + CSR + certificate; old one stays")
    home(p)
    p.add_argument("label", help="token label")
    p.add_argument("--key", required=True, help="label of the new key")
    p.add_argument("--type", choices=["ec", "rsa", "ed25519"], default="ec")
    p.add_argument("--subject", required=True, help="subject DN of the new certificate")
    p.add_argument("--ca-dir", default=None, help="issue at once with this CA directory")
    p.add_argument("--profile", choices=[prof.value for prof in Profile], default="user")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--cert-out", default=None, help="also write the new certificate here")
    p.add_argument("--csr-out", default=None, help="write the CSR here")
    _add_pin_args(p, "pin", "user PIN")
    p.set_defaults(func=_token_rotate)

    p = tok_sub.add_parser(
        "change-pin",
        help="change the user PIN (dated: the PIN must change at least monthly)",
    )
    home(p)
    p.add_argument("label", help="token label")
    _add_pin_args(p, "pin", "current user PIN")
    _add_pin_args(p, "new_pin", "new user PIN")
    p.set_defaults(func=_token_change_pin)

    # verify
    p = subparsers.add_parser("verify", help="verify a signed DSSE envelope offline")
    p.add_argument("envelope", help="DSSE envelope JSON file")
    p.add_argument("--trust", action="append", required=True, help="trust anchor PEM (repeat)")
    p.add_argument("--intermediate", action="append", default=[], help="intermediate CA PEM")
    p.add_argument("--crl", action="append", default=[], help="CRL (PEM or DER), repeatable")
    p.add_argument("--cert", action="append", default=[],
                   help="signer certificate when the envelope does not embed it")
    p.add_argument("--revocations", default=None, help="gateway revocation list (JSON)")
    p.add_argument("--at", default=None, help="check time, ISO 8601 (default now)")
    p.add_argument("--threshold", type=int, default=1, help="distinct valid signers needed")
    p.add_argument("--payload-type", default=None, help="refuse any other payloadType")
    p.add_argument("--signer-cert", action="append", default=[],
                   help="pin: only a signature by this certificate counts (repeatable)")
    p.add_argument("--expect-eku", default=None, metavar="OID|gateway",
                   help="the signer's certificate must name this extended key usage "
                        "(default for result envelopes: the gateway's result EKU)")
    p.add_argument("--payload-out", default=None, help="write the verified payload here")
    p.set_defaults(func=_verify)
