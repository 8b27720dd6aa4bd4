"""FM-1 parties re-screened when a list changes, end to end (issue 16, point 6; R18): over
TLS gRPC with users' keys on SoftHSM tokens, on SQLite and PostgreSQL (the ``gateway``
harness).

A provider's compliance officer (``kora``, enrolled by the operator with the provider's
BIN) submits an FM-1 whose client is on no list; the agency's list officer (``lena``)
then publishes a version of the List naming that client; the publication re-screens
every party of every stored message, flags the message (``list_match``, which an agency
analyst, ``alice``, selects with ``list_match_only``), raises an alert naming the officer
before the agency's controllers and puts the match into the provider's screening outbox —
that provider's only. The health service reports the two
services of the channel.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.fm1 import sign_fm1
from server.assembly import service_names
from server.reporting.samples import OTHER_BIN, PROVIDER_BIN, sample
from server.resources.identifiers import make_iin
from server.screening.parse import ListEntry, to_csv
from server.status import ALL_SERVICES
from signing import dsse
from siogw_api.timeutil import astana_iso
from siogw_api.v1 import (
    admin_pb2,
    reporting_pb2,
    reporting_pb2_grpc,
    screening_pb2,
    screening_pb2_grpc,
)
from tests.server.conftest import Harness, bearer, sign
from tests.server.ops_grpc_helpers import add_user, admin, data
from tests.server.reporting.test_reporting_grpc import enrol

PB = screening_pb2


class Channel:
    def __init__(self, gw: Harness) -> None:
        self.gw = gw
        self.reporting = reporting_pb2_grpc.ReportingServiceStub(gw.channel)
        self.screening = screening_pb2_grpc.ScreeningServiceStub(gw.channel)

    def token(self, name: str) -> list[tuple[str, str]]:
        return bearer(self.gw.session(name, consent=False))

    def submit(self, name: str, msg: dict[str, Any]) -> reporting_pb2.Fm1Receipt:
        receipt: reporting_pb2.Fm1Receipt = self.reporting.Submit(
            sign_fm1(msg, self.gw.users[name].signer), metadata=self.token(name))
        return receipt

    def publish(self, list_name: str, entries: list[ListEntry]) -> Any:
        pub = PB.ListPublication(
            request_id=secrets.token_hex(8), created_at=astana_iso(), list_name=list_name,
            format="csv", content=to_csv(entries), source_reference="AFM order 91")
        env = sign(dsse.PAYLOAD_LIST_PUBLICATION, pub.SerializeToString(deterministic=True),
                   self.gw.users["lena"].signer)
        return self.screening.PublishList(PB.PublishListRequest(envelope=env),
                                          metadata=self.token("lena"))

    def flagged(self, name: str, **flt: Any) -> dict[str, reporting_pb2.Fm1Status]:
        """Messages ``name`` sees with the list-match filter, by message id."""
        out: dict[str, reporting_pb2.Fm1Status] = {}
        after = 0
        while True:
            page = self.reporting.ListMessages(reporting_pb2.ListFm1Request(
                list_match_only=True, after_id=after, **flt), metadata=self.token(name))
            out.update((m.message_id, m) for m in page.messages)
            if not page.has_more:
                return out
            after = page.next_after_id

    def outbox(self, name: str) -> list[Any]:
        return list(self.screening.ReadOutbox(PB.ReadOutboxRequest(include_read=True),
                                              metadata=self.token(name)).items)


@pytest.fixture(scope="module")
def channel(gateway: Harness, softhsm_store: Any) -> Channel:
    enrol(gateway, softhsm_store, "kora", "compliance_officer", "+77010000051", PROVIDER_BIN)
    enrol(gateway, softhsm_store, "zhan", "compliance_officer", "+77010000052", OTHER_BIN)
    add_user(gateway, softhsm_store, "lena", "list_officer", "+77010000053")
    add_user(gateway, softhsm_store, "cora", "controller", "+77010000054")
    return Channel(gateway)


def _client(msg: dict[str, Any], iin: str, name: str, born: str) -> dict[str, Any]:
    msg["parties"][0].update(idn=iin, name=name, birth_date=born)
    return msg


def test_a_party_put_on_a_list_later_flags_its_message_and_the_providers_outbox(
    channel: Channel,
) -> None:
    born = _dt.date(1983, 4, 9)
    iin = make_iin(born, "M", secrets.randbelow(9000) + 1000)
    msg = _client(sample("suspicious_before"), iin, "Сапаров Ерлан Маратович",
                  born.isoformat())
    receipt = channel.submit("kora", msg)
    assert not receipt.status.list_match
    # another provider's message whose parties are on no list
    other = channel.submit("zhan", _client(
        sample("threshold", provider_bin=OTHER_BIN),
        make_iin(_dt.date(1990, 1, 2), "F", secrets.randbelow(9000) + 1000),
        "Нуржанова Салтанат", "1990-01-02"))
    assert msg["message_id"] not in channel.flagged("alice")
    before = {i.client_ref for i in channel.outbox("kora")}

    # the List gains the client (by IIN, and the name in Latin): a new version
    ref = "AFM-T-" + secrets.token_hex(3)
    entry = ListEntry(ref, "person", iin, ("Saparov Erlan Maratovich",), born.isoformat(),
                      "KZ", "court decision 2-201/2026")
    resp = channel.publish("terrorist", [entry])
    assert resp.rescreened >= 6  # every party of both stored messages
    assert resp.new_matches >= 1

    # the agency's analysts see the message flagged with the list-match filter ...
    flagged = channel.flagged("alice")
    assert msg["message_id"] in flagged
    status = flagged[msg["message_id"]]
    assert status.list_match and status.provider_bin == PROVIDER_BIN
    assert other.status.message_id not in flagged
    assert msg["message_id"] in channel.flagged("alice", provider_bin=PROVIDER_BIN)
    assert not channel.flagged("alice", provider_bin=OTHER_BIN)
    # ... and so does the officer, in their own provider's messages
    assert channel.flagged("kora")[msg["message_id"]].list_match

    # the match is in the provider's screening outbox, naming the party and the version
    client_ref = f"fm1:{msg['message_id']}:client"
    items = [i for i in channel.outbox("kora") if i.client_ref not in before]
    (item,) = [i for i in items if i.client_ref == client_ref]
    assert (item.list_name, item.entry_ref, item.version) == (
        "terrorist", ref, resp.version.version)
    assert item.outcome == PB.SCREENING_OUTCOME_MATCH
    # the other provider's officer sees nothing of it
    assert client_ref not in {i.client_ref for i in channel.outbox("zhan")}

    # flagged to the agency: an alert before its controllers naming the submitting officer
    alerts = data(admin(channel.gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id="kora")))
    assert any(a["rule"] == "lists.match" and client_ref in a["summary"]
               for a in alerts["alerts"])

    # the re-screening is an audit record naming the flag
    rescreened = [r for r in channel.gw.audit_records() if r.event == "screening.rescreened"
                  and r.details.get("version") == resp.version.version
                  and r.details.get("list_name") == "terrorist"]
    assert any([client_ref, ref, "match"] in r.details["flagged"] for r in rescreened)

    # the next version with the same entry re-screens but flags nothing new
    again = channel.publish("terrorist", [entry])
    assert again.version.version == resp.version.version + 1
    assert [i.client_ref for i in channel.outbox("kora")].count(client_ref) == 1


def test_the_channels_services_report_their_health(channel: Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel.gw.channel)
    for service in ("siogw.v1.ReportingService", "siogw.v1.ScreeningService"):
        got = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert got.status == health_pb2.HealthCheckResponse.SERVING, service


def test_every_siogw_service_is_in_the_health_list() -> None:
    served = {n for n in service_names() if n.startswith("siogw.v1.")}
    assert served == set(ALL_SERVICES)
