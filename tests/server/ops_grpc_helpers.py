"""Helpers of the operations-over-gRPC tests (``tests/server/test_ops_grpc.py``).

They reuse the ``gateway`` harness of ``tests/server/conftest.py`` and add the roles it
lacks: a departmental controller (``cora``) and a prosecutor (``petr``), each with an
EC key on their own SoftHSM token and a certificate from the harness CA.
"""

from __future__ import annotations

import secrets
from typing import Any

from siogw_api.timeutil import astana_iso
from siogw_api.v1 import admin_pb2, audit_pb2
from tests.server.conftest import Harness, User, bearer, make_token_signer, sign

#: The five roles, one user each (alice, olga and sam come from the harness).
ROLE_USERS = {
    "agency_user": "alice",
    "operator": "olga",
    "controller": "cora",
    "prosecutor": "petr",
    "security_officer": "sam",
}


def add_user(gw: Harness, softhsm_store: Any, name: str, role: str, phone: str,
             provider_bin: str = "") -> User:
    """Enrol one more token user into the harness gateway's store (idempotent); a
    compliance officer needs its provider's BIN."""
    if name in gw.users:
        return gw.users[name]
    from server.admin import execute

    secrets_dir = gw.home / "secrets"
    signer = make_token_signer(softhsm_store, secrets_dir, name, gw.ca)
    user = User(name, role, signer, phone)
    execute(None, gw.gateway.store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
        user_id=name, full_name=name.title(), role=role, phone=phone,
        certificate_der=user.cert_der, provider_bin=provider_bin)))
    gw.users[name] = user
    return user


def ensure_roles(gw: Harness, softhsm_store: Any) -> None:
    add_user(gw, softhsm_store, "cora", "controller", "+77010000021")
    add_user(gw, softhsm_store, "petr", "prosecutor", "+77010000022")


def admin(gw: Harness, name: str, **command: Any) -> admin_pb2.AdminResponse:
    """Run one signed admin command as ``name`` (a cached session)."""
    req = gw.admin_request(gw.users[name], **command)
    resp: admin_pb2.AdminResponse = gw.admin.Execute(
        req, metadata=bearer(gw.session(name, consent=False)))
    return resp


def data(resp: admin_pb2.AdminResponse) -> Any:
    """The typed result as plain Python (field names; unset values as their default)."""
    from clients import message_dict

    which = resp.WhichOneof("result")
    return message_dict(getattr(resp, which)) if which else None


def applicant_proof(signer: Any, application_id: str) -> admin_pb2.ApplicantRequest:
    proof = admin_pb2.ApplicantProof(application_id=application_id, created_at=astana_iso())
    from signing.documents import PAYLOAD_APPLICANT_PROOF

    return admin_pb2.ApplicantRequest(proof=sign(
        PAYLOAD_APPLICANT_PROOF, proof.SerializeToString(deterministic=True), signer))


def list_queries(gw: Harness, name: str, **flt: Any) -> audit_pb2.QueryPage:
    page: audit_pb2.QueryPage = gw.audit.ListQueries(
        audit_pb2.ListQueriesRequest(filter=audit_pb2.QueryFilter(**flt)),
        metadata=bearer(gw.session(name, consent=False)))
    return page


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def register_applicant(gw: Harness, softhsm_store: Any, prefix: str, phone: str) -> User:
    """File an application on a new token and have the operator register it (R3)."""
    import base64
    import datetime as _dt

    from server.ops import PAYLOAD_APPLICATION, sign_document
    from server.resources.identifiers import make_iin

    user_id = unique(prefix)
    user = User(user_id, "agency_user",
                make_token_signer(softhsm_store, gw.home / "secrets", prefix, gw.ca), phone)
    doc = {"iin": make_iin(_dt.date(1991, 3, 4), "M", secrets.randbelow(9000) + 1),
           "full_name": prefix.title(), "unit": "Analytics", "post": "analyst",
           "phone": phone, "certificate": base64.b64encode(user.cert_der).decode(),
           "requested_role": "agency_user", "basis": "financial_monitoring"}
    filed = gw.admin.FileApplication(admin_pb2.FileApplicationRequest(
        document=sign_document(PAYLOAD_APPLICATION, doc, user.signer)))
    admin(gw, "olga", register_application=admin_pb2.RegisterApplication(
        application_id=filed.application_id, user_id=user_id))
    gw.users[user_id] = user
    return user
