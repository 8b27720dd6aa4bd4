"""The List and the Lists end to end (issue 16, point 6; R18): over TLS gRPC, users with
keys on SoftHSM tokens, on SQLite and PostgreSQL (the ``gateway`` harness).

The agency's list officer (``lena``) publishes signed versions; a provider's compliance
officer (``kira``) screens and monitors clients; a list change re-screens them and puts
new matches into the provider's outbox and an alert before the agency's controller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from server.resources.identifiers import make_bin, make_iin
from server.screening.parse import ListEntry, to_csv, to_xml
from server.store import schema as cp
from signing import dsse
from siogw_api.timeutil import astana_iso, parse_iso
from siogw_api.v1 import admin_pb2, screening_pb2, screening_pb2_grpc
from tests.server.conftest import Harness, bearer, rpc_error, sign
from tests.server.ops_grpc_helpers import add_user, admin, data

LISTED_IIN = make_iin(dt.date(1979, 11, 2), "M", 4321)
TERRORIST = [
    ListEntry("AFM-T-1", "person", LISTED_IIN, ("Жұмабаев Ғалым Серікұлы", "Zhumabaev Galym"),
              "1979-11-02", "KZ", "court decision 2-117/2026"),
    ListEntry("AFM-T-2", "person", "", ("Хасанов Ёкуб",), "1988", "UZ", ""),
    ListEntry("AFM-T-3", "entity", "", ("Фонд «Рассвет»", "Rassvet Foundation"), "", "", ""),
]
PB = screening_pb2
#: kira's provider: the BIN the operator enrolled her with (her screenings' provider)
KIRA_BIN = make_bin(dt.date(2021, 6, 1), 777)


@pytest.fixture(scope="module")
def gw(gateway: Harness, softhsm_store: Any) -> Harness:
    add_user(gateway, softhsm_store, "lena", "list_officer", "+77010000031")
    add_user(gateway, softhsm_store, "kira", "compliance_officer", "+77010000032",
             provider_bin=KIRA_BIN)
    add_user(gateway, softhsm_store, "cora", "controller", "+77010000021")
    gateway.screening = screening_pb2_grpc.ScreeningServiceStub(  # type: ignore[attr-defined]
        gateway.channel)
    if not _current(gateway, "terrorist"):
        publish(gateway, "terrorist", to_csv(TERRORIST))
    return gateway


def stub(gw: Harness) -> Any:
    return gw.screening  # type: ignore[attr-defined]


def publication(list_name: str, content: bytes, fmt: str = "csv", **extra: Any) -> Any:
    values: dict[str, Any] = {"request_id": secrets.token_hex(8), "created_at": astana_iso(),
                              "list_name": list_name, "format": fmt, "content": content,
                              "source_reference": "AFM order 77"}
    values.update(extra)
    return PB.ListPublication(**values)


def publish_request(gw: Harness, pub: Any, who: str = "lena") -> Any:
    env = sign(dsse.PAYLOAD_LIST_PUBLICATION, pub.SerializeToString(deterministic=True),
               gw.users[who].signer)
    return PB.PublishListRequest(envelope=env)


def publish(gw: Harness, list_name: str, content: bytes, fmt: str = "csv",
            who: str = "lena") -> Any:
    req = publish_request(gw, publication(list_name, content, fmt), who)
    return stub(gw).PublishList(req, metadata=bearer(gw.session(who, consent=False)))


def _current(gw: Harness, list_name: str) -> Any:
    lists = stub(gw).GetLists(PB.GetListsRequest(),
                              metadata=bearer(gw.session("lena", consent=False)))
    return next((v for v in lists.lists if v.list_name == list_name), None)


def screen(gw: Harness, who: str = "kira", **subject: str) -> Any:
    return stub(gw).Screen(PB.ScreenRequest(subject=PB.ScreeningSubject(**subject),
                                           client_ref="C-" + secrets.token_hex(3)),
                           metadata=bearer(gw.session(who, consent=False)))


def records(gw: Harness, event: str) -> list[Any]:
    return [r for r in gw.audit_records() if r.event == event]


# --- publishing ------------------------------------------------------------------------------
def test_publish_numbers_signs_digests_and_writes_ahead(gw: Harness) -> None:
    content = to_xml(TERRORIST[:2], "proliferation")
    before = _current(gw, "proliferation")
    resp = publish(gw, "proliferation", content, "xml")
    v = resp.version
    assert v.list_name == "proliferation" and v.entries == 2 and v.format == "xml"
    assert v.version == (before.version + 1 if before else 1)
    assert v.digest == hashlib.sha256(content).hexdigest()
    assert v.published_by == "lena" and v.source_reference == "AFM order 77"
    assert _current(gw, "proliferation") == v
    # written ahead: the request record keeps the signed envelope, the outcome names it
    request = records(gw, "screening.publish")
    outcome = next(r for r in request if r.seq == resp.receipt.seq)
    assert outcome.outcome == "success" and outcome.details["version"] == v.version
    ahead = next(r for r in request if r.seq == outcome.details["request_seq"])
    assert ahead.outcome == "requested" and ahead.payload
    # the version row keeps the envelope and the request record's seq
    with gw.gateway.store.engine.connect() as conn:
        row = conn.execute(sa.select(cp.screening_list_versions).where(
            cp.screening_list_versions.c.list_name == "proliferation",
            cp.screening_list_versions.c.version == v.version)).one()
    assert row.request_seq == ahead.seq and bytes(row.envelope) == ahead.payload


def test_a_bad_file_is_refused_precisely_and_nothing_is_stored(gw: Harness) -> None:
    before = _current(gw, "terrorist")
    bad = to_csv(TERRORIST).replace(b"1979-11-02", b"1979-13-02")
    code, reason, message = rpc_error(lambda: publish(gw, "terrorist", bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and reason == "INVALID_LIST_FILE"
    assert "line 2 (entry AFM-T-1): birth_date must be YYYY-MM-DD or YYYY" in message
    code, reason, _ = rpc_error(lambda: publish(gw, "sanctions", to_csv(TERRORIST)))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_LIST")
    assert _current(gw, "terrorist") == before


def test_a_replayed_publication_is_refused(gw: Harness) -> None:
    req = publish_request(gw, publication("proliferation", to_csv(TERRORIST[2:])))
    token = bearer(gw.session("lena", consent=False))
    stub(gw).PublishList(req, metadata=token)
    code, reason, _ = rpc_error(lambda: stub(gw).PublishList(req, metadata=token))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REPLAY")


def test_a_publication_signed_with_another_key_is_refused(gw: Harness) -> None:
    env = sign(dsse.PAYLOAD_LIST_PUBLICATION,
               publication("terrorist", to_csv(TERRORIST)).SerializeToString(),
               gw.users["kira"].signer)
    code, reason, _ = rpc_error(lambda: stub(gw).PublishList(
        PB.PublishListRequest(envelope=env), metadata=bearer(gw.session("lena", consent=False))))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_NOT_REGISTERED")


@pytest.mark.parametrize("who", ["alice", "olga", "kira"])
def test_only_the_list_officer_publishes(gw: Harness, who: str) -> None:
    token = bearer(gw.session(who, consent=who == "alice"))
    req = publish_request(gw, publication("terrorist", to_csv(TERRORIST)), who)
    code, reason, _ = rpc_error(lambda: stub(gw).PublishList(req, metadata=token))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


@pytest.mark.parametrize("who", ["lena", "alice", "olga"])
def test_only_a_compliance_officer_screens(gw: Harness, who: str) -> None:
    code, reason, _ = rpc_error(lambda: screen(gw, who, iin_bin=LISTED_IIN))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


# --- screening -------------------------------------------------------------------------------
def test_exact_iin_is_a_match_with_the_list_version(gw: Harness) -> None:
    result = screen(gw, iin_bin=LISTED_IIN)
    assert result.outcome == PB.SCREENING_OUTCOME_MATCH
    (m,) = [m for m in result.matches if m.list_name == "terrorist"]
    assert (m.entry_ref, m.basis, m.outcome) == ("AFM-T-1", "iin_bin",
                                                 PB.SCREENING_OUTCOME_MATCH)
    current = _current(gw, "terrorist")
    assert m.version == current.version
    assert any(v.list_name == "terrorist" and v.digest == current.digest
               for v in result.versions)
    # kept five years at least, stored with its retention date
    assert parse_iso(result.retain_until) >= parse_iso(result.screened_at) + dt.timedelta(
        days=5 * 365)
    with gw.gateway.store.engine.connect() as conn:
        row = conn.execute(sa.select(cp.screening_results).where(
            cp.screening_results.c.id == result.result_id)).one()
    assert row.outcome == "match" and row.provider == KIRA_BIN


def test_cyrillic_entry_matches_a_latin_name_with_the_birth_date(gw: Harness) -> None:
    result = screen(gw, name="Zhumabayev Galym Serikuly", birth_date="1979-11-02")
    assert result.outcome == PB.SCREENING_OUTCOME_MATCH
    assert result.matches[0].entry_ref == "AFM-T-1"
    assert result.matches[0].basis == "name+birth_date"


def test_a_name_alone_is_a_possible_match(gw: Harness) -> None:
    result = screen(gw, name="Khasanov Yokub")
    assert result.outcome == PB.SCREENING_OUTCOME_POSSIBLE_MATCH
    assert result.matches[0].entry_ref == "AFM-T-2"


def test_someone_else_is_no_match(gw: Harness) -> None:
    result = screen(gw, name="Иванова Мария", birth_date="1990-05-05",
                    iin_bin=make_iin(dt.date(1990, 5, 5), "F", 11))
    assert result.outcome == PB.SCREENING_OUTCOME_NO_MATCH and not result.matches
    assert result.versions  # says which versions it was screened against


def test_a_subject_without_iin_or_name_is_refused(gw: Harness) -> None:
    code, reason, message = rpc_error(lambda: screen(gw, birth_date="1980-01-01"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SUBJECT")
    assert "IIN/BIN or a name" in message


# --- monitoring and re-screening -------------------------------------------------------------
def test_a_list_change_rescreens_and_raises_a_new_match_into_the_outbox(gw: Harness) -> None:
    token = bearer(gw.session("kira", consent=False))
    client = "CL-" + secrets.token_hex(4)
    watched = stub(gw).Watch(PB.WatchRequest(client_ref=client, subject=PB.ScreeningSubject(
        name="Bekova Aisulu", birth_date="1991-07-21")), metadata=token)
    assert watched.outcome == PB.SCREENING_OUTCOME_NO_MATCH
    stub(gw).ReadOutbox(PB.ReadOutboxRequest(), metadata=token)  # empty it

    entry = ListEntry("FT-" + secrets.token_hex(3), "person", "", ("Бекова Айсулу",),
                      "1991-07-21", "KZ", "")
    resp = publish(gw, "ft_extremism", to_csv([*TERRORIST[1:], entry]))
    assert resp.rescreened >= 1 and resp.new_matches >= 1

    items = stub(gw).ReadOutbox(PB.ReadOutboxRequest(), metadata=token).items
    (item,) = [i for i in items if i.client_ref == client]
    assert item.entry_ref == entry.ref and item.list_name == "ft_extremism"
    assert item.version == resp.version.version and item.outcome == PB.SCREENING_OUTCOME_MATCH
    # read once: the next read has nothing new for this client
    again = stub(gw).ReadOutbox(PB.ReadOutboxRequest(), metadata=token).items
    assert client not in {i.client_ref for i in again}

    # flagged to the agency: an alert the controller reads
    alerts = data(admin(gw, "cora", list_alerts=admin_pb2.ListAlerts(user_id="kira")))
    assert any(a["rule"] == "lists.match" and client in a["summary"]
               for a in alerts["alerts"])

    # the same entry in the next version is not new: not flagged twice
    resp2 = publish(gw, "ft_extremism", to_csv([entry]))
    assert resp2.version.version == resp.version.version + 1
    items = stub(gw).ReadOutbox(PB.ReadOutboxRequest(), metadata=token).items
    assert client not in {i.client_ref for i in items}
    # ... but it was screened again, and that result is kept
    with gw.gateway.store.engine.connect() as conn:
        rows = conn.execute(sa.select(cp.screening_results.c.trigger,
                                      cp.screening_results.c.outcome).where(
            cp.screening_results.c.client_ref == client)).all()
    assert sorted(rows) == [("rescreen", "match"), ("rescreen", "match"),
                            ("watch", "no_match")]


def test_subjects_of_a_registered_source_are_rescreened(gw: Harness) -> None:
    from server.screening import SourcedSubject
    from server.screening.match import Subject

    service = gw.gateway.screening
    ref = "FM1-" + secrets.token_hex(4)
    service.register_subject_source(lambda: [SourcedSubject(
        KIRA_BIN, ref, Subject(name="Rassvet Foundation"))])
    resp = publish(gw, "terrorist", to_csv(TERRORIST))
    assert resp.new_matches >= 1
    items = stub(gw).ReadOutbox(PB.ReadOutboxRequest(),
                                metadata=bearer(gw.session("kira", consent=False))).items
    assert any(i.client_ref == ref and i.entry_ref == "AFM-T-3" for i in items)


def test_housekeeping_never_deletes_screening_results(gw: Harness) -> None:
    result = screen(gw, iin_bin=LISTED_IIN)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=20 * 365)
    gw.gateway.store.prune(clock_skew_seconds=300, now=far)
    with gw.gateway.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cp.screening_results)
                            .where(cp.screening_results.c.id == result.result_id)
                            ).scalar_one() == 1
