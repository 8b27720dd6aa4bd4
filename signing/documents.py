"""Signed JSON documents: a person's statement signed on their token (DSSE JSON).

Applications, transfer edits, resolutions and refusals are compact, key-sorted JSON
objects carried as the payload of a DSSE envelope (:mod:`signing.dsse`) whose signatures
carry the signer's certificate. This module builds and signs them; it is the one source
for the gateway (``server.ops.documents``, which verifies them) and for the client
library (``clients``), which signs a prosecutor's resolution on the caller's token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from signing.api import Signer
from signing.dsse import PAYLOAD_REFUSAL as _PAYLOAD_REFUSAL
from signing.dsse import sign_envelope

PAYLOAD_APPLICATION = "application/vnd.siogw.application+json"
PAYLOAD_TRANSFER = "application/vnd.siogw.transfer+json"
PAYLOAD_RESOLUTION = "application/vnd.siogw.resolution+json"
PAYLOAD_REFUSAL = _PAYLOAD_REFUSAL


def dumps(doc: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON (the payloads people sign)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(payload_type: str, doc: Mapping[str, Any], signer: Signer) -> bytes:
    """DSSE JSON of ``doc`` (compact sorted JSON) signed by ``signer``."""
    return sign_envelope(payload_type, dumps(doc), signer).to_json()


def resolution_document(
    number: str, date: str, user_ids: Iterable[str], period_start: str, period_end: str
) -> dict[str, Any]:
    """A prosecutor's resolution (§22): its number, its date (``YYYY-MM-DD``), the users
    whose queries it covers and the period (ISO 8601 with offset, end exclusive). The
    gateway checks every field when it registers the signed document."""
    return {"number": number, "date": date, "user_ids": list(user_ids),
            "period_start": period_start, "period_end": period_end}
