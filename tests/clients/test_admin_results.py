"""The client's readers of AdminService answers (issue 15): the typed result of an
``AdminResponse`` and the refusal document the gateway hands an applicant, which is
outside input and must never make the reader fail."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clients._common import admin_outcome, message_dict, refusal_from_proto
from signing import documents
from signing.dsse import sign_envelope
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.timeutil import now_utc
from siogw_api.v1 import admin_pb2

SIGNER = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))

def test_the_typed_result_is_the_oneof_member() -> None:
    resp = admin_pb2.AdminResponse(message="2 user(s)")
    resp.users.users.add(user_id="alice", role="agency_user", status="active")
    resp.users.users.add(user_id="olga", role="operator", status="blocked", block_kind="violation")
    outcome = admin_outcome(resp)
    assert isinstance(outcome.result, admin_pb2.UserList)
    assert [u.user_id for u in outcome.result.users] == ["alice", "olga"]
    doc = outcome.as_dict()
    assert doc["message"] == "2 user(s)" and doc["receipt"] is None
    assert doc["result"]["users"][1]["block_kind"] == "violation"
    assert doc["result"]["users"][0]["block_kind"] == ""  # unset: the default, not missing
    assert admin_outcome(admin_pb2.AdminResponse(message="done")).result is None


def test_64_bit_numbers_stay_numbers() -> None:
    entry = admin_pb2.AlertEntry(id=2**40, record_seq=7, blocking=True)
    doc = message_dict(entry)
    assert doc["id"] == 2**40 and doc["record_seq"] == 7 and doc["blocking"] is True


def test_a_signed_refusal_is_read() -> None:
    doc = documents.refusal_document("app-1", "900101300017", " stale data ", "olga",
                                     now_utc())
    signed = sign_envelope(documents.PAYLOAD_REFUSAL, documents.dumps(doc), SIGNER).to_json()
    refusal = refusal_from_proto(admin_pb2.RefusalResponse(document=signed))
    assert refusal.document == signed
    assert refusal.payload["reason"] == "stale data"
    assert refusal.payload["corrections_allowed"] is True


@given(st.binary(max_size=2048))
def test_any_refusal_bytes_are_read_without_failing(data: bytes) -> None:
    refusal = refusal_from_proto(admin_pb2.RefusalResponse(document=data))
    assert refusal.document == data and isinstance(refusal.payload, dict)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10))
def test_any_json_payload_in_an_envelope_is_read_without_failing(value: object) -> None:
    import json

    payload = json.dumps(value).encode()
    signed = sign_envelope(documents.PAYLOAD_REFUSAL, payload, SIGNER).to_json()
    refusal = refusal_from_proto(admin_pb2.RefusalResponse(document=signed))
    assert refusal.payload == (value if isinstance(value, dict) else {})
