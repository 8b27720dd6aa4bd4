"""Issue 15, point 4: the controller's Reports and the prosecutor's trail, end to end.

A real gateway (TLS gRPC, SoftHSM tokens, the synthetic dataset) on SQLite and on
PostgreSQL; every step is ``siogw client …`` run as a subprocess, each person with a
home of their own:

* the analyst sends an answered query and a refused one (its task is a spreadsheet
  formula), and may not read Reports (nor export them: no file is left);
* the controller lists the queries and sees the justification, the subject, the
  parameters and the refusal reason; filters; proves the rows in the audit log; exports
  the CSV, where the formula is neutralised; may not read a prosecutor's trail;
* the prosecutor registers a resolution signed on their token and reads the trail within
  its scope, and is refused outside it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from siogw import demo

from .conftest import ServerThread

pytestmark = pytest.mark.slow

FORMULA = '=HYPERLINK("http://x")'


@dataclass
class ReportsWorld:
    world: Any
    port: int
    homes: dict[str, Path]
    db_url: str = ""

    def run(self, who: str, *args: str,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SIOGW_HOME": str(self.homes[who])}
        return subprocess.run(
            [sys.executable, "-m", "siogw", "client", *args], cwd=cwd or self.homes[who],
            env=env, capture_output=True, text=True, timeout=120)

    def ok(self, who: str, *args: str, cwd: Path | None = None) -> str:
        r = self.run(who, *args, cwd=cwd)
        assert r.returncode == 0, f"{who} {args}: {r.stderr}"
        return r.stdout

    def login(self, who: str) -> None:
        p = self.world.people[who]
        self.ok(who, "login", "--user", p.user_id, "--key", p.key_uri, "--cert",
                str(p.cert_file), "--sms-outbox", str(Path(self.world.home) / "sms-outbox.jsonl"))


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def reports_world(
    request: pytest.FixtureRequest, softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReportsWorld]:
    from clients.session import write_settings
    from server.admin import execute
    from server.config import load_config
    from server.store import Store
    from siogw_api.v1 import admin_pb2
    from tests.server.conftest import pg_test_url

    drop = None
    server: dict[str, Any] = {}
    if request.param == "pg":
        url, drop = pg_test_url()
        server["database_url"] = url
    home = tmp_path_factory.mktemp(f"reports-{request.param}")
    world = demo.build_world(
        home,
        people=(*demo.DEFAULT_PEOPLE,
                ("controller", "Kamila Controller", "controller", "+77010000031"),
                ("prosecutor", "Pavel Prosecutor", "prosecutor", "+77010000032")),
        token_store=softhsm_store, label_prefix=f"rp{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    config = load_config(home, env={}, overrides={"server": server, "limits": {
        "logins_per_peer_per_minute": 100_000, "logins_per_user_per_minute": 100_000}})
    store = Store(config.effective_database_url).open()
    op = world.people["operator"]
    try:
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=op.user_id, full_name=op.full_name, role=op.role, phone=op.phone,
            certificate_der=demo._der(op.certificate()))))
    finally:
        store.close()
    thread = ServerThread(config)
    port = thread.start()
    try:
        demo.bootstrap_users(world, port)
        homes = {}
        for who in ("analyst", "controller", "prosecutor"):
            homes[who] = tmp_path_factory.mktemp(f"home-{who}")
            write_settings(homes[who], world.client_settings(port))
        rw = ReportsWorld(world, port, homes, config.effective_database_url)
        for who in homes:
            rw.login(who)
        rw.ok("analyst", "consent", "--agree")
        yield rw
    finally:
        thread.stop()
        if drop is not None:
            drop()


def _rows(out: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(out)["rows"]
    return rows


def test_controller_reviews_and_prosecutor_reads(reports_world: ReportsWorld,
                                                 tmp_path: Path) -> None:
    rw = reports_world
    analyst = rw.world.people["analyst"].user_id
    iin = demo.demo_parameters(1)["iin"]
    task = f"CASE-{secrets.token_hex(3)}"
    # The analyst: one query answered, one refused (a basis the role may not use); the
    # refused one's task is a spreadsheet formula.
    rw.ok("analyst", "query", "1", "-p", f"iin={iin}", "--task-ref", task,
          "--justification", "counterparty check under case " + task)
    r = rw.run("analyst", "query", "1", "-p", f"iin={iin}", "--task-ref", FORMULA,
               "--justification", "a formula in the task", "--basis", "prosecutor_supervision")
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr

    # --- the controller (§21) -------------------------------------------------------------
    out = rw.ok("controller", "reports", "list", "--user", analyst, "--json")
    rows = _rows(out)
    ok = next(row for row in rows if row["task"] == task)
    assert ok["justification"] == "counterparty check under case " + task
    assert ok["subject"] == iin and ok["parameters"] == {"iin": iin}
    assert ok["outcome"] == "success" and ok["status_code"] == "OK"
    assert ok["resource"] == 1 and ok["resource_name"] and ok["result_summary"]
    assert ok["unit"] == "Department of financial investigations"
    bad = next(row for row in rows if row["task"] == FORMULA)
    assert bad["outcome"] == "refused" and bad["status_code"] == "PERMISSION_DENIED"
    assert bad["reason"] and bad["justification"] == "a formula in the task"
    assert bad["message"]  # the neutral refusal message the analyst saw

    # Filters: subject, outcome and reason, unit, resource.
    assert {r["seq"] for r in _rows(rw.ok("controller", "reports", "list", "--subject", iin,
                                           "--task", task, "--json"))} == {ok["seq"]}
    refused = _rows(rw.ok("controller", "reports", "list", "--outcome", "refused",
                          "--reason", bad["reason"], "--user", analyst, "--json"))
    assert bad["seq"] in {r["seq"] for r in refused}
    assert all(r["outcome"] == "refused" for r in refused)
    assert _rows(rw.ok("controller", "reports", "list", "--unit", "no such unit", "--json")) == []

    # A table for people: the justification and the refusal reason are there.
    table = rw.ok("controller", "reports", "list", "--user", analyst)
    assert "counterparty check" in table and f"refused: {bad['reason']}" in table

    # Proof: every row is in the log the signed checkpoint commits to.
    proved = json.loads(rw.ok("controller", "reports", "list", "--user", analyst, "--prove",
                              "--json"))
    assert proved["tree_size"] > ok["seq"] and all(r["proved"] for r in proved["rows"])

    # The streamed export: a new private file; the formula neutralised.
    target = tmp_path / "reports.csv"
    rw.ok("controller", "reports", "export", "--user", analyst, "--out", str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with target.open(newline="", encoding="utf-8") as fh:
        exported = list(csv.DictReader(fh))
    by_task = {row["request_id"]: row for row in exported}
    assert by_task[ok["request_id"]]["justification"] == ok["justification"]
    assert by_task[ok["request_id"]]["subject"] == iin
    cell = by_task[bad["request_id"]]
    assert cell["task"] == "'" + FORMULA and cell["reason"] == bad["reason"]
    for row in exported:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())
    r = rw.run("controller", "reports", "export", "--out", str(target))
    assert r.returncode != 0 and "refusing to overwrite" in r.stderr

    # --- wrong roles ----------------------------------------------------------------------
    r = rw.run("analyst", "reports", "list")
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr
    before = set(tmp_path.iterdir())
    r = rw.run("analyst", "reports", "export", "--out", str(tmp_path / "mine.csv"))
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr
    assert set(tmp_path.iterdir()) == before  # no file, partial or temporary
    r = rw.run("controller", "resolutions", "register", "--number", "x", "--date",
               "2026-01-01", "--user", analyst, "--period-start", "2026-01-01T00:00:00+05:00",
               "--period-end", "2026-02-01T00:00:00+05:00")
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr

    # --- the prosecutor (§22) -------------------------------------------------------------
    now = _dt.datetime.now(_dt.UTC).astimezone(_dt.timezone(_dt.timedelta(hours=5)))
    start, end = now - _dt.timedelta(days=1), now + _dt.timedelta(days=1)
    number = f"R-{secrets.token_hex(3)}"
    res = json.loads(rw.ok("prosecutor", "resolutions", "register", "--number", number,
                           "--date", now.date().isoformat(), "--user", analyst,
                           "--period-start", start.isoformat(), "--period-end", end.isoformat(),
                           "--json"))
    assert res["number"] == number and res["user_ids"] == [analyst]
    trail = _rows(rw.ok("prosecutor", "resolutions", "trail", res["id"], "--json"))
    got = {r["seq"]: r for r in trail}
    assert got[ok["seq"]]["justification"] == ok["justification"]
    assert got[ok["seq"]]["subject"] == iin and got[bad["seq"]]["reason"] == bad["reason"]
    narrowed = _rows(rw.ok("prosecutor", "resolutions", "trail", res["id"], "--outcome",
                           "refused", "--prove", "--json"))
    assert bad["seq"] in {r["seq"] for r in narrowed}
    assert all(r["outcome"] == "refused" and r["proved"] for r in narrowed)
    # Outside the scope: another user, another period; and a controller reading it.
    r = rw.run("prosecutor", "resolutions", "trail", res["id"], "--user",
               rw.world.people["operator"].user_id)
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr
    r = rw.run("prosecutor", "resolutions", "trail", res["id"], "--since",
               (start - _dt.timedelta(days=30)).isoformat())
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr
    r = rw.run("controller", "resolutions", "trail", res["id"])
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr
    # The prosecutor is no controller.
    r = rw.run("prosecutor", "reports", "list")
    assert r.returncode != 0 and "PERMISSION_DENIED" in r.stderr


@pytest.mark.parametrize("noun", ["reports", "resolutions"])
def test_nouns_have_help(noun: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "siogw", "client", noun, "--help"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SIOGW_HOME": str(tmp_path)})
    assert r.returncode == 0 and noun in r.stdout
    assert not io.StringIO(r.stderr).read()


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
def test_library_methods(reports_world: ReportsWorld, kind: str) -> None:
    """The same through the library, sync and asyncio (the streamed export included)."""
    from clients import ReportFilter
    from clients.errors import ClientError

    from .conftest import CLIENT_KINDS

    rw = reports_world
    w = rw.world
    analyst = w.people["analyst"].user_id

    def connect() -> Any:
        return CLIENT_KINDS[kind](f"127.0.0.1:{rw.port}", ca_file=w.ca_file,
                                  gateway_certificate=w.gateway_cert,
                                  server_name=demo.TLS_NAME)

    task = f"LIB-{kind}-{secrets.token_hex(3)}"
    with connect() as client:
        demo.login(w, client, w.people["analyst"])
        client.query(1, demo.demo_parameters(1), demo.BASIS, task, "library " + kind)
        with pytest.raises(ClientError) as err:
            client.list_queries()
        assert err.value.reason and err.value.code.name == "PERMISSION_DENIED"
    with connect() as client:
        demo.login(w, client, w.people["controller"])
        page = client.list_queries(ReportFilter(task=task), prove=True)
        (row,) = page.rows
        assert row.justification == "library " + kind and row.proved is True
        assert row.user_id == analyst and row.subject == demo.demo_parameters(1)["iin"]
        out = io.BytesIO()
        info = client.export_queries_csv(out, ReportFilter(user_ids=(analyst,)), chunk_rows=1)
        rows = list(csv.DictReader(io.StringIO(out.getvalue().decode(), newline="")))
        assert info.complete and info.rows == len(rows) >= 1 and info.bytes == len(
            out.getvalue())
        assert task in {r["task"] for r in rows}
        text = io.StringIO()  # a text file object works as well
        assert client.export_queries_csv(text, ReportFilter(task=task)).rows == 1
    with connect() as client:
        demo.login(w, client, w.people["prosecutor"])
        now = _dt.datetime.now(_dt.UTC)
        res = client.register_resolution(
            f"L-{secrets.token_hex(3)}", now.date().isoformat(), [analyst],
            (now - _dt.timedelta(hours=1)).isoformat(), (now + _dt.timedelta(hours=1)).isoformat())
        trail = client.read_audit_trail(res.id, flt=ReportFilter(task=task), prove=True)
        assert [r.justification for r in trail.rows] == ["library " + kind]
        assert trail.rows[0].proved is True
        with pytest.raises(ClientError):
            client.read_audit_trail(res.id, user_ids=["someone-else"])


def test_a_row_the_log_does_not_hold_is_not_proved(reports_world: ReportsWorld) -> None:
    """The index is not trusted: a row whose leaf hash was changed in the database
    fails --prove (the gateway's proof carries the log's leaf, the client compares)."""
    import sqlalchemy as sa

    rw = reports_world
    task = f"TAMPER-{secrets.token_hex(3)}"
    rw.ok("analyst", "query", "1", "-p", f"iin={demo.demo_parameters(1)['iin']}",
          "--task-ref", task, "--justification", "to be tampered with")
    (row,) = _rows(rw.ok("controller", "reports", "list", "--task", task, "--json"))
    engine = sa.create_engine(rw.db_url)
    table = sa.Table("ops_audit_records", sa.MetaData(), autoload_with=engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.seq == row["seq"])
                         .values(leaf_hash="00" * 32))
        r = rw.run("controller", "reports", "list", "--task", task, "--prove")
        assert r.returncode != 0 and "another leaf" in r.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.seq == row["seq"])
                         .values(leaf_hash=row["leaf_hash"]))
        engine.dispose()
    (again,) = _rows(rw.ok("controller", "reports", "list", "--task", task, "--prove", "--json"))
    assert again["proved"] is True

