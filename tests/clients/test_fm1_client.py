"""FM-1 reporting through the client library (sync and asyncio) and ``siogw client fm1``
against the real gateway of ``client_world``: a compliance officer submits, the receipt
is verified offline (library, ``siogw verify``, ``siogw audit prove``), status, list and
show answer, a duplicate carries the original receipt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.errors import ClientError
from server.reporting.samples import sample
from siogw import demo
from siogw_api.v1 import reporting_pb2

from .conftest import ClientWorld

ROOT = Path(__file__).resolve().parents[2]


def test_submit_status_list_show_and_a_duplicate(
    client_world: ClientWorld, connect: Callable[..., Any]
) -> None:
    officer = client_world.person("kora")
    msg = sample("suspicious_after", provider_bin=demo.DEMO_PROVIDER_BIN)
    with connect() as client:
        demo.login(client_world.world, client, officer)
        done = client.fm1_submit(msg)
        st = done.response.status
        assert (st.message_id, st.kind, st.late) == (msg["message_id"], "suspicious_after",
                                                     False)
        assert done.verified.receipt.seq == st.receipt.seq
        assert done.verified.acknowledgement["submitted_by"] == "kora"
        assert client.fm1_status(msg["message_id"]).receipt.seq == st.receipt.seq
        page = client.fm1_list(reporting_pb2.ListFm1Request())
        assert msg["message_id"] in {m.message_id for m in page.messages}
        shown = client.fm1_show(msg["message_id"])
        assert json.loads(shown.message_json)["kind"] == "suspicious_after"
        with pytest.raises(ClientError) as ei:
            client.fm1_submit(msg)
        assert ei.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert ei.value.reason == "FM1_DUPLICATE"
        assert ei.value.receipt is not None and ei.value.receipt.seq == st.receipt.seq


def siogw(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "siogw", *args], cwd=ROOT,
                          env={**os.environ, "SIOGW_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)


def test_the_cli_submits_and_the_receipt_verifies_offline(
    client_world: ClientWorld, tmp_path: Path
) -> None:
    from clients.session import write_settings

    world = client_world.world
    home = tmp_path / "home"
    home.mkdir()
    write_settings(home, world.client_settings(client_world.port))
    officer = client_world.person("kora")
    r = siogw(home, "client", "login", "--user", "kora", "--key", officer.key_uri,
              "--cert", str(officer.cert_file), "--sms-outbox",
              str(client_world.home / "sms-outbox.jsonl"))
    assert r.returncode == 0, r.stderr
    msg = sample("suspicious_before", provider_bin=demo.DEMO_PROVIDER_BIN)
    (tmp_path / "fm1.json").write_text(json.dumps(msg, ensure_ascii=False))
    saved = tmp_path / "receipt"
    r = siogw(home, "client", "fm1", "submit", str(tmp_path / "fm1.json"), "--save", str(saved))
    assert r.returncode == 0, r.stderr
    assert f"accepted: FM-1 {msg['message_id']}" in r.stdout and "on time" in r.stdout
    assert "verified offline" in r.stdout
    # offline, with nothing but files: the auditor's tools
    r = siogw(home, "audit", "prove", "--bundle", str(saved / "bundle.json"), "--keys",
              str(saved / "audit-key.pem"))
    assert r.returncode == 0 and r.stdout.startswith("OK: seq"), r.stderr
    r = siogw(home, "verify", str(saved / "ack.json"), "--trust", str(world.ca_file),
              "--signer-cert", str(world.gateway_cert))
    assert r.returncode == 0, r.stderr + r.stdout
    # a bad file is refused before anything is signed
    (tmp_path / "bad.json").write_text("[1]")
    r = siogw(home, "client", "fm1", "submit", str(tmp_path / "bad.json"))
    assert r.returncode != 0 and "one JSON object" in r.stderr
    # a refused message names its field
    del msg["grounds"]
    msg["message_id"] += "-2"
    (tmp_path / "fm1b.json").write_text(json.dumps(msg))
    r = siogw(home, "client", "fm1", "submit", str(tmp_path / "fm1b.json"))
    assert r.returncode != 0 and "grounds" in r.stderr
    r = siogw(home, "client", "fm1", "list", "--json")
    assert r.returncode == 0, r.stderr
    ids = {m["message_id"] for m in json.loads(r.stdout)["messages"]}
    assert msg["message_id"].removesuffix("-2") in ids
    r = siogw(home, "client", "fm1", "status", msg["message_id"].removesuffix("-2"))
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["message_id"] == msg["message_id"].removesuffix("-2")
    assert status["receipt"]["seq"]
