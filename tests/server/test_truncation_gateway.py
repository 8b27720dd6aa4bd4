"""Resource 11 through the real gateway: an upstream answer that does not fit the
truncation schema is refused ``UPSTREAM_REJECTED`` and recorded (issue 14, finding 1).

The harness's dispatcher is replaced by a real :class:`~server.resources.Dispatcher`
whose connector for resource 11 is a stand-in upstream returning the given answer; every
other resource keeps the embedded connector. Over TLS, with SoftHSM tokens, on SQLite and
PostgreSQL: the refusal reaches the client with its precise status and reason and none of
the answer's values, the audit log holds one refusal record for the request id naming
the reason, and no ``query`` success record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from server.resources import Dispatcher
from server.resources.dataset import DEMO_PERSON_IIN
from siogw_api.v1 import query_pb2
from tests.server.conftest import Harness, bearer, rpc_error

#: An amount the upstream sends and that must never leave the gateway, nor be recorded.
AMOUNT = 187500
ROW = {"period": "2024-01", "employer_bin": "120640313373", "employer_name": "Kaz Ltd",
       "paid_on": "2024-02-10"}


class Upstream:
    """A stand-in upstream for resource 11: answers ``answer`` (a callable of params)."""

    def __init__(self) -> None:
        self.answer: Any = None
        self.calls = 0

    async def fetch(self, resource: Any, params: Mapping[str, str], options: Any = None) -> Any:
        self.calls += 1
        return self.answer(dict(params)) if callable(self.answer) else self.answer


@pytest.fixture
def upstream(gateway: Harness) -> Iterator[Upstream]:
    original = gateway.gateway.dispatcher
    stand_in = Upstream()
    gateway.gateway.dispatcher = Dispatcher({11: stand_in},
                                            default=original.connector_for(1))  # type: ignore[union-attr]
    try:
        yield stand_in
    finally:
        gateway.gateway.dispatcher = original


def subject(params: Mapping[str, str]) -> dict[str, str]:
    return {"iin": params["iin"]}


#: Answers that do not fit resource 11's schema (the issue's two among them).
BAD_ANSWERS: dict[str, Any] = {
    "rows_as_arrays": lambda p: {"subject": subject(p), "records": [
        ["2024-01", "120640313373", AMOUNT, "2024-02-10"]]},
    "rows_as_numbers": lambda p: {"subject": subject(p), "records": [AMOUNT, 47000]},
    "amount_in_an_allowed_field": lambda p: {"subject": subject(p), "records": [
        {**ROW, "period": AMOUNT}]},
    "object_in_an_allowed_field": lambda p: {"subject": subject(p), "records": [
        {**ROW, "employer_name": {"amount": AMOUNT}}]},
    "amount_as_a_date": lambda p: {"subject": subject(p), "records": [
        {**ROW, "paid_on": str(AMOUNT)}]},
    "another_subject": lambda p: {"subject": {"iin": "800415348216"}
                                  if p["iin"] != "800415348216" else {"iin": "850517300005"},
                                  "records": [ROW]},
    "no_records": lambda p: {"subject": subject(p), "amount": AMOUNT},
    "not_an_object": [AMOUNT],
}


@pytest.mark.parametrize("shape", sorted(BAD_ANSWERS))
def test_a_resource_11_answer_off_its_schema_is_refused_and_recorded(
    gateway: Harness, upstream: Upstream, shape: str
) -> None:
    upstream.answer = BAD_ANSWERS[shape]
    user = gateway.users["alice"]
    req, q = gateway.query_request(user, resource=11, parameters={"iin": DEMO_PERSON_IIN})
    code, reason, message = rpc_error(
        lambda: gateway.query.Query(req, metadata=bearer(gateway.session("alice"))))
    assert upstream.calls == 1
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "UPSTREAM_REJECTED")
    assert str(AMOUNT) not in message and "resource 11" in message
    records = [r for r in gateway.audit_records() if r.details.get("request_id") == q.request_id]
    assert [r.event for r in records] == ["refusal"], records  # no query record
    (rec,) = records
    assert (rec.details["code"], rec.details["reason"]) == ("FAILED_PRECONDITION",
                                                            "UPSTREAM_REJECTED")
    assert rec.actor == "alice" and rec.details["resource"] == 11
    assert str(AMOUNT) not in repr(rec.details)


def test_a_resource_11_answer_that_fits_is_answered_without_extra_values(
    gateway: Harness, upstream: Upstream
) -> None:
    """The control: a row with an extra amount key is answered, the amount dropped."""
    upstream.answer = lambda p: {"subject": subject(p), "count": 99,
                                 "records": [{**ROW, "amount": AMOUNT}]}
    resp = gateway.send_query("alice", resource=11, parameters={"iin": DEMO_PERSON_IIN})
    assert resp.receipt.leaf_hash
    result = query_pb2.QueryResult.FromString(resp.result.payload)
    assert result.truncated
    assert json_format.MessageToDict(result.data) == {
        "subject": {"iin": DEMO_PERSON_IIN}, "count": 1.0, "records": [ROW]}
