"""Path validation, validity, key usage, CRLs and the gateway revocation store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signing import dsse
from signing.errors import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    KeyUsageRefused,
    StaleCRL,
    UnknownSigner,
    UntrustedChain,
)
from signing.revocation import (
    InMemoryRevocationStore,
    JsonFileRevocationStore,
    RevocationStore,
    revoke_certificate,
)
from signing.trust import CertificateVerifier, TrustStore
from siogw_api.errors import ConfigError, InputError

from . import _pki
from ._pki import DAY, NOW


@pytest.fixture(scope="module")
def pki() -> dict[str, _pki.Node]:
    r = _pki.root()
    i = _pki.intermediate(r)
    return {
        "root": r,
        "inter": i,
        "leaf": _pki.issue("Alice", i),
        "direct": _pki.issue("Bob", r),
    }


def store(pki, **kw) -> TrustStore:  # type: ignore[no-untyped-def]
    kw.setdefault("intermediates", [pki["inter"].cert])
    return TrustStore([pki["root"].cert], clock=lambda: NOW, **kw)


def test_chain_without_intermediate(pki) -> None:  # type: ignore[no-untyped-def]
    path = TrustStore([pki["root"].cert], clock=lambda: NOW).verify_certificate(pki["direct"].cert)
    assert path == (pki["direct"].cert, pki["root"].cert)


def test_chain_with_intermediate(pki) -> None:  # type: ignore[no-untyped-def]
    assert store(pki).verify_certificate(pki["leaf"].cert) == (
        pki["leaf"].cert,
        pki["inter"].cert,
        pki["root"].cert,
    )


def test_intermediate_supplied_per_call(pki) -> None:  # type: ignore[no-untyped-def]
    ts = TrustStore([pki["root"].cert], clock=lambda: NOW)
    with pytest.raises(UntrustedChain, match="neither a trust anchor nor a known intermediate"):
        ts.verify_certificate(pki["leaf"].cert)
    assert len(ts.verify_certificate(pki["leaf"].cert, intermediates=[pki["inter"].cert])) == 3


def test_wrong_anchor(pki) -> None:  # type: ignore[no-untyped-def]
    other = _pki.root("Other Root")
    with pytest.raises(UntrustedChain):
        TrustStore([other.cert], [pki["inter"].cert], clock=lambda: NOW).verify_certificate(
            pki["leaf"].cert
        )


def test_same_name_different_key_anchor(pki) -> None:  # type: ignore[no-untyped-def]
    impostor = _pki.root("Test Root")  # same subject, different key
    with pytest.raises(UntrustedChain, match="does not verify with the key"):
        TrustStore([impostor.cert], clock=lambda: NOW).verify_certificate(pki["direct"].cert)


def test_forged_leaf_signature(pki) -> None:  # type: ignore[no-untyped-def]
    forged = _pki.issue(
        "Mallory", None, issuer_name=pki["inter"].cert.subject,
        signing_key=ec.generate_private_key(ec.SECP256R1()),
    )
    with pytest.raises(UntrustedChain, match="does not verify"):
        store(pki).verify_certificate(forged.cert)


def test_expired_leaf_reports_astana_time(pki) -> None:  # type: ignore[no-untyped-def]
    leaf = _pki.issue("Old", pki["inter"], not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    with pytest.raises(CertificateExpired, match=r"expired at .*\+05:00") as ei:
        store(pki).verify_certificate(leaf.cert)
    assert ei.value.reason_code == "EXPIRED"
    assert "2026-05-31T17:00:00+05:00" in ei.value.diagnostics()


def test_not_yet_valid(pki) -> None:  # type: ignore[no-untyped-def]
    leaf = _pki.issue("Future", pki["inter"], not_before=NOW + DAY)
    with pytest.raises(CertificateExpired, match="not yet valid"):
        store(pki).verify_certificate(leaf.cert)


def test_expired_intermediate(pki) -> None:  # type: ignore[no-untyped-def]
    inter = _pki.intermediate(pki["root"], "Old Issuing", not_after=NOW - DAY)
    leaf = _pki.issue("Carol", inter)
    with pytest.raises(CertificateExpired, match="Old Issuing"):
        store(pki, intermediates=[inter.cert]).verify_certificate(leaf.cert)


def test_check_time_parameter(pki) -> None:  # type: ignore[no-untyped-def]
    leaf = _pki.issue("Old", pki["inter"], not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    assert store(pki).verify_certificate(leaf.cert, at=NOW - 10 * DAY)


@pytest.mark.parametrize("ku", [_pki.ENCIPHER_ONLY_KU, None], ids=["encipher-only", "absent"])
def test_leaf_key_usage(pki, ku) -> None:  # type: ignore[no-untyped-def]
    leaf = _pki.issue("Dave", pki["inter"], key_usage=ku)
    with pytest.raises(KeyUsageRefused):
        store(pki).verify_certificate(leaf.cert)


def test_non_repudiation_alone_is_enough(pki) -> None:  # type: ignore[no-untyped-def]
    ku = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    assert store(pki).verify_certificate(_pki.issue("Eve", pki["inter"], key_usage=ku).cert)


def test_issuer_without_key_cert_sign(pki) -> None:  # type: ignore[no-untyped-def]
    inter = _pki.intermediate(pki["root"], "No Sign", key_usage=_pki.SIGNING_KU)
    with pytest.raises(KeyUsageRefused, match="keyCertSign"):
        store(pki, intermediates=[inter.cert]).verify_certificate(_pki.issue("F", inter).cert)


def test_issuer_not_a_ca(pki) -> None:  # type: ignore[no-untyped-def]
    inter = _pki.intermediate(
        pki["root"], "Not CA", ca=False, path_length=None, key_usage=_pki.CA_KU
    )
    with pytest.raises(UntrustedChain, match="not a CA"):
        store(pki, intermediates=[inter.cert]).verify_certificate(_pki.issue("G", inter).cert)


def test_issuer_without_basic_constraints(pki) -> None:  # type: ignore[no-untyped-def]
    inter = _pki.intermediate(pki["root"], "No BC", ca=None)
    with pytest.raises(UntrustedChain, match="basicConstraints"):
        store(pki, intermediates=[inter.cert]).verify_certificate(_pki.issue("H", inter).cert)


def test_path_length_constraint() -> None:
    r = _pki.root(path_length=0)
    inter = _pki.intermediate(r)
    ts = TrustStore([r.cert], [inter.cert], clock=lambda: NOW)
    with pytest.raises(UntrustedChain, match="allows 0 intermediate"):
        ts.verify_certificate(_pki.issue("I", inter).cert)
    assert ts.verify_certificate(_pki.issue("J", r).cert)


def test_unknown_critical_extension(pki) -> None:  # type: ignore[no-untyped-def]
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    leaf = _pki.issue("K", pki["inter"], extra=[(ext, True)])
    with pytest.raises(UntrustedChain, match="unsupported critical extension"):
        store(pki).verify_certificate(leaf.cert)
    ok = _pki.issue("K2", pki["inter"], extra=[(ext, False)])
    assert store(pki).verify_certificate(ok.cert)


# --- CRLs --------------------------------------------------------------------------------
def test_crl_revoked_with_date_and_reason(pki) -> None:  # type: ignore[no-untyped-def]
    when = NOW - 2 * DAY
    crl = _pki.crl(
        pki["inter"], [(pki["leaf"].cert.serial_number, when, x509.ReasonFlags.key_compromise)]
    )
    with pytest.raises(CertificateRevoked) as ei:
        store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)
    exc = ei.value
    assert exc.revoked_at == when
    assert exc.revocation_reason == "keyCompromise"
    assert exc.serial == pki["leaf"].cert.serial_number
    assert "revoked at 2026-05-30T17:00:00+05:00 (reason: keyCompromise)" in exc.diagnostics()


def test_crl_without_reason_is_unspecified(pki) -> None:  # type: ignore[no-untyped-def]
    crl = _pki.crl(pki["inter"], [(pki["leaf"].cert.serial_number, NOW - DAY, None)])
    with pytest.raises(CertificateRevoked) as ei:
        store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)
    assert ei.value.revocation_reason == "unspecified"


def test_crl_not_listing_the_serial_passes(pki) -> None:  # type: ignore[no-untyped-def]
    crl = _pki.crl(pki["inter"], [(12345, NOW - DAY, x509.ReasonFlags.superseded)])
    assert store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)


def test_revoked_intermediate_on_root_crl(pki) -> None:  # type: ignore[no-untyped-def]
    crl = _pki.crl(pki["root"], [(pki["inter"].cert.serial_number, NOW - DAY, None)])
    with pytest.raises(CertificateRevoked, match="Test Issuing"):
        store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)


def test_stale_crl_names_next_update(pki) -> None:  # type: ignore[no-untyped-def]
    crl = _pki.crl(pki["inter"], last_update=NOW - 10 * DAY, next_update=NOW - 3 * DAY)
    with pytest.raises(StaleCRL, match=r"nextUpdate 2026-05-29T17:00:00\+05:00"):
        store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)


def test_freshest_crl_is_used(pki) -> None:  # type: ignore[no-untyped-def]
    old = _pki.crl(pki["inter"], last_update=NOW - 10 * DAY, next_update=NOW - 3 * DAY)
    new = _pki.crl(pki["inter"])
    assert store(pki, crls=[old, new]).verify_certificate(pki["leaf"].cert)


def test_crl_with_bad_signature(pki) -> None:  # type: ignore[no-untyped-def]
    crl = _pki.crl(pki["inter"], signing_key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(StaleCRL, match="signature does not verify"):
        store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)


def test_forged_newer_crl_does_not_hide_genuine_one(pki) -> None:  # type: ignore[no-untyped-def]
    genuine = _pki.crl(
        pki["inter"], [(pki["leaf"].cert.serial_number, NOW - DAY, x509.ReasonFlags.key_compromise)]
    )
    forged = _pki.crl(
        pki["inter"], last_update=NOW - DAY / 2,
        signing_key=ec.generate_private_key(ec.SECP256R1()),
    )
    with pytest.raises(CertificateRevoked):
        store(pki, crls=[forged, genuine]).verify_certificate(pki["leaf"].cert)


def test_anchor_used_as_signer_needs_signing_usage(pki) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyUsageRefused):
        store(pki).verify_certificate(pki["root"].cert)
    both = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    r = _pki.root("Signing Root", key_usage=both)
    assert TrustStore([r.cert], clock=lambda: NOW).verify_certificate(r.cert) == (r.cert,)


def test_require_crl(pki) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StaleCRL, match="no CRL"):
        store(pki, require_crl=True).verify_certificate(pki["leaf"].cert)


def test_other_issuers_crl_is_ignored(pki) -> None:  # type: ignore[no-untyped-def]
    other = _pki.root("Other Root")
    crl = _pki.crl(other, [(pki["leaf"].cert.serial_number, NOW - DAY, None)])
    assert store(pki, crls=[crl]).verify_certificate(pki["leaf"].cert)


# --- gateway revocation store -------------------------------------------------------------
@pytest.fixture(params=["memory", "json"])
def revocations(request, tmp_path: Path) -> RevocationStore:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return InMemoryRevocationStore()
    return JsonFileRevocationStore(tmp_path / "revocations.json")


def test_revocation_store_takes_effect_at_once(pki, revocations) -> None:  # type: ignore[no-untyped-def]
    ts = store(pki, revocations=revocations)
    assert ts.verify_certificate(pki["leaf"].cert)
    entry = revoke_certificate(revocations, pki["leaf"].cert, "keyCompromise", at=NOW - DAY)
    with pytest.raises(CertificateRevoked) as ei:
        ts.verify_certificate(pki["leaf"].cert)
    assert ei.value.revoked_at == entry.revoked_at
    assert "(reason: keyCompromise)" in ei.value.diagnostics()
    assert revocations.entries() == [entry]
    # idempotent: the first entry wins
    assert revoke_certificate(revocations, pki["leaf"].cert, "superseded") == entry
    # other certificates are untouched
    assert ts.verify_certificate(_pki.issue("Other", pki["inter"]).cert)


def test_non_compromise_revocation_applies_from_its_date(pki) -> None:  # type: ignore[no-untyped-def]
    revs = InMemoryRevocationStore()
    revoke_certificate(revs, pki["leaf"].cert, "superseded", at=NOW)
    ts = store(pki, revocations=revs)
    assert ts.verify_certificate(pki["leaf"].cert, at=NOW - DAY)
    with pytest.raises(CertificateRevoked):
        ts.verify_certificate(pki["leaf"].cert, at=NOW)


def test_compromise_revocation_applies_to_earlier_times(pki) -> None:  # type: ignore[no-untyped-def]
    revs = InMemoryRevocationStore()
    revoke_certificate(revs, pki["leaf"].cert, "keyCompromise", at=NOW)
    with pytest.raises(CertificateRevoked):
        store(pki, revocations=revs).verify_certificate(pki["leaf"].cert, at=NOW - 5 * DAY)


def test_json_store_is_shared_between_instances(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "r.json"
    reader = JsonFileRevocationStore(path)
    ts = store(pki, revocations=reader)
    assert ts.verify_certificate(pki["leaf"].cert)
    writer = JsonFileRevocationStore(path)
    revoke_certificate(writer, pki["leaf"].cert, "affiliationChanged", at=NOW - DAY)
    with pytest.raises(CertificateRevoked) as ei:
        ts.verify_certificate(pki["leaf"].cert)
    assert ei.value.revocation_reason == "affiliationChanged"
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert doc["entries"][0]["revoked_at"].endswith("+05:00")


@pytest.mark.parametrize(
    "content",
    ["not json", '{"version": 2, "entries": []}', '{"version": 1}',
     '{"version": 1, "entries": [{"issuer": "CN=x"}]}',
     '{"version": 1, "entries": [{"issuer": "CN=x", "serial": "zz", "revoked_at": '
     '"2026-01-01T00:00:00+05:00"}]}'],
)
def test_json_store_refuses_corrupt_files(pki, tmp_path: Path, content: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        JsonFileRevocationStore(path).lookup(pki["leaf"].cert.issuer, 1)


def test_unknown_reason_refused(pki) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="unknown revocation reason"):
        revoke_certificate(InMemoryRevocationStore(), pki["leaf"].cert, "lost it")


# --- signatures ---------------------------------------------------------------------------
def test_verify_signed(pki) -> None:  # type: ignore[no-untyped-def]
    signer = pki["leaf"].signer()
    sig = signer.sign(b"payload")
    ts = store(pki)
    assert ts.verify_signed(b"payload", sig, pki["leaf"].cert)[0] == pki["leaf"].cert
    with pytest.raises(BadSignature, match="Alice"):
        ts.verify_signed(b"payload!", sig, pki["leaf"].cert)


def test_envelope_with_certificate_verifier(pki) -> None:  # type: ignore[no-untyped-def]
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [pki["leaf"].signer()])
    got = dsse.verify_envelope(env, CertificateVerifier(store(pki)))
    assert got.signers[0].subject == "O=AFM test,CN=Alice"
    assert got.signers[0].chain[-1] == pki["root"].cert
    # without the embedded certificate, a known certificate is found by key id
    bare = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [pki["leaf"].signer()],
                              include_certificates=False)
    with pytest.raises(UnknownSigner):
        dsse.verify_envelope(bare, CertificateVerifier(store(pki)))
    known = CertificateVerifier(store(pki), [pki["leaf"].cert])
    assert dsse.verify_envelope(bare, known).signers[0].certificate == pki["leaf"].cert


def test_envelope_keyid_must_match_embedded_cert(pki) -> None:  # type: ignore[no-untyped-def]
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [pki["leaf"].signer()])
    s = env.signatures[0]
    lying = dsse.Envelope(env.payload_type, env.payload,
                          (dsse.EnvSig("00" * 32, s.sig, s.cert_der),))
    with pytest.raises(UnknownSigner, match="does not match"):
        dsse.verify_envelope(lying, CertificateVerifier(store(pki)))


def test_envelope_revoked_signer(pki) -> None:  # type: ignore[no-untyped-def]
    revs = InMemoryRevocationStore()
    ts = store(pki, revocations=revs)
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [pki["leaf"].signer()])
    dsse.verify_envelope(env, CertificateVerifier(ts))
    revoke_certificate(revs, pki["leaf"].cert, "keyCompromise", at=dt.datetime.now(dt.UTC))
    with pytest.raises(CertificateRevoked):
        dsse.verify_envelope(env, CertificateVerifier(ts))


def test_keyid_less_signature_found_among_known_certificates(pki) -> None:  # type: ignore[no-untyped-def]
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, b"q", [pki["leaf"].signer()],
                             include_certificates=False)
    s = env.signatures[0]
    anon = dsse.Envelope(env.payload_type, env.payload, (dsse.EnvSig("", s.sig),))
    verifier = CertificateVerifier(store(pki), [pki["direct"].cert, pki["leaf"].cert])
    assert dsse.verify_envelope(anon, verifier).signers[0].certificate == pki["leaf"].cert
    with pytest.raises(UnknownSigner):
        dsse.verify_envelope(anon, CertificateVerifier(store(pki), [pki["direct"].cert]))


def test_malformed_extension_is_untrusted_chain(pki) -> None:  # type: ignore[no-untyped-def]
    garbage = x509.UnrecognizedExtension(x509.KeyUsage.oid, b"\x04\x01garbage")
    leaf = _pki.issue("Broken", pki["inter"], key_usage=None, extra=[(garbage, True)])
    with pytest.raises(UntrustedChain, match="malformed"):
        store(pki).verify_certificate(leaf.cert)


def test_json_store_concurrent_writers_in_processes(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing

    path = tmp_path / "r.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_revoke_many, args=(str(path), base)) for base in (1, 1001)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    serials = {e.serial for e in JsonFileRevocationStore(path).entries()}
    assert serials == set(range(1, 21)) | set(range(1001, 1021))


def _revoke_many(path: str, base: int) -> None:
    issuer = x509.Name.from_rfc4514_string("CN=Test Issuing")
    store_ = JsonFileRevocationStore(path)
    for serial in range(base, base + 20):
        store_.revoke(issuer, serial, "superseded")
