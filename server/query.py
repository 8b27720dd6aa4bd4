"""QueryService: signed queries to the information resources (R1, R2, R7, R10).

A Query call is checked in this order; the first failure decides the status:

1. session (:meth:`server.context.Gateway.authenticate`)          UNAUTHENTICATED (or DENIED)
   (nothing of the request is parsed before it: the envelope is decoded after, and kept
   in the record of a refusal from then on)
2. no maintenance window open                                     UNAVAILABLE (names the end)
3. the audit log accepts records (fail closed)                    UNAVAILABLE
4. consent signed (R6)                                            FAILED_PRECONDITION
5. envelope type and signature by the session's certificate (R7)  UNAUTHENTICATED (or DENIED)
6. payload parses as ``siogw.v1.Query``                           INVALID_ARGUMENT
7. request id present; ``created_at`` within ±skew                INVALID_ARGUMENT (STALE_REQUEST)
8. task reference and justification present (§3)                 INVALID_ARGUMENT
9. basis allowed for the user's role (R1)                         PERMISSION_DENIED
10. resource exists (R2)                                          NOT_FOUND
11. parameters fit the resource; IIN/BIN valid                    INVALID_ARGUMENT
12. request id never seen before (durable, unique in the DB)      ALREADY_EXISTS
13. dispatch (resource 11 truncated by the data plane)            UNAVAILABLE if upstream down

The answer is ``QueryResult`` signed by the gateway's key (``application/vnd.siogw.result
+protobuf``) bound to the request by ``request_digest`` = SHA-256 of the signed query
payload, and the receipt of the audit record, which holds the signed request envelope
and a digest + summary of the result (R11).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import DecodeError
from grpc import aio

from audit.record import AuditRecord
from server.consent import require_consent
from server.context import (
    Gateway,
    Session,
    bearer_token,
    check_fresh,
    parse_envelope,
)
from server.errors import MissingField, NotImplementedYet
from server.interceptors import current_call
from server.resources import catalogue
from server.resources.dispatch import DispatchResult, validate_query
from server.status import check_not_in_maintenance, get_service_status
from signing import dsse
from signing.api import Signer
from signing.wire import envelope_to_proto
from siogw_api.errors import ConfigError, InputError
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import query_pb2, query_pb2_grpc


def parse_query(payload: bytes) -> query_pb2.Query:
    query = query_pb2.Query()
    try:
        query.ParseFromString(payload)
    except DecodeError as exc:
        raise InputError("the signed payload is not a siogw.v1.Query") from exc
    return query


def result_summary(data: Mapping[str, Any]) -> str:
    """A short, non-sensitive summary of a result for the audit record."""
    keys = sorted(data)
    counts = [f"{k}[{len(v)}]" for k in keys if isinstance(v := data[k], list)]
    return f"{len(keys)} field(s)" + (f"; lists: {', '.join(counts)}" if counts else "")


async def _dispatch(gateway: Gateway, query: query_pb2.Query) -> DispatchResult:
    """Run the (validated) query through the data plane."""
    if gateway.dispatcher is None:
        raise NotImplementedYet("no resource dispatcher is configured")
    result: DispatchResult = await gateway.dispatcher.dispatch(query)
    return result


def _signed_result(
    query: query_pb2.Query, answer: DispatchResult, payload: bytes, signer: Signer
) -> tuple[bytes, dsse.Envelope]:
    """The serialized ``QueryResult`` bound to the request, and its DSSE envelope."""
    result = query_pb2.QueryResult(
        request_id=query.request_id,
        resource=answer.resource,
        resource_name=answer.name,
        access_right=answer.access_right,
        truncated=answer.truncated,
        data=answer.to_struct(),
        produced_at=astana_iso(),
        request_digest=hashlib.sha256(payload).digest(),
    )
    result_bytes = result.SerializeToString(deterministic=True)
    return result_bytes, dsse.sign_envelope(dsse.PAYLOAD_RESULT, result_bytes, signer)


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def ListResources(
        self, request: query_pb2.ListResourcesRequest, context: aio.ServicerContext
    ) -> query_pb2.ListResourcesResponse:
        return query_pb2.ListResourcesResponse(
            resources=[
                query_pb2.Resource(
                    number=r.number, name=r.name, access_right=r.access_right.value,
                    parameters=list(r.parameters),
                )
                for r in catalogue.CATALOGUE.values()
            ]
        )

    async def GetServiceStatus(
        self, request: query_pb2.GetServiceStatusRequest, context: aio.ServicerContext
    ) -> query_pb2.ServiceStatus:
        return await get_service_status(self.gw.store, request, context)

    def _admit(
        self, token: str | None, request: query_pb2.QueryRequest
    ) -> tuple[Session, bytes, query_pb2.Query, Any]:
        """Checks 1 to 12 of the module docstring, in order (blocking; runs in a thread).

        The session read and the replay claim share one database connection.
        """
        with self.gw.store.pinned_connection():
            return self._checks(token, request)

    def _checks(
        self, token: str | None, request: query_pb2.QueryRequest
    ) -> tuple[Session, bytes, query_pb2.Query, Any]:
        gw = self.gw
        info = current_call()
        # Nothing of the request is parsed before the session check: an unauthenticated
        # caller's envelope (and its embedded certificate) is never decoded or cached.
        session = gw.authenticate_token(token)
        parsed = None
        if request.HasField("envelope"):  # kept in the record of a refusal from here on
            parsed, info.payload = parse_envelope(request.envelope)
        check_not_in_maintenance(gw.store, context=session.context)
        gw.audit.check()
        require_consent(gw, session)
        if not request.HasField("envelope"):
            raise MissingField("the query envelope is missing")
        payload = gw.verify_by_certificate(
            request.envelope, dsse.PAYLOAD_QUERY, session.certificate, validated=session.chain,
            parsed=parsed,
        )
        query = parse_query(payload)
        info.details.update(
            {"request_id": query.request_id, "resource": int(query.resource),
             "basis": query.basis, "task": query.task_ref}
        )
        if not query.request_id:
            raise MissingField("request_id is empty")
        check_fresh(query.created_at, gw.config.limits.clock_skew_seconds)
        if not query.task_ref.strip():
            raise MissingField("task_ref is empty: name the task or case (§3)")
        if not query.justification.strip():
            raise MissingField("justification is empty (§3)")
        catalogue.check_basis(session.user.role, query.basis)
        resource, params = validate_query(query)  # resource exists, IIN/BIN valid
        # The validated subject (IIN/BIN/plate/phone) goes into the audit record: the
        # violation rules watch for bursts of queries about one person (R13, R15).
        info.details["subject"] = next(iter(params.values()))
        gw.store.claim_request_id(query.request_id, user_id=session.user_id, kind="query")
        # A refusal from here on names the claim: the replay guard can be restored from
        # the audit log (server.ops_wiring.OpsWiring.restore_replay_guard).
        info.details["request_claimed"] = True
        return session, payload, query, resource

    async def Query(
        self, request: query_pb2.QueryRequest, context: aio.ServicerContext
    ) -> query_pb2.QueryResponse:
        # Every check up to the replay claim is blocking (DB, certificates): inline on
        # SQLite, one hop to a worker thread on a server database (Gateway.run_blocking).
        gw = self.gw
        info = current_call()
        session, payload, query, resource = await gw.run_blocking(
            self._admit, bearer_token(context), request
        )
        answer = await _dispatch(gw, query)
        signer = gw.signer
        if signer is None:
            raise ConfigError("the gateway has no signing key configured")
        # The signed result goes to a worker thread whatever the database: the token is
        # a device, and a device that hangs (or a PKCS#11 session being re-opened after a
        # failure) must never stall the event loop and every other call with it. Measured
        # with bench/gateway.py, inline and threaded signing differ by less than the
        # run-to-run noise here.
        result_bytes, signed = await asyncio.to_thread(
            _signed_result, query, answer, payload, signer
        )
        receipt = await gw.record(
            AuditRecord(
                actor=session.user_id,
                event="query",
                outcome="success",
                cert_fingerprint=session.cert_fingerprint,
                details={
                    "request_id": query.request_id,
                    "resource": resource.number,
                    "basis": query.basis,
                    "task": query.task_ref,
                    "subject": info.details.get("subject"),
                    "truncated": answer.truncated,
                    "result_sha256": hashlib.sha256(result_bytes).hexdigest(),
                    "result_summary": result_summary(answer.data),
                },
                payload=info.payload,
            )
        )
        return query_pb2.QueryResponse(result=envelope_to_proto(signed), receipt=receipt.to_proto())
