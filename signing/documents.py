"""The signed documents people send to the gateway: DSSE JSON envelopes over compact,
key-sorted JSON (:func:`dumps`), signed on the signer's token.

One source for what each document holds, shared by the gateway (``server.ops`` verifies
and reads them) and by the client library (``clients``, which builds and signs them on
the caller's token and may not import the server):

* an application for access (R3), signed by the applicant: :func:`application_document`;
* a transfer edit (R8), signed by the user it moves: :func:`transfer_document`;
* a refusal of an application (R3), signed by the operator: :func:`refusal_document`;
* a prosecutor's resolution (R16): ``PAYLOAD_RESOLUTION``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from signing.api import Signer
from signing.dsse import PAYLOAD_REFUSAL as _DSSE_REFUSAL
from signing.dsse import sign_envelope
from siogw_api.errors import InputError
from siogw_api.timeutil import astana_iso

PAYLOAD_APPLICATION = "application/vnd.siogw.application+json"
PAYLOAD_TRANSFER = "application/vnd.siogw.transfer+json"
PAYLOAD_RESOLUTION = "application/vnd.siogw.resolution+json"
PAYLOAD_REFUSAL = _DSSE_REFUSAL
#: The applicant's proof of holding the application's certificate (a protobuf
#: ``siogw.v1.ApplicantProof``, not JSON), for the applicant's status and refusal calls.
PAYLOAD_APPLICANT_PROOF = "application/vnd.siogw.applicant-proof+protobuf"

#: The longest refusal reason a refusal document carries (longer ones are cut).
MAX_REFUSAL_REASON = 1000


def dumps(doc: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON (the payloads documents sign)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(payload_type: str, doc: Mapping[str, Any], signer: Signer) -> bytes:
    """DSSE JSON of ``doc`` (compact sorted JSON) signed by ``signer``."""
    return sign_envelope(payload_type, dumps(doc), signer).to_json()


def refusal_document(
    application_id: str, iin: str, reason: str, refused_by: str, refused_at: _dt.datetime
) -> dict[str, Any]:
    """What a refusal signs: the application, the applicant's IIN, the reason, who refused
    and when; the applicant may file a corrected application."""
    reason = reason.strip()
    if not reason:
        raise InputError("a refusal needs a reason (false, incomplete or stale data)")
    return {"application_id": application_id, "iin": iin,
            "reason": reason[:MAX_REFUSAL_REASON], "refused_by": refused_by,
            "refused_at": astana_iso(refused_at), "corrections_allowed": True}


def transfer_document(
    user_id: str, unit: str, post: str, order_number: str, order_signed_at: _dt.datetime
) -> dict[str, Any]:
    """What a transfer edit signs: the user's new unit and post under an order."""
    return {"user_id": user_id, "unit": unit, "post": post, "order_number": order_number,
            "order_signed_at": astana_iso(order_signed_at)}


def application_document(
    *, iin: str, full_name: str, phone: str, certificate_der: bytes, requested_role: str,
    basis: str = "", unit: str = "", post: str = "", corrects: str | None = None,
) -> dict[str, Any]:
    """What an application for access signs (the certificate as base64 DER)."""
    doc: dict[str, Any] = {
        "iin": iin, "full_name": full_name, "unit": unit, "post": post, "phone": phone,
        "certificate": base64.b64encode(certificate_der).decode("ascii"),
        "requested_role": requested_role, "basis": basis,
    }
    if corrects:
        doc["corrects"] = corrects
    return doc


def resolution_document(
    number: str, date: str, user_ids: Iterable[str], period_start: str, period_end: str
) -> dict[str, Any]:
    """A prosecutor's resolution (§22): its number, its date (``YYYY-MM-DD``), the users
    whose queries it covers and the period (ISO 8601 with offset, end exclusive). The
    gateway checks every field when it registers the signed document."""
    return {"number": number, "date": date, "user_ids": list(user_ids),
            "period_start": period_start, "period_end": period_end}
