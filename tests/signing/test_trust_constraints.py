"""Issue 13, defects 6 and 7: extended key usage by purpose, name constraints, policy
extensions and CRL critical extensions (``signing.trust``, ``signing.crl``)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.errors import CertificateRevoked, KeyUsageRefused, StaleCRL, UntrustedChain
from signing.trust import GATEWAY_RESULT_EKU, TrustStore

from . import _pki
from ._pki import DAY, NOW


def _dn(org: str, cn: str = "Leaf") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _eku(*oids: x509.ObjectIdentifier) -> tuple[x509.ExtendedKeyUsage, bool]:
    return x509.ExtendedKeyUsage(list(oids)), False


@pytest.fixture(scope="module")
def root() -> _pki.Node:
    return _pki.root()


def _store(root: _pki.Node, *inters: _pki.Node, **kw: object) -> TrustStore:
    return TrustStore([root.cert], [i.cert for i in inters], clock=lambda: NOW, **kw)  # type: ignore[arg-type]


# --- defect 7: name constraints ------------------------------------------------------------
def _bank_ca(root: _pki.Node, **nc: object) -> _pki.Node:
    constraints = x509.NameConstraints(
        permitted_subtrees=nc.get("permitted"), excluded_subtrees=nc.get("excluded"))  # type: ignore[arg-type]
    return _pki.intermediate(root, "Bank CA", extra=[(constraints, True)])


def test_directory_name_constraint_refuses_a_leaf_of_another_organisation(
    root: _pki.Node,
) -> None:
    permitted = [x509.DirectoryName(x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Allowed Bank"),
    ]))]
    bank = _bank_ca(root, permitted=permitted)
    inside = _pki.issue("x", bank, subject_name=_dn("Allowed Bank"))
    assert len(_store(root, bank).verify_certificate(inside.cert)) == 3
    afm = _pki.issue("x", bank, subject_name=_dn("AFM"),
                     extra=[_eku(ExtendedKeyUsageOID.SERVER_AUTH)])
    with pytest.raises(UntrustedChain, match="outside the names permitted"):
        _store(root, bank).verify_certificate(afm.cert)
    # without the TLS-only EKU the name alone refuses it
    afm_plain = _pki.issue("x", bank, subject_name=_dn("AFM"))
    with pytest.raises(UntrustedChain, match="O=AFM"):
        _store(root, bank).verify_certificate(afm_plain.cert)


def test_excluded_subtree_and_san_names(root: _pki.Node) -> None:
    bank = _bank_ca(
        root,
        permitted=[x509.DNSName("bank.kz"), x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))],
        excluded=[x509.DirectoryName(x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil")]))],
    )
    def leaf(org: str, *names: x509.GeneralName) -> x509.Certificate:
        extra = [(x509.SubjectAlternativeName(list(names)), False)] if names else []
        return _pki.issue("x", bank, subject_name=_dn(org), extra=extra).cert

    ok = leaf("Good", x509.DNSName("www.bank.kz"), x509.IPAddress(ipaddress.ip_address("10.1.2.3")))
    assert _store(root, bank).verify_certificate(ok)
    with pytest.raises(UntrustedChain, match="excluded"):
        _store(root, bank).verify_certificate(leaf("Evil"))
    with pytest.raises(UntrustedChain, match=r"notbank\.kz"):
        _store(root, bank).verify_certificate(leaf("Good", x509.DNSName("notbank.kz")))
    with pytest.raises(UntrustedChain, match=r"192\.0\.2\.1"):
        _store(root, bank).verify_certificate(
            leaf("Good", x509.IPAddress(ipaddress.ip_address("192.0.2.1"))))


def test_unsupported_name_constraint_form_is_refused(root: _pki.Node) -> None:
    bank = _bank_ca(root, permitted=[x509.UniformResourceIdentifier("https://bank.kz")])
    leaf = _pki.issue("x", bank, subject_name=_dn("Allowed Bank"))
    with pytest.raises(UntrustedChain, match="unsupported form"):
        _store(root, bank).verify_certificate(leaf.cert)


@pytest.mark.parametrize("ext", [
    x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None),
    x509.InhibitAnyPolicy(0),
])
def test_policy_processing_extensions_are_refused(root: _pki.Node, ext: object) -> None:
    inter = _pki.intermediate(root, "Policy CA", extra=[(ext, True)])
    leaf = _pki.issue("x", inter)
    with pytest.raises(UntrustedChain, match="policy processing is not supported"):
        _store(root, inter).verify_certificate(leaf.cert)


# --- defect 7: CRL critical extensions ------------------------------------------------------
def test_delta_crl_is_refused(root: _pki.Node) -> None:
    inter = _pki.intermediate(root)
    leaf = _pki.issue("x", inter)
    delta = _pki.crl(inter, extra=[(x509.DeltaCRLIndicator(1), True)])
    with pytest.raises(StaleCRL, match="delta CRL"):
        _store(root, inter, crls=[delta]).verify_certificate(leaf.cert)


def _idp(**kw: object) -> tuple[x509.IssuingDistributionPoint, bool]:
    args: dict[str, object] = {
        "full_name": None, "relative_name": None, "only_contains_user_certs": False,
        "only_contains_ca_certs": False, "only_some_reasons": None, "indirect_crl": False,
        "only_contains_attribute_certs": False}
    args.update(kw)
    return x509.IssuingDistributionPoint(**args), True  # type: ignore[arg-type]


def test_crl_limited_to_ca_certificates_does_not_cover_a_leaf(root: _pki.Node) -> None:
    inter = _pki.intermediate(root)
    leaf = _pki.issue("x", inter)
    ca_only = _pki.crl(inter, [(leaf.cert.serial_number, NOW - DAY, None)],
                       extra=[_idp(only_contains_ca_certs=True)])
    # it lists the leaf's serial, but is not the leaf's CRL: no CRL covers the leaf
    assert _store(root, inter, crls=[ca_only]).verify_certificate(leaf.cert)
    with pytest.raises(StaleCRL, match="covers"):
        _store(root, inter, crls=[ca_only], require_crl=True).verify_certificate(leaf.cert)
    users = _pki.crl(inter, [(leaf.cert.serial_number, NOW - DAY, None)],
                     extra=[_idp(only_contains_user_certs=True)])
    with pytest.raises(CertificateRevoked):
        _store(root, inter, crls=[users]).verify_certificate(leaf.cert)


def test_indirect_or_reason_partitioned_crl_is_refused(root: _pki.Node) -> None:
    inter = _pki.intermediate(root)
    leaf = _pki.issue("x", inter)
    for ext in (_idp(indirect_crl=True),
                _idp(only_some_reasons=frozenset({x509.ReasonFlags.key_compromise}))):
        with pytest.raises(StaleCRL, match="unsupported scope"):
            _store(root, inter, crls=[_pki.crl(inter, extra=[ext])]).verify_certificate(leaf.cert)


def test_unknown_critical_crl_extension_is_refused(root: _pki.Node) -> None:
    inter = _pki.intermediate(root)
    leaf = _pki.issue("x", inter)
    ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00")
    with pytest.raises(StaleCRL, match="unsupported critical extension"):
        _store(root, inter, crls=[_pki.crl(inter, extra=[(ext, True)])]).verify_certificate(
            leaf.cert)


# --- defect 6: extended key usage by purpose ------------------------------------------------
def test_gateway_result_eku_is_required_for_that_purpose(root: _pki.Node) -> None:
    person = _pki.issue("Analyst", root)
    gateway = _pki.issue("Gateway", root, extra=[_eku(GATEWAY_RESULT_EKU)])
    anyeku = _pki.issue("Any", root, extra=[_eku(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)])
    store = _store(root)
    assert store.verify_certificate(gateway.cert, purpose=GATEWAY_RESULT_EKU)
    for cert in (person.cert, anyeku.cert):
        with pytest.raises(KeyUsageRefused, match="not issued for the gateway's results"):
            store.verify_certificate(cert, purpose=GATEWAY_RESULT_EKU)


def test_a_persons_signature_refuses_tls_only_and_gateway_certificates(root: _pki.Node) -> None:
    store = _store(root)
    assert store.verify_certificate(_pki.issue("Analyst", root).cert)
    mail = _pki.issue("Mail", root, extra=[_eku(ExtendedKeyUsageOID.EMAIL_PROTECTION)])
    assert store.verify_certificate(mail.cert)
    tls = _pki.issue("TLS", root, extra=[_eku(ExtendedKeyUsageOID.SERVER_AUTH)])
    with pytest.raises(KeyUsageRefused, match="TLS only"):
        store.verify_certificate(tls.cert)
    gateway = _pki.issue("Gateway", root, extra=[_eku(GATEWAY_RESULT_EKU)])
    with pytest.raises(KeyUsageRefused, match="gateway's result key"):
        store.verify_certificate(gateway.cert)
