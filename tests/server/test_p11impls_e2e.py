"""End to end on each PKCS#11 implementation: an analyst whose key lives on a SoftHSM,
a TPM (tpm2-pkcs11 on swtpm) or an openCryptoki token is enrolled with a certificate
from the test CA, logs in (challenge signed on the token + SMS), signs the consent and a
query on the token, and gets a result the gateway signed; the gateway verified the
analyst's token signature and the audit log keeps the envelope, which verifies with the
analyst's certificate. Fixtures: tests/p11impls.py, tests/server/conftest.py (SQLite)."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from signing import dsse, verify_signature
from signing.csr import build_csr
from signing.pkcs11_signer import Pkcs11Signer
from signing.trust import CertificateVerifier, TrustStore
from siogw_api.v1 import admin_pb2, common_pb2, query_pb2
from tests.p11impls import (  # noqa: F401  (pytest finds fixtures by name)
    KEY_TYPE,
    Impl,
    opencryptoki_impl,
    p11impl,
    softhsm_impl,
    tpm2_impl,
)
from tests.server.conftest import Harness, User, bearer

pytestmark = pytest.mark.parametrize("gateway", ["sqlite"], indirect=True)


def test_login_and_query_with_the_analysts_key_on_the_token(
    gateway: Harness, p11impl: Impl,  # noqa: F811  (the fixture imported above)
) -> None:
    from server.admin import execute

    alg = p11impl.algorithms[0]
    key = p11impl.new_key(KEY_TYPE[alg])
    signer = Pkcs11Signer(key.uri, algorithm=alg)
    name = f"an-{p11impl.name}-{secrets.token_hex(2)}"
    cert = gateway.ca.issue(build_csr(signer, f"CN={name},O=AFM test,C=KZ"), "user", 30)
    analyst = User(name, "agency_user", Pkcs11Signer(key.uri, algorithm=alg, certificate=cert),
                   f"+7701{secrets.randbelow(10**7):07d}")
    execute(None, gateway.gateway.store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
        user_id=name, full_name=name.title(), role="agency_user", phone=analyst.phone,
        certificate_der=analyst.cert_der)))
    gateway.users[name] = analyst

    token = gateway.login(analyst).session_token  # the challenge is signed on the token
    assert token
    gateway.consent(analyst, token)
    req, q = gateway.query_request(analyst)
    resp = gateway.query.Query(req, metadata=bearer(token))

    # the answer: signed by the gateway, verified against the trust anchor
    trust = TrustStore([gateway.ca.root_certificate])
    env = dsse.Envelope.from_proto_fields(
        resp.result.payload_type, resp.result.payload, list(resp.result.signatures)
    )
    verified = dsse.verify_envelope(env, CertificateVerifier(trust),
                                    payload_types=[dsse.PAYLOAD_RESULT])
    result = query_pb2.QueryResult.FromString(verified.payload)
    assert result.request_id == q.request_id
    assert result.request_digest == hashlib.sha256(req.envelope.payload).digest()
    # the query as the gateway recorded it: the analyst's token signature over it verifies
    rec = next(r for r in gateway.audit_records() if r.seq == resp.receipt.seq)
    assert rec.event == "query" and rec.actor == name
    recorded = common_pb2.Envelope.FromString(rec.payload)
    assert recorded.payload == req.envelope.payload
    (sig,) = recorded.signatures
    pae = dsse.pae(recorded.payload_type, recorded.payload)
    verify_signature(cert.public_key(), alg, pae, sig.sig)
