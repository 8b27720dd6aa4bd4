"""R8: certificate registration after rotation, revocation at once, CRL import, warnings."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from server.ops import InvalidDocument, NotFound, Operations, PermissionDenied, verify_refusal
from server.ops.documents import fingerprint
from server.store import Store
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.errors import UntrustedChain
from signing.trust import TrustStore
from siogw_api.timeutil import now_utc
from tests.server.ops.conftest import AGENCY, OPERATOR, SECURITY, Clock, ListRecorder, make_person
from tests.server.ops.helpers import application, open_session, session_ended


def _user(ops: Operations, person: Any, user_id: str, label: str | None = None) -> None:
    ops.lifecycle.import_user(OPERATOR, user_id=user_id, iin=person.iin, full_name=person.name,
                              role="agency_user", certificate_der=person.cert_der,
                              token_label=label)


def test_register_after_rotation_and_revoke(ops: Operations, people: Any,
                                            recorder: ListRecorder, tmp_path: Any) -> None:
    old, new = people("Alice"), people("Alice rotated")
    _user(ops, old, "alice")
    info = ops.certificates.register(SECURITY, "alice", new.cert_der, token_label="alice-2")
    assert info.user_id == "alice" and info.token_label == "alice-2"
    session = open_session(ops, "alice", old.cert_der, "alice-session")
    gone = ops.certificates.revoke(SECURITY, fingerprint(old.cert_der), "keyCompromise")
    assert gone.revoked and session_ended(ops, session)
    store = Store(ops.ctx.engine.url.render_as_string(hide_password=False))
    try:  # one home: the revocation is the row every call's check reads
        rev = store.revocation(gone.serial_hex, issuer=old.cert.issuer.rfc4514_string())
        assert rev is not None and rev.reason == "keyCompromise"
        again = ops.certificates.revoke(SECURITY, fingerprint(old.cert_der), "other")
        assert again.revoked_at == gone.revoked_at and len(store.revocations()) == 1
    finally:
        store.close()
    assert recorder.of("ops.certificate.revoked")[0]["details"]["user_id"] == "alice"
    with pytest.raises(NotFound):
        ops.certificates.register(SECURITY, "nobody", new.cert_der)
    rogue = make_person(CertificateAuthority.init(tmp_path / "rogue", "CN=Rogue"), "Rogue")
    with pytest.raises(UntrustedChain):
        ops.certificates.register(SECURITY, "alice", rogue.cert_der)
    with pytest.raises(InvalidDocument):
        ops.certificates.register(SECURITY, "alice", b"junk")
    with pytest.raises(PermissionDenied):
        ops.certificates.register(AGENCY, "alice", new.cert_der)


def test_overview_warnings(ops: Operations, people: Any, clock: Clock) -> None:
    fresh, soon = people("Fresh", days=365), people("Soon", days=10)
    _user(ops, fresh, "fresh", label="tok-fresh")
    _user(ops, soon, "soon", label="tok-soon")
    now = clock.now
    ages = {"tok-fresh": now - _dt.timedelta(days=40)}
    by_user = {s.certificate.user_id: s for s in ops.certificates.overview(SECURITY, pin_ages=ages)}
    assert any("40 days old" in w for w in by_user["fresh"].warnings)
    assert not any("expire" in w for w in by_user["fresh"].warnings)
    assert any(w.startswith("expires in") for w in by_user["soon"].warnings)
    assert any("unknown" in w for w in by_user["soon"].warnings)
    ok = ops.certificates.overview(SECURITY, pin_ages={"tok-fresh": now, "tok-soon": now},
                                   user_id="fresh")
    assert [s.warnings for s in ok] == [()]
    later = ops.certificates.overview(SECURITY, now=now + _dt.timedelta(days=11), user_id="soon")
    assert later[0].warnings[0].startswith("expired at")


def test_import_crl(ops: Operations, ca: CertificateAuthority, people: Any,
                    recorder: ListRecorder, tmp_path: Any) -> None:
    lost, kept = people("Lost"), people("Kept")
    _user(ops, lost, "lost")
    _user(ops, kept, "kept")
    ca.revoke(lost.cert.serial_number, "keyCompromise")
    crl = ca.publish_crl()
    done = ops.certificates.import_crl(SECURITY, crl.public_bytes(serialization.Encoding.PEM))
    assert [c.user_id for c in done] == ["lost"]
    assert not ops.certificates.get(fingerprint(kept.cert_der)).revoked
    assert recorder.of("ops.crl.imported")[0]["details"]["revoked"] == 1
    rogue = CertificateAuthority.init(tmp_path / "rogue", "CN=Ops Test Root,O=AFM test,C=KZ")
    with pytest.raises(InvalidDocument):  # same issuer name, wrong key
        ops.certificates.import_crl(SECURITY, rogue.publish_crl().public_bytes(
            serialization.Encoding.DER))
    with pytest.raises(PermissionDenied):
        ops.certificates.import_crl(OPERATOR, b"")


def test_softhsm_operator_key_signs_a_refusal(
    ops: Operations, people: Any, ec_token_key: Any, ca: CertificateAuthority, trust: TrustStore
) -> None:
    """The operator's refusal signed on a SoftHSM token verifies for the applicant."""
    from signing.pkcs11_signer import Pkcs11Signer

    cert = ca.issue(build_csr(ec_token_key.signer, "CN=Olga operator,O=AFM test,C=KZ"), "user",
                    30, not_before=now_utc() - _dt.timedelta(hours=1))
    token_signer = Pkcs11Signer(ec_token_key.uri, certificate=cert)
    anna = people("Anna")
    app = ops.applications.file(application(anna))
    env = ops.applications.refuse(OPERATOR, app.id, "unit does not exist", token_signer)
    refusal = verify_refusal(ops.applications.refusal_for(app.id, fingerprint(anna.cert_der)),
                             trust)
    assert refusal.reason == "unit does not exist"
    assert "Olga operator" in refusal.signer_subject
    assert env
