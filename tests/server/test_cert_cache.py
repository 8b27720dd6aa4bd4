"""The gateway's certificate-validation cache (server.auth.TrustMaterial / ChainCache).

The chain part of a validation is cached per fingerprint; revocation (DB store and CRL)
and validity are still decided on every call. Real CA (signing.ca), real SQLite store.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.certcheck import ChainCache, TrustMaterial
from server.store import Store
from server.store.certificates import DbRevocationStore
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.errors import CertificateExpired, CertificateRevoked, StaleCRL, UntrustedChain
from signing.software import SoftwareSigner
from siogw_api.errors import ConfigError
from siogw_api.timeutil import now_utc


@pytest.fixture()
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "ca", "CN=Cache Test Root,C=KZ")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    yield s
    s.close()


def issue(ca: CertificateAuthority, name: str, **kw: object) -> x509.Certificate:
    signer = SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
    return ca.issue(build_csr(signer, f"CN={name},O=AFM test,C=KZ"), "user", 30, **kw)  # type: ignore[arg-type]


def material(
    ca: CertificateAuthority, store: Store, *, crl: bool = True, **kw: object
) -> TrustMaterial:
    """Trust in ``ca``'s root with its CRL (without: CRL freshness cannot mask expiry)."""
    ca.publish_crl()
    return TrustMaterial(
        [ca.directory / "root.pem"], [ca.directory / "crl.pem"] if crl else [],
        DbRevocationStore(store), **kw,  # type: ignore[arg-type]
    )


def test_a_second_validation_is_served_from_the_cache(ca, store) -> None:
    trust = material(ca, store)
    cert = issue(ca, "alice")
    first = trust.validate(cert)
    assert len(trust.cache) == 1
    again = trust.validate(der=cert.public_bytes(serialization.Encoding.DER))
    assert again is first  # the same cached outcome, no new chain validation


def test_a_db_revocation_refuses_a_cached_certificate_at_once(ca, store) -> None:
    trust = material(ca, store)
    cert = issue(ca, "bob")
    trust.validate(cert)
    assert len(trust.cache) == 1
    DbRevocationStore(store).revoke(cert.issuer, cert.serial_number, "keyCompromise")
    with pytest.raises(CertificateRevoked):
        trust.validate(cert)
    assert len(trust.cache) == 1  # refused although its chain validation is still cached


def test_a_crl_revocation_refuses_a_cached_certificate_at_once(ca, store) -> None:
    trust = material(ca, store)
    cert = issue(ca, "carl")
    trust.validate(cert)
    trust.validate(cert)  # cached chain, and the CRL's clean outcome remembered
    ca.revoke(cert.serial_number, "keyCompromise")
    ca.publish_crl()
    stamp = now_utc().timestamp() + 5  # make sure the file's mtime changes
    os.utime(ca.directory / "crl.pem", (stamp, stamp))
    with pytest.raises(CertificateRevoked):
        trust.validate(cert)


def test_a_stale_crl_is_seen_although_the_chain_and_its_crl_check_are_cached(ca, store) -> None:
    trust = material(ca, store)
    cert = issue(ca, "fred")
    trust.validate(cert)
    trust.validate(cert)  # served from the cache, CRL outcome remembered
    crl = trust.store().crls[0]
    assert crl.next_update_utc is not None and crl.next_update_utc < cert.not_valid_after_utc
    with pytest.raises(StaleCRL):
        trust.validate(cert, at=crl.next_update_utc + _dt.timedelta(seconds=1))


def test_an_expired_certificate_is_refused_even_if_cached(ca, store) -> None:
    trust = material(ca, store, crl=False)
    cert = issue(ca, "dina")
    trust.validate(cert)
    assert len(trust.cache) == 1
    later = cert.not_valid_after_utc + _dt.timedelta(seconds=1)
    with pytest.raises(CertificateExpired):
        trust.validate(cert, at=later)
    assert len(trust.cache) == 0  # the entry ended with the certificate's validity


def test_a_not_yet_valid_certificate_is_refused_even_if_cached(ca, store) -> None:
    trust = material(ca, store, crl=False)
    cert = issue(ca, "emil")
    trust.validate(cert)
    with pytest.raises(CertificateExpired):
        trust.validate(cert, at=cert.not_valid_before_utc - _dt.timedelta(seconds=1))


def test_an_untrusted_certificate_is_never_cached(ca, store, tmp_path: Path) -> None:
    trust = material(ca, store)
    other = CertificateAuthority.init(tmp_path / "other", "CN=Other Root,C=KZ")
    stranger = issue(other, "mallory")
    for _ in range(2):
        with pytest.raises(UntrustedChain):
            trust.validate(stranger)
    assert len(trust.cache) == 0


def test_the_cache_is_bounded_lru(ca, store) -> None:
    trust = material(ca, store, cache=ChainCache(max_entries=2))
    a, b, c = (issue(ca, n) for n in ("a", "b", "c"))
    first = trust.validate(a)
    trust.validate(b)
    assert trust.validate(a) is first  # a is now the most recent
    trust.validate(c)  # evicts b
    assert len(trust.cache) == 2
    assert trust.validate(a) is first
    with pytest.raises(ConfigError):
        ChainCache(max_entries=0)


def test_the_cache_is_bounded_in_bytes(ca, store) -> None:
    """Issue 13, defect 10: the bound is in bytes, by the cache's own accounting."""
    cache = ChainCache(max_entries=4096, max_bytes=16 * 1024)
    trust = material(ca, store, cache=cache)
    certs = [issue(ca, f"user{i}") for i in range(40)]
    per_entry = 0
    for cert in certs:
        trust.validate(cert)
        assert cache.bytes_used <= cache.max_bytes
        per_entry = per_entry or cache.bytes_used
    assert per_entry > 0
    # entries differ in size by a few bytes: evicted down to the bound, and kept full
    assert 0 < len(cache) < len(certs)
    assert cache.max_bytes - 2 * per_entry < cache.bytes_used <= cache.max_bytes
    cache.clear()
    assert cache.bytes_used == 0


def test_a_chain_too_large_for_the_cache_is_validated_but_not_kept(ca, store) -> None:
    cache = ChainCache(max_item_bytes=64)  # no chain of 64 bytes or less exists
    trust = material(ca, store, cache=cache)
    trust.validate(issue(ca, "big"))
    assert len(cache) == 0 and cache.bytes_used == 0
