"""The write-ahead rule (issue 12, ADR 0003): the request is recorded, durable, before its
effect; its outcome is recorded after.

Every call that changes state -- ``AdminService.Execute`` (every command: each one at
least claims its request id), ``AdminService.FileApplication``, ``AuthService.SignConsent``,
``AuthService.CompleteLogin`` (the session), ``AuditService.RegisterResolution`` -- runs
the same four steps:

1. the checks that change nothing: session, signature, role, freshness, parsing (and the
   input bounds at the top of each servicer);
2. ``intent = await write_ahead(gw, event=..., actor=..., ...)``: the **request record**
   (``outcome="requested"``, the signed envelope or document as ``payload``), appended
   and fsync'd before anything else happens. If the log cannot take it, the log's error
   (``AuditUnavailable`` -> ``UNAVAILABLE``) propagates and *nothing has changed*: no
   request id claimed, no row written;
3. the effect (database transactions; the operations services still record their own
   ``ops.*`` event inside their transaction, before its commit);
4. ``receipt = await intent.done(details)``: the **outcome record** (same event,
   ``outcome="success"``, ``details.request_seq`` = the request record's seq, no payload:
   the request record holds it). Its receipt is the one the answer carries.

If the effect is refused (a :class:`~siogw_api.errors.SiogwError` after step 2), the
interceptor's refusal record is the outcome: :func:`write_ahead` binds the request
record to the call (``CallInfo.details["request_seq"]``, which every refusal record
copies) and takes the envelope off the call (``CallInfo.payload``), so the refusal names
the request by its seq instead of storing the envelope twice.

What a failure may leave: between steps 2 and 4 (the log fails after the request record,
or the process dies) a request record with no outcome. Whether the effect took place is
then in the database; the log shows the request was made, by whom, signed how. A state
change with no record at all cannot happen: the request record is durable first.

Queries are not written ahead (a second fsync per query is not worth its cost): a query's
one record is written after the dispatch and before the answer, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from audit.record import AuditRecord
from server.auditsink import Receipt
from server.interceptors import current_call

#: ``outcome`` of a request record (step 2).
REQUESTED = "requested"
#: ``outcome`` of the record of an effect that took place (step 4).
SUCCESS = "success"
#: The details key naming the request record in its outcome (and refusal) record.
REQUEST_SEQ = "request_seq"


class Recording(Protocol):
    """What :func:`write_ahead` needs of the gateway: ``Gateway.record``."""

    async def record(self, record: AuditRecord) -> Receipt: ...


@dataclass(frozen=True)
class Intent:
    """A durable request record; :meth:`done` writes its outcome."""

    gateway: Recording
    receipt: Receipt
    event: str
    actor: str
    cert_fingerprint: str | None

    @property
    def seq(self) -> int:
        return self.receipt.seq

    async def done(self, details: Mapping[str, Any]) -> Receipt:
        """Record the outcome (``success``) naming the request record; its receipt."""
        return await self.gateway.record(AuditRecord(
            actor=self.actor, event=self.event, outcome=SUCCESS,
            cert_fingerprint=self.cert_fingerprint,
            details={**details, REQUEST_SEQ: self.seq},
        ))


async def write_ahead(
    gateway: Recording,
    *,
    event: str,
    actor: str,
    cert_fingerprint: str | None,
    details: Mapping[str, Any],
    payload: bytes | None,
) -> Intent:
    """Write the request record, durable; raise the log's error if it cannot be written.

    Call it after the checks that change nothing and before the first state change.
    """
    receipt = await gateway.record(AuditRecord(
        actor=actor, event=event, outcome=REQUESTED, cert_fingerprint=cert_fingerprint,
        details=dict(details), payload=payload,
    ))
    info = current_call()
    info.details[REQUEST_SEQ] = receipt.seq
    info.payload = None  # kept whole in the request record; a refusal names it by seq
    return Intent(gateway=gateway, receipt=receipt, event=event, actor=actor,
                  cert_fingerprint=cert_fingerprint)
