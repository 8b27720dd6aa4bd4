"""Valid FM-1 messages of every kind, built fresh for "now": the reporting tests (which
change one field to see it refused), the client's tests and ``bench/fm1.py`` use them.

Not test code: the bench imports nothing from ``tests/`` (issue 16). The identifiers
carry valid check digits (:mod:`server.resources.identifiers`); nothing here is read by
the gateway itself.
"""

from __future__ import annotations

import copy
import datetime as _dt
import secrets
from typing import Any

from server.resources.identifiers import make_bin, make_iin
from siogw_api.timeutil import astana_iso, now_utc

PROVIDER_BIN = make_bin(_dt.date(2019, 3, 1), 1234)
OTHER_BIN = make_bin(_dt.date(2020, 7, 1), 4321)
CLIENT_IIN = make_iin(_dt.date(1985, 5, 17), "M", 42)
OWNER_IIN = make_iin(_dt.date(1979, 11, 2), "F", 7)
CLIENT_BIN = make_bin(_dt.date(2015, 1, 1), 555)

KINDS = ("suspicious_before", "suspicious_after", "threshold", "refusal_relations",
         "refusal_operation", "termination", "freeze")


def sample(kind: str, *, now: _dt.datetime | None = None, message_id: str | None = None,
           provider_bin: str = PROVIDER_BIN, crypto: bool = False) -> dict[str, Any]:
    """A valid message of ``kind``: the decision an hour ago, the operation two hours ago."""
    now = now or now_utc()
    op_at = now - _dt.timedelta(hours=2)
    decided = now - _dt.timedelta(hours=1)
    msg: dict[str, Any] = {
        "message_id": message_id or f"FM1-{secrets.token_hex(6)}",
        "provider_bin": provider_bin,
        "kind": kind,
        "parties": [
            {"role": "client", "idn": CLIENT_IIN, "name": "Иванов Иван Иванович",
             "birth_date": "1985-05-17", "residence": "KZ"},
            {"role": "beneficial_owner", "idn": OWNER_IIN, "name": "Serikova Aigul",
             "residence": "KZ"},
            {"role": "representative", "name": "John Smith", "residence": "GB"},
        ],
        "text": "details in the provider's case file",
    }
    operation: dict[str, Any] = {"date": astana_iso(op_at), "amount": "1500000.00",
                                 "currency": "KZT", "description": "exchange of USDT to KZT"}
    if crypto:
        operation = {"date": astana_iso(op_at), "description": "BTC withdrawal",
                     "crypto": {"asset": "BTC", "amount": "0.12345678",
                                "from_wallets": ["bc1qexampleaddressfrom0000000000"],
                                "to_wallets": ["bc1qexampleaddressto00000000000"],
                                "tx_hash": "a" * 64}}
    if kind == "suspicious_before":
        operation["date"] = astana_iso(decided + _dt.timedelta(minutes=30))
        msg.update(operation=operation, decided_at=astana_iso(decided),
                   grounds=["typology 1.2: structuring"])
    elif kind == "suspicious_after":
        msg.update(operation=operation, decided_at=astana_iso(decided),
                   recognised_at=astana_iso(decided), grounds=["unusual volume"])
    elif kind == "threshold":
        msg.update(operation=operation, decided_at=astana_iso(decided))
    elif kind == "refusal_relations":
        msg.update(decided_at=astana_iso(decided), grounds=["identification impossible"])
    elif kind == "refusal_operation":
        msg.update(operation=operation, decided_at=astana_iso(decided),
                   grounds=["source of funds not shown"])
    elif kind == "termination":
        msg.update(decided_at=astana_iso(decided),
                   relationship_ended_on=astana_iso(decided)[:10],
                   grounds=["suspicion of ML/TF"])
    elif kind == "freeze":
        msg.update(operation=operation, decided_at=astana_iso(decided),
                   grounds=["client on the List"],
                   list={"name": "terrorist", "version": "2026-12-01"})
    else:  # pragma: no cover
        raise ValueError(kind)
    return copy.deepcopy(msg)
