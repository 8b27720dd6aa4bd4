"""R3: signed access applications, decision deadline, registration, signed refusals."""

from __future__ import annotations

import base64
import datetime as _dt
import json
from typing import Any

import pytest

from server.ops import (
    Duplicate,
    InvalidDocument,
    InvalidState,
    Operations,
    PermissionDenied,
    SignerMismatch,
    verify_refusal,
)
from server.ops.documents import fingerprint
from server.store import Store
from server.store.certificates import fingerprint as store_fingerprint
from signing.ca import CertificateAuthority
from signing.dsse import Envelope
from signing.errors import BadSignature, MalformedEnvelope, UntrustedChain
from signing.trust import TrustStore
from siogw_api.errors import AuditError, InputError
from tests.server.ops.conftest import CONTROLLER, OPERATOR, Clock, ListRecorder
from tests.server.ops.helpers import application


def test_file_sets_a_one_day_deadline_and_overdue_lists_it(
    ops: Operations, people: Any, clock: Clock, recorder: ListRecorder
) -> None:
    anna = people("Anna")
    app = ops.applications.file(application(anna))
    assert app.status == "pending"
    assert app.deadline_at - app.received_at == _dt.timedelta(days=1)
    assert app.deadline_astana.endswith("+05:00")
    assert app.cert_fingerprint == fingerprint(anna.cert_der)
    assert ops.applications.overdue(OPERATOR) == []
    assert ops.applications.overdue(OPERATOR, clock.now + _dt.timedelta(hours=23)) == []
    late = ops.applications.overdue(OPERATOR, clock.now + _dt.timedelta(days=1, seconds=1))
    assert [a.id for a in late] == [app.id]
    filed = recorder.of("ops.application.filed")
    assert filed[0]["details"]["application_id"] == app.id
    with pytest.raises(PermissionDenied):
        ops.applications.overdue(CONTROLLER)


def test_refusal_is_signed_by_the_operator_and_verifies(
    ops: Operations, people: Any, trust: TrustStore, recorder: ListRecorder
) -> None:
    anna, olga = people("Anna"), people("Olga operator")
    app = ops.applications.file(application(anna))
    env = ops.applications.refuse(OPERATOR, app.id, "post not on the staff list", olga.signer)
    fetched = ops.applications.refusal_for(app.id, fingerprint(anna.cert_der))
    assert fetched == env
    refusal = verify_refusal(fetched, trust)
    assert refusal.application_id == app.id
    assert refusal.reason == "post not on the staff list"
    assert refusal.refused_by == OPERATOR.user_id
    assert "Olga operator" in refusal.signer_subject
    assert ops.applications.get(app.id).status == "refused"
    assert recorder.of("ops.application.refused")[0]["details"]["signer_key_id"] == (
        olga.signer.key_id)
    # A tampered refusal does not verify.
    doc = json.loads(fetched)
    body = json.loads(base64.b64decode(doc["payload"]))
    body["reason"] = "approved"
    doc["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(BadSignature):
        verify_refusal(json.dumps(doc).encode(), trust)
    # Only the holder of the application's certificate fetches it.
    with pytest.raises(PermissionDenied):
        ops.applications.refusal_for(app.id, fingerprint(olga.cert_der))
    # Decided once.
    with pytest.raises(InvalidState):
        ops.applications.register(OPERATOR, app.id)
    with pytest.raises(InvalidDocument):
        ops.applications.refuse(OPERATOR, app.id, "  ", olga.signer)


def test_refusal_by_an_untrusted_key_is_rejected_by_the_applicant(
    ops: Operations, people: Any, tmp_path: Any, trust: TrustStore
) -> None:
    rogue_ca = CertificateAuthority.init(tmp_path / "rogue", "CN=Rogue Root")
    from tests.server.ops.conftest import make_person

    anna, mallory = people("Anna"), make_person(rogue_ca, "Mallory")
    app = ops.applications.file(application(anna))
    env = ops.applications.refuse(OPERATOR, app.id, "stale data", mallory.signer)
    with pytest.raises(UntrustedChain):
        verify_refusal(env, trust)


def test_corrected_application_after_refusal_then_registration(
    ops: Operations, people: Any, clock: Clock
) -> None:
    anna, olga = people("Anna"), people("Olga")
    first = ops.applications.file(application(anna, post=""))
    with pytest.raises(InvalidState):  # one pending application per person
        ops.applications.file(application(anna))
    with pytest.raises(InvalidState):  # only a refused one can be corrected
        ops.applications.file(application(anna, corrects=first.id))
    ops.applications.refuse(OPERATOR, first.id, "post is empty", olga.signer)
    clock.advance(hours=2)
    second = ops.applications.file(application(anna, corrects=first.id))
    assert second.corrects == first.id
    enrol = ops.applications.register(OPERATOR, second.id, user_id="anna")
    assert (enrol.user_id, enrol.role, enrol.basis) == ("anna", "agency_user",
                                                        "financial_monitoring")
    assert enrol.certificate_der == anna.cert_der
    assert enrol.phone == "+77010000001"
    user = ops.lifecycle.require_user("anna")
    assert user.status == "active" and user.application_id == second.id
    assert [c.certificate.fingerprint for c in ops.certificates.overview(OPERATOR)] == [
        fingerprint(anna.cert_der)]
    with pytest.raises(InvalidState):
        ops.applications.register(OPERATOR, second.id)
    # A second registration of the same person is refused.
    third_app = people("Anna again")
    third_app.iin = anna.iin
    app3 = ops.applications.file(application(third_app))
    with pytest.raises(Duplicate):
        ops.applications.register(OPERATOR, app3.id, user_id="anna2")


def test_registration_enrols_in_the_gateways_tables(ops: Operations, people: Any) -> None:
    """One home: the registered user and certificate are the rows the gateway checks."""
    boris = people("Boris")
    app = ops.applications.file(application(boris))
    enrol = ops.applications.register(OPERATOR, app.id, user_id="boris")
    store = Store(ops.ctx.engine.url.render_as_string(hide_password=False))
    try:
        user = store.require_user("boris")
        assert user.active and (user.role, user.phone) == (enrol.role, enrol.phone)
        cert = store.get_certificate(store_fingerprint(enrol.certificate_der))
        assert cert is not None and cert.user_id == "boris" and cert.key_id
        assert cert.serial_hex == format(boris.cert.serial_number, "x")
    finally:
        store.close()


def test_application_must_be_signed_with_its_own_certificate(
    ops: Operations, people: Any
) -> None:
    anna, eve = people("Anna"), people("Eve")
    with pytest.raises(SignerMismatch):
        ops.applications.file(application(anna, signer=eve.signer))


def test_untrusted_or_malformed_applications(
    ops: Operations, people: Any, tmp_path: Any
) -> None:
    from tests.server.ops.conftest import make_person

    rogue = make_person(CertificateAuthority.init(tmp_path / "rogue", "CN=Rogue"), "Rogue")
    with pytest.raises(UntrustedChain):
        ops.applications.file(application(rogue))
    anna = people("Anna")
    with pytest.raises(MalformedEnvelope):
        ops.applications.file(b"not json")
    env = Envelope.from_json(application(anna))
    wrong_type = Envelope("application/vnd.siogw.refusal+json", env.payload, env.signatures)
    with pytest.raises(MalformedEnvelope):
        ops.applications.file(wrong_type.to_json())
    bad_iin = anna.iin[:-1] + str((int(anna.iin[-1]) + 1) % 10)
    with pytest.raises(InputError):  # bad IIN check digit
        ops.applications.file(application(anna, iin=bad_iin))
    with pytest.raises(InvalidDocument):
        ops.applications.file(application(anna, phone="12345"))
    with pytest.raises(InvalidDocument):
        ops.applications.file(application(anna, requested_role="root"))
    with pytest.raises(InvalidDocument):
        ops.applications.file(application(anna, basis="curiosity"))
    with pytest.raises(InvalidDocument):
        ops.applications.file(application(anna, full_name=None))
    with pytest.raises(InvalidDocument):
        ops.applications.file(application(anna, unit=42))


def test_audit_failure_rolls_the_application_back(
    ops: Operations, people: Any, recorder: ListRecorder
) -> None:
    recorder.fail = True
    with pytest.raises(AuditError):
        ops.applications.file(application(people("Anna")))
    assert ops.applications.applications(OPERATOR) == []


def test_expired_certificate_is_refused(ops: Operations, people: Any, clock: Clock) -> None:
    from signing.errors import CertificateExpired

    anna = people("Anna", days=1)
    with pytest.raises(CertificateExpired):
        ops.applications.file(application(anna), received_at=clock.now + _dt.timedelta(days=3))


def test_concurrent_decisions_register_once(ops: Operations, people: Any) -> None:
    import threading

    app = ops.applications.file(application(people("Anna")))
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def decide(uid: str) -> None:
        barrier.wait()
        try:
            results.append(ops.applications.register(OPERATOR, app.id, user_id=uid))
        except (InvalidState, Duplicate) as exc:
            results.append(exc)

    threads = [threading.Thread(target=decide, args=(f"anna-{i}",)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    enrolled = [r for r in results if not isinstance(r, Exception)]
    assert len(results) == 2 and len(enrolled) == 1
    assert [u.user_id for u in ops.lifecycle.users(OPERATOR)] == [enrolled[0].user_id]


def test_certificate_subject_iin_must_be_the_applicants(ops: Operations, people: Any,
                                                        ca: CertificateAuthority) -> None:
    from signing.csr import build_csr
    from signing.software import SoftwareSigner, generate_software_key
    from siogw_api.timeutil import now_utc
    from tests.server.ops.conftest import Person

    key = generate_software_key("ecdsa-p256-sha256")
    iin = people("x").iin
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nurlan"),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, f"IIN{iin}"),
                         x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ")])
    cert = ca.issue(build_csr(SoftwareSigner(key), subject), "user", 30,
                    not_before=now_utc() - _dt.timedelta(hours=1))
    nurlan = Person("Nurlan", iin, SoftwareSigner(key, certificate=cert))
    other_iin = people("y").iin
    with pytest.raises(SignerMismatch, match="another person"):
        ops.applications.file(application(nurlan, iin=other_iin))
    assert ops.applications.file(application(nurlan)).iin == iin


def test_refusal_signed_by_the_operator_client(ops: Operations, people: Any, clock: Clock,
                                               trust: TrustStore,
                                               recorder: ListRecorder) -> None:
    """The gRPC path: the operator signs the refusal on their token, the gateway records it."""
    from server.ops import PAYLOAD_REFUSAL, refusal_payload, sign_document

    anna, olga, eve = people("Anna"), people("Olga"), people("Eve")
    app = ops.applications.file(application(anna))

    def signed(signer: Any, **changes: Any) -> bytes:
        doc = refusal_payload(app, "stale data", "olga", clock.now)
        doc.update(changes)
        return sign_document(PAYLOAD_REFUSAL, doc, signer)

    with pytest.raises(SignerMismatch):  # not the session's certificate
        ops.applications.refuse_signed(OPERATOR, signed(eve.signer),
                                       signer_certificates=[olga.cert])
    with pytest.raises(SignerMismatch):  # names another operator
        ops.applications.refuse_signed(OPERATOR, signed(olga.signer, refused_by="oleg"),
                                       signer_certificates=[olga.cert])
    with pytest.raises(InvalidDocument):  # the IIN of someone else
        ops.applications.refuse_signed(OPERATOR, signed(olga.signer, iin=eve.iin),
                                       signer_certificates=[olga.cert])
    clock.advance(minutes=10)
    with pytest.raises(InvalidDocument):  # signed too long ago
        ops.applications.refuse_signed(OPERATOR, signed(olga.signer, refused_at=(
            clock.now - _dt.timedelta(minutes=10)).isoformat()), signer_certificates=[olga.cert])
    assert ops.applications.get(app.id).status == "pending"
    env = signed(olga.signer)
    refusal = ops.applications.refuse_signed(OPERATOR, env, signer_certificates=[olga.cert])
    assert refusal.reason == "stale data" and refusal.application_id == app.id
    assert ops.applications.refusal_for(app.id, fingerprint(anna.cert_der)) == env
    assert verify_refusal(env, trust).refused_by == "olga"
    assert recorder.of("ops.application.refused")[0]["details"]["signer_fingerprint"] == (
        fingerprint(olga.cert_der))
    with pytest.raises(InvalidState):
        ops.applications.refuse_signed(OPERATOR, env, signer_certificates=[olga.cert])
    with pytest.raises(PermissionDenied):
        ops.applications.refuse_signed(CONTROLLER, env, signer_certificates=[olga.cert])
