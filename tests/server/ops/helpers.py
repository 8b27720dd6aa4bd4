"""Document builders shared by the operations tests."""

from __future__ import annotations

import base64
import datetime as _dt
from typing import Any

import sqlalchemy as sa

from server.ops import PAYLOAD_APPLICATION, PAYLOAD_RESOLUTION, PAYLOAD_TRANSFER, sign_document
from server.store.certificates import fingerprint
from server.store.schema import sessions
from siogw_api.timeutil import astana_iso, now_utc


def application_doc(person: Any, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "iin": person.iin,
        "full_name": person.name,
        "unit": "Analytics department",
        "post": "analyst",
        "phone": "+77010000001",
        "certificate": base64.b64encode(person.cert_der).decode(),
        "requested_role": "agency_user",
        "basis": "financial_monitoring",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def application(person: Any, signer: Any = None, **overrides: Any) -> bytes:
    return sign_document(PAYLOAD_APPLICATION, application_doc(person, **overrides),
                         signer or person.signer)


def transfer(person: Any, user_id: str, order_signed_at: _dt.datetime, signer: Any = None,
             **overrides: Any) -> bytes:
    doc: dict[str, Any] = {"user_id": user_id, "unit": "Investigations", "post": "senior analyst",
                           "order_number": "ORD-17", "order_signed_at": astana_iso(order_signed_at)}
    doc.update(overrides)
    return sign_document(PAYLOAD_TRANSFER, doc, signer or person.signer)


def resolution(signer: Any, number: str, user_ids: list[str], start: _dt.datetime,
               end: _dt.datetime, **overrides: Any) -> bytes:
    doc: dict[str, Any] = {"number": number, "date": start.date().isoformat(),
                           "user_ids": user_ids, "period_start": astana_iso(start),
                           "period_end": astana_iso(end)}
    doc.update(overrides)
    return sign_document(PAYLOAD_RESOLUTION, doc, signer)


# --- the control-plane rows the services write (one table per fact) ----------------------
def open_session(ops: Any, user_id: str, cert_der: bytes, token_hash: str) -> str:
    """A live session of ``user_id`` in the control plane's ``sessions`` table."""
    with ops.ctx.engine.begin() as conn:
        conn.execute(sessions.insert().values(
            token_hash=token_hash, user_id=user_id, cert_fingerprint=fingerprint(cert_der),
            factor="sms", created_at=now_utc(), expires_at=now_utc() + _dt.timedelta(hours=1)))
    return token_hash


def session_ended(ops: Any, token_hash: str) -> bool:
    with ops.ctx.engine.connect() as conn:
        ended = conn.execute(sa.select(sessions.c.ended_at).where(
            sessions.c.token_hash == token_hash)).scalar()
    return ended is not None
