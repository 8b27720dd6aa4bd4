"""The List and the Lists through the client library (both clients) and ``siogw client
lists`` (subprocesses), against a real gateway over TLS with SoftHSM tokens."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.errors import ClientError
from server.resources.identifiers import make_iin
from server.screening.parse import ListEntry, to_csv, to_xml
from siogw_api.v1 import screening_pb2

from .conftest import CLIENT_KINDS, ClientWorld, ServerThread

IIN = make_iin(dt.date(1985, 4, 9), "F", 77)
ENTRIES = [ListEntry("L-1", "person", IIN, ("Сейітова Динара",), "1985-04-09", "KZ", ""),
           ListEntry("L-2", "person", "", ("Пак Сергей", "Pak Sergey"), "1970", "", "")]


@pytest.fixture(scope="module")
def lists_world(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[ClientWorld]:
    from server.config import load_config
    from siogw import demo

    home = tmp_path_factory.mktemp("lists-gw")
    world = demo.build_world(
        home,
        people=(demo.DEFAULT_PEOPLE[0],
                ("lena", "Lena Lists", "list_officer", "+77010000041"),
                ("kira", "Kira Compliance", "compliance_officer", "+77010000042")),
        token_store=softhsm_store, label_prefix=f"ls{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    config = load_config(home, env={}, overrides={"limits": {
        "logins_per_peer_per_minute": 100_000, "logins_per_user_per_minute": 100_000}})
    demo.bootstrap_operator(world, world.people["operator"])
    server = ServerThread(config)
    port = server.start()
    try:
        demo.bootstrap_users(world, port)
        yield ClientWorld(world=world, port=port)
    finally:
        server.stop()


def connect(cw: ClientWorld, kind: str, name: str) -> Any:
    from siogw import demo

    w = cw.world
    client = CLIENT_KINDS[kind](f"127.0.0.1:{cw.port}", ca_file=w.ca_file,
                                gateway_certificate=w.gateway_cert, server_name=demo.TLS_NAME)
    demo.login(w, client, cw.person(name))
    return client


@pytest.mark.parametrize("kind", sorted(CLIENT_KINDS))
def test_publish_screen_watch_and_outbox_through_the_library(
    lists_world: ClientWorld, kind: str
) -> None:
    with connect(lists_world, kind, "kira") as kira:
        client_ref = f"K-{kind}"
        watched = kira.watch(client_ref, name="Pak Sergei", birth_date="1970-02-02")
        with connect(lists_world, kind, "lena") as lena:
            resp = lena.publish_list("terrorist", to_xml(ENTRIES), "xml",
                                     source_reference="AFM order 5")
            assert resp.version.entries == 2 and resp.receipt.seq > 0
            assert [v.list_name for v in lena.lists().lists] == ["terrorist"]
            with pytest.raises(ClientError) as err:
                lena.screen(iin_bin=IIN)
            assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        result = kira.screen(iin_bin=IIN)
        assert result.outcome == screening_pb2.SCREENING_OUTCOME_MATCH
        assert result.matches[0].entry_ref == "L-1"
        if watched.outcome == screening_pb2.SCREENING_OUTCOME_NO_MATCH:
            # the first publication of this run raised the watched client's match
            items = kira.screening_outbox(include_read=True).items
            assert any(i.client_ref == client_ref and i.entry_ref == "L-2" for i in items)


def siogw(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIOGW_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "siogw", "client", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=home)


def cli_login(cw: ClientWorld, home: Path, name: str) -> None:
    person = cw.person(name)
    r = siogw(home, "login", "--user", person.user_id, "--key", person.key_uri,
              "--cert", str(person.cert_file), "--sms-outbox",
              str(cw.home / "sms-outbox.jsonl"))
    assert r.returncode == 0, r.stderr


def test_the_lists_commands(lists_world: ClientWorld,
                            tmp_path_factory: pytest.TempPathFactory) -> None:
    from clients.session import write_settings

    lena_home = tmp_path_factory.mktemp("cli-lena")
    kira_home = tmp_path_factory.mktemp("cli-kira")
    for home in (lena_home, kira_home):
        write_settings(home, lists_world.world.client_settings(lists_world.port))
    cli_login(lists_world, lena_home, "lena")
    cli_login(lists_world, kira_home, "kira")

    r = siogw(kira_home, "lists", "watch", "CLI-1", "--name", "Seitova Dinara",
              "--birth-date", "1985-04-09")
    assert r.returncode == 0, r.stderr
    file = lena_home / "ft.csv"
    file.write_bytes(to_csv(ENTRIES))
    r = siogw(lena_home, "lists", "publish", str(file), "--list", "ft_extremism",
              "--source-reference", "AFM order 6")
    assert r.returncode == 0, r.stderr
    published = json.loads(r.stdout)
    assert published["version"]["list_name"] == "ft_extremism"
    assert published["rescreened"] >= 1 and published["new_matches"] >= 1

    r = siogw(kira_home, "lists", "show")
    assert r.returncode == 0, r.stderr
    assert "ft_extremism" in {v["list_name"] for v in json.loads(r.stdout)["lists"]}
    r = siogw(kira_home, "lists", "screen", "--name", "Сейітова Динара",
              "--birth-date", "1985-04-09")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outcome"] == "SCREENING_OUTCOME_MATCH"
    r = siogw(kira_home, "lists", "outbox")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)["items"]
    assert any(i["client_ref"] == "CLI-1" and i["list_name"] == "ft_extremism" for i in items)

    # the list officer may not screen; the refusal is a one-line error, exit non-zero
    r = siogw(lena_home, "lists", "screen", "--iin", IIN)
    assert r.returncode != 0 and "Traceback" not in r.stderr
