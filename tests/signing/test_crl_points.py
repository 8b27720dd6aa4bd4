"""The pure parts of CRL fetching (signing.crl): distribution points read from
certificates, CRL bytes from a distribution point or the cache, and the checks a fetched
CRL passes before it replaces the one kept. Property tests for both parsers of outside
input (hypothesis)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signing.ca import (
    CertificateAuthority,
    _ext,
    build_certificate,
    build_crl,
    crl_points_extension,
    new_serial,
)
from signing.crl import (
    MAX_FETCHED_CRL_BYTES,
    MAX_POINT_URI_LENGTH,
    MAX_POINTS_PER_CERTIFICATE,
    check_published_crl,
    crl_number,
    http_distribution_points,
    is_newer_crl,
    parse_fetched_crl,
)
from signing.errors import StaleCRL
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.errors import InputError
from siogw_api.timeutil import now_utc

_KEY = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
_NAME = x509.Name.from_rfc4514_string("CN=Points CA,C=KZ")
_NOW = now_utc().replace(microsecond=0)
_CA = build_certificate(_KEY, _NAME, _NAME, _KEY.public_key, serial=new_serial(),
                        not_before=_NOW - _dt.timedelta(days=1),
                        not_after=_NOW + _dt.timedelta(days=30),
                        extensions=[_ext("basic_constraints", {"ca": True}, critical=True)])


def _with_points(points: list[dict[str, object]]) -> x509.Certificate:
    return build_certificate(
        _KEY, _NAME, x509.Name.from_rfc4514_string("CN=Leaf"), _KEY.public_key,
        serial=new_serial(), not_before=_NOW, not_after=_NOW + _dt.timedelta(days=1),
        extensions=[_ext("crl_distribution_points", points)])


def _crl(number: int, this: _dt.datetime, signer: SoftwareSigner = _KEY,
         revoked: list[tuple[int, _dt.datetime, str]] | None = None,
         name: x509.Name = _NAME) -> x509.CertificateRevocationList:
    return build_crl(signer, name, number=number, this_update=this,
                     next_update=this + _dt.timedelta(days=1), revoked=revoked or [])


# --- distribution points -------------------------------------------------------------------
def test_only_http_full_names_without_reasons_or_crl_issuer_are_read() -> None:
    uri = a_x509.GeneralName
    cert = _with_points([
        {"distribution_point": {"full_name": [uri({"uniform_resource_identifier":
                                                   "ldap://dir.example/cn=CA"})]}},
        {"distribution_point": {"full_name": [uri({"uniform_resource_identifier":
                                                   "http://a.example/ca.crl"})]},
         "reasons": {"key_compromise"}},
        {"distribution_point": {"full_name": [uri({"uniform_resource_identifier":
                                                   "http://b.example/ca.crl"})]},
         "crl_issuer": [uri({"dns_name": "other.example"})]},
        {"distribution_point": {"full_name": [
            uri({"uniform_resource_identifier": "HTTPS://c.example/ca.crl"}),
            uri({"uniform_resource_identifier": "http://d.example/ca.crl"}),
            uri({"uniform_resource_identifier": "http://d.example/ca.crl"})]}},
    ])
    assert http_distribution_points(cert) == ("https://c.example/ca.crl",
                                              "http://d.example/ca.crl")
    assert http_distribution_points(_CA) == ()


def test_the_ca_refuses_a_point_that_is_not_http() -> None:
    with pytest.raises(InputError, match="http"):
        crl_points_extension(["ldap://dir.example/cn=CA"])


_uris = st.one_of(
    st.text(max_size=40),
    st.builds(lambda scheme, host, path: f"{scheme}://{host}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "ldap", "file", ""]),
              st.text(max_size=20), st.text(max_size=30)),
    st.just("http://x.example/" + "a" * MAX_POINT_URI_LENGTH),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_uris, min_size=1, max_size=4), min_size=1, max_size=6))
def test_points_of_any_certificate_are_bounded_http_uris(uris: list[list[str]]) -> None:
    try:
        cert = _with_points([
            {"distribution_point": {"full_name": [
                a_x509.GeneralName({"uniform_resource_identifier": u}) for u in group]}}
            for group in uris])
    except (ValueError, TypeError):  # asn1crypto will not encode it (non-IA5 text)
        return
    points = http_distribution_points(cert)  # never raises
    assert len(points) <= MAX_POINTS_PER_CERTIFICATE
    assert len(set(points)) == len(points)
    for p in points:
        assert p.lower().startswith(("http://", "https://"))
        assert len(p) <= MAX_POINT_URI_LENGTH and p.isascii() and " " not in p


# --- CRL bytes ---------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_are_a_crl_or_input_error(data: bytes) -> None:
    try:
        crl = parse_fetched_crl(data)
    except InputError:
        return
    assert isinstance(crl, x509.CertificateRevocationList)


_GOOD = _crl(7, _NOW - _dt.timedelta(hours=1)).public_bytes(serialization.Encoding.DER)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_GOOD) - 1), st.integers(1, 255), st.integers(0, len(_GOOD)))
def test_a_mutated_or_cut_crl_is_refused_or_fails_verification(
    pos: int, flip: int, cut: int
) -> None:
    data = bytearray(_GOOD)
    data[pos] ^= flip
    for candidate in (bytes(data), _GOOD[:cut]):
        try:
            crl = parse_fetched_crl(candidate)
        except InputError:
            continue
        try:
            check_published_crl(crl, _CA, now=_NOW)
        except StaleCRL:
            continue
        # only a change the signature does not cover (the outer algorithm or the bit
        # string's padding) may still verify: the signed content is the same
        assert crl.tbs_certlist_bytes == x509.load_der_x509_crl(_GOOD).tbs_certlist_bytes


def test_a_crl_over_the_size_bound_is_refused_unread() -> None:
    with pytest.raises(InputError, match="more than"):
        parse_fetched_crl(b"\x30" * (MAX_FETCHED_CRL_BYTES + 1))
    with pytest.raises(InputError):
        parse_fetched_crl(b"")


# --- what a fetched CRL must be ------------------------------------------------------------
def test_a_published_crl_must_be_the_issuers(tmp_path: Path) -> None:
    check_published_crl(_crl(1, _NOW), _CA, now=_NOW)
    forger = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    with pytest.raises(StaleCRL, match="signature does not verify"):
        check_published_crl(_crl(2, _NOW, signer=forger), _CA, now=_NOW)
    with pytest.raises(StaleCRL, match="not CN=Points CA"):
        check_published_crl(_crl(2, _NOW, name=x509.Name.from_rfc4514_string("CN=Other")),
                            _CA, now=_NOW)
    with pytest.raises(StaleCRL, match="in the future"):
        check_published_crl(_crl(3, _NOW + _dt.timedelta(hours=1)), _CA, now=_NOW)
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Another CA,C=KZ")
    with pytest.raises(StaleCRL):
        check_published_crl(ca.publish_crl(), _CA, now=_NOW)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000), st.integers(-3, 3))
def test_only_a_higher_number_replaces_the_crl_kept(old_no: int, new_no: int,
                                                  hours: int) -> None:
    old = _crl(old_no, _NOW)
    new = _crl(new_no, _NOW + _dt.timedelta(hours=hours))
    if hours < 0 or new_no <= old_no:
        with pytest.raises(StaleCRL):
            is_newer_crl(new, old)
    else:
        assert is_newer_crl(new, old) is True
    assert is_newer_crl(old, old) is False
    assert crl_number(new) == new_no
