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
    (with the original receipt when the first sending was answered; see below)
    then, if the call's deadline passed meanwhile                  DEADLINE_EXCEEDED
    (the request id is released: see below)
13. dispatch (resource 11 truncated by the data plane)            UNAVAILABLE if upstream down
    (the request id is released: see below)
14. signed result; then session, block and revocation re-checked   UNAUTHENTICATED / DENIED
    (the answer is not released: the refusal record says ``answer_released: false``)

**Retry semantics (issue 14, finding 6).** A query refused at step 13 because the upstream
is unavailable has disclosed nothing: its request id is given back
(:meth:`server.store.Store.release_request_id`), the refusal record says
``request_released: true`` (so the replay guard's rebuild from the log,
``server.ops_wiring._claim_of``, does not claim it again) and the ErrorInfo metadata says
``request_released: "true"``: the client may resend the same signed envelope while it is
fresh. The same holds for a query whose deadline passed (or whose caller cancelled)
while steps 1 to 12 ran: it is not dispatched, its id is given back and the refusal
(``DEADLINE_EXCEEDED``) says ``request_released: true``. A request id whose query was
answered is refused ``ALREADY_EXISTS`` with the receipt of that answer (ErrorInfo
metadata ``seq``/``leaf_hash``/``tree_size`` and an ``AuditReceipt`` detail) when the
first answer is found in the audit index of this process's operations domain and was
sent by the same user; a worker process (no operations domain, no index) asks the log
host for it (``Gateway.receipts``, the receipt lookup of ``server.loghost``).

**An admitted query does not outlive a block (finding 10).** Steps 1 to 12 run before the
upstream is asked, which may take seconds; a logout, a block or a revocation committed
meanwhile must stop the answer. After dispatch and signing, just before the answer's
record is written, the session is read and checked again
(:meth:`server.context.Gateway.recheck_session`: the same one read as step 1); a failure
refuses the call and nothing of the answer leaves the gateway.

The answer is ``QueryResult`` signed by the gateway's key (``application/vnd.siogw.result
+protobuf``) bound to the request by ``request_digest`` = SHA-256 of the signed query
payload, and the receipt of the audit record, which holds the signed request envelope
and a digest + summary of the result (R11).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import DecodeError
from grpc import aio
from sqlalchemy import select

from audit.record import AuditRecord
from server import metrics
from server.consent import require_consent
from server.context import (
    Gateway,
    Session,
    bearer_token,
    check_fresh,
    parse_envelope,
)
from server.errors import DeadlineExceeded, MissingField, NotImplementedYet
from server.interceptors import current_call
from server.resources import catalogue
from server.resources.dispatch import DispatchResult, validate_query
from server.resources.errors import UpstreamUnavailable
from server.status import check_not_in_maintenance, get_service_status
from server.store.errors import ReplayDetected
from server.tracing import span
from signing import dsse
from signing.api import Signer
from signing.wire import envelope_to_proto
from siogw_api.errors import ConfigError, InputError, SigningError
from siogw_api.timeutil import astana_iso, now_utc
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


async def _dispatch(
    gateway: Gateway, query: query_pb2.Query, time_remaining: float | None = None
) -> DispatchResult:
    """Run the (validated) query through the data plane; ``time_remaining``: seconds left
    of the client's gRPC deadline (a remote upstream must answer within it)."""
    if gateway.dispatcher is None:
        raise NotImplementedYet("no resource dispatcher is configured")
    outcome = "error"
    with span("siogw.dispatch") as current:
        current.set_attribute("siogw.resource", query.resource)
        try:
            result: DispatchResult = await gateway.dispatcher.dispatch(
                query, request_id=query.request_id, time_remaining=time_remaining)
            outcome = "ok"
        except UpstreamUnavailable:
            outcome = "unavailable"
            raise
        finally:
            metrics.upstream_call(query.resource, outcome)
            connector_for = getattr(gateway.dispatcher, "connector_for", None)
            breaker = getattr(connector_for(query.resource), "breaker", None) \
                if connector_for is not None else None
            if breaker is not None:
                metrics.breaker_state(query.resource, breaker.state)
    return result


def _result_bytes(query: query_pb2.Query, answer: DispatchResult, payload: bytes) -> bytes:
    """The serialized ``QueryResult`` bound to the request."""
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
    data: bytes = result.SerializeToString(deterministic=True)
    return data


def _signed_result(
    query: query_pb2.Query, answer: DispatchResult, payload: bytes, signer: Signer
) -> tuple[bytes, dsse.Envelope]:
    """The serialized ``QueryResult`` bound to the request, and its DSSE envelope."""
    result_bytes = _result_bytes(query, answer, payload)
    with span("siogw.sign"), metrics.signing(signer.key_id):
        return result_bytes, dsse.sign_envelope(dsse.PAYLOAD_RESULT, result_bytes, signer)


def original_receipt(
    gateway: Gateway, request_id: str, user_id: str
) -> tuple[int, bytes, int] | None:
    """``(seq, leaf_hash, tree_size)`` of the record that answered ``request_id`` sent by
    ``user_id``, or None (not answered, another user's, or no operations domain here).

    Read from the audit index (caught up first); only records recent enough for their
    envelope to pass the freshness check again are looked at. ``tree_size`` is
    ``seq + 1``, the smallest tree that holds the record (an inclusion proof into any
    later checkpoint proves it as well).
    """
    wiring = gateway.ops_wiring
    if wiring is None:
        return None
    wiring.catch_up()
    t = wiring.index.table
    since = now_utc() - _dt.timedelta(seconds=2 * gateway.config.limits.clock_skew_seconds + 60)
    with wiring.index.engine.connect() as conn:
        row = conn.execute(
            select(t.c.seq, t.c.leaf_hash)
            .where(t.c.actor == user_id, t.c.time >= since, t.c.request_id == request_id,
                   t.c.event == "query", t.c.outcome == "success")
            .order_by(t.c.seq).limit(1)
        ).first()
    if row is None:
        return None
    return int(row.seq), bytes.fromhex(row.leaf_hash), int(row.seq) + 1


def _deadline_passed(context: aio.ServicerContext) -> bool:
    """Whether the call's deadline is behind it (no deadline: never)."""
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


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
        with span("siogw.checks"), self.gw.store.pinned_connection():
            return self._checks(token, request)

    def _checks(
        self, token: str | None, request: query_pb2.QueryRequest
    ) -> tuple[Session, bytes, query_pb2.Query, Any]:
        gw = self.gw
        info = current_call()
        # Nothing of the request is parsed before the session check: an unauthenticated
        # caller's envelope (and its embedded certificate) is never decoded or cached.
        session = gw.authenticate_token(token)
        # The user's unit when the query was made (Reports filter by it, §21).
        info.details["unit"] = session.user.unit or ""
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
             "basis": query.basis, "task": query.task_ref,
             # bounded by server.bounds (justification: 2000 characters) before here
             "justification": query.justification,
             # as sent (a refusal before validation shows what was asked): a few, clipped
             "parameters": {k[:64]: v[:64] for k, v in sorted(query.parameters.items())[:4]}}
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
        info.details["parameters"] = dict(params)  # validated: one known name, normalised
        try:
            with span("siogw.replay_claim"):
                gw.store.claim_request_id(query.request_id, user_id=session.user_id,
                                          kind="query")
        except ReplayDetected as exc:
            metrics.REPLAY_REFUSED.inc()
            exc.receipt = original_receipt(gw, query.request_id, session.user_id)
            raise
        metrics.REPLAY_CLAIMED.inc()
        # A refusal from here on names the claim: the replay guard can be restored from
        # the audit log (server.ops_wiring.OpsWiring.restore_replay_guard).
        info.details["request_claimed"] = True
        return session, payload, query, resource

    def _release(self, request_id: str, user_id: str) -> None:
        self.gw.store.release_request_id(request_id, user_id=user_id)

    async def _receipt_from_elsewhere(self, exc: ReplayDetected) -> None:
        """A worker has no audit index: the original receipt of a replayed query comes
        from the log host (``Gateway.receipts``), as the single process finds it."""
        info = current_call()
        request_id = info.details.get("request_id")
        if (exc.receipt is not None or self.gw.receipts is None or info.user_id is None
                or not isinstance(request_id, str)):
            return
        exc.receipt = await self.gw.receipts(request_id, info.user_id)

    async def _admitted(
        self, request: query_pb2.QueryRequest, context: aio.ServicerContext
    ) -> tuple[Session, bytes, query_pb2.Query, Any]:
        """Checks 1 to 12; then, if the call's deadline has passed (or the call was
        cancelled) meanwhile, the claim is given back and the call refused before
        dispatch (``DEADLINE_EXCEEDED``, recorded with ``request_released``).

        Inline (SQLite) nothing can interrupt the checks. In a thread they are shielded:
        a cancellation meanwhile (the deadline, or the client gone) lets them finish, so
        that a claim they made is given back and a refusal of theirs is recorded, instead
        of a claim left behind unrecorded.
        """
        gw = self.gw
        token = bearer_token(context)
        try:
            if gw.inline_blocking:
                admitted = self._admit(token, request)
                ended = _deadline_passed(context)
            else:
                checks = asyncio.ensure_future(asyncio.to_thread(self._admit, token, request))
                try:
                    admitted = await asyncio.shield(checks)
                    ended = _deadline_passed(context)
                except asyncio.CancelledError:
                    admitted = await checks
                    ended = True
        except ReplayDetected as exc:
            await self._receipt_from_elsewhere(exc)
            raise
        if ended:
            session, _payload, query, _resource = admitted
            await gw.run_blocking(self._release, query.request_id, session.user_id)
            current_call().details["request_released"] = True
            refusal = DeadlineExceeded("the call's deadline passed before the query was "
                                       "sent to the resource; the same request may be sent "
                                       "again")
            refusal.request_released = True
            raise refusal
        return admitted

    async def Query(
        self, request: query_pb2.QueryRequest, context: aio.ServicerContext
    ) -> query_pb2.QueryResponse:
        # Every check up to the replay claim is blocking (DB, certificates): inline on
        # SQLite, one hop to a worker thread on a server database (Gateway.run_blocking).
        gw = self.gw
        info = current_call()
        session, payload, query, resource = await self._admitted(request, context)
        try:
            answer = await _dispatch(gw, query, context.time_remaining())
        except UpstreamUnavailable as exc:
            # Nothing was disclosed: the request id is given back, and the refusal record
            # says so (see "Retry semantics" in the module docstring).
            await gw.run_blocking(self._release, query.request_id, session.user_id)
            info.details["request_released"] = True
            exc.request_released = True
            raise
        signer = gw.signer
        if signer is None:
            raise ConfigError("the gateway has no signing key configured")
        # The signed result goes to a worker thread whatever the database: the token is
        # a device, and a device that hangs (or a PKCS#11 session being re-opened after a
        # failure) must never stall the event loop and every other call with it. Measured
        # with bench/gateway.py, inline and threaded signing differ by less than the
        # run-to-run noise here.
        # With batch signing (ADR 0011) the batcher signs many results' Merkle root once,
        # in a worker thread too.
        watch = gw.emergencies
        try:
            if gw.result_batcher is None:
                result_bytes, signed = await asyncio.to_thread(
                    _signed_result, query, answer, payload, signer
                )
            else:
                result_bytes = _result_bytes(query, answer, payload)
                with span("siogw.sign"):  # the wait for the batch's one signature
                    signed = await gw.result_batcher.sign(dsse.PAYLOAD_RESULT, result_bytes)
        except SigningError as exc:
            if watch is not None:  # the Journal of emergencies (§14)
                watch.signer_failed(exc)
            raise
        if watch is not None:
            watch.signer_ok()
        # Finding 10: the session, block and revocation again, just before the answer is
        # released; a refusal from here on says the answer was not released.
        info.details["answer_released"] = False
        await gw.run_blocking(gw.recheck_session, bearer_token(context))
        del info.details["answer_released"]
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
                    "justification": query.justification,
                    "parameters": info.details.get("parameters"),
                    "unit": info.details.get("unit"),
                    "truncated": answer.truncated,
                    "result_sha256": hashlib.sha256(result_bytes).hexdigest(),
                    "result_summary": result_summary(answer.data),
                },
                payload=info.payload,
            )
        )
        return query_pb2.QueryResponse(result=envelope_to_proto(signed), receipt=receipt.to_proto())
