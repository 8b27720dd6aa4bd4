"""Issue 15, point 1: every role's commands through ``siogw client NOUN VERB``.

End to end: a real gateway over TLS gRPC (one per database, module scope: SQLite and
PostgreSQL), people with keys on SoftHSM tokens, and every command run as a subprocess
with its own ``$SIOGW_HOME`` per person (the session that ``siogw client login`` saved
signs each command). Only the first operator is bootstrapped on the database (as
``siogw admin enroll-user`` does); the operator enrols everyone else with
``siogw client users enroll``. Each noun is also run by a role that may not, and the
refusal's exit code and message are checked.

The tests of one database share its gateway and run in order (a later one uses what an
earlier one made: the enrolled people, their sessions).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from siogw import demo
from siogw_api.timeutil import astana_iso, now_utc

from .conftest import ServerThread

pytestmark = pytest.mark.slow

NOUNS = ("users", "certs", "maintenance", "emergencies", "applications", "transfers",
         "alerts", "outbox", "reports")

PEOPLE = (
    ("operator", "Olzhas Operator", "operator", "+77010000101"),
    ("security", "Saule Security", "security_officer", "+77010000102"),
    ("analyst", "Aigerim Analyst", "agency_user", "+77010000103"),
    ("controller", "Kairat Controller", "controller", "+77010000104"),
    ("prosecutor", "Marat Prosecutor", "prosecutor", "+77010000105"),
    # not enrolled: files an application; and a second key for the analyst's rotation
    ("applicant", "Dana Applicant", "agency_user", "+77010000106"),
    ("rotated", "Aigerim Analyst (new token)", "agency_user", "+77010000107"),
)
ROLES = ("security", "analyst", "controller", "prosecutor")


def test_every_noun_has_help() -> None:
    for noun in NOUNS:
        r = subprocess.run([sys.executable, "-m", "siogw", "client", noun, "--help"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (noun, r.stderr)
        assert "VERB" in r.stdout or "{" in r.stdout
    r = subprocess.run([sys.executable, "-m", "siogw", "admin", "--help"],
                       capture_output=True, text=True, timeout=60)
    text = " ".join(r.stdout.split())  # argparse wraps the description
    assert r.returncode == 0 and "first operator" in text and "siogw client users" in text


@dataclass
class Cli:
    world: Any
    port: int
    root: Path
    homes: dict[str, Path] = field(default_factory=dict)
    made: dict[str, str] = field(default_factory=dict)

    def person(self, name: str) -> Any:
        return self.world.people[name]

    def home(self, name: str) -> Path:
        if name not in self.homes:
            from clients.session import write_settings

            home = self.root / f"home-{name}"
            home.mkdir()
            write_settings(home, self.world.client_settings(self.port))
            self.homes[name] = home
        return self.homes[name]

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SIOGW_HOME": str(self.home(name))}
        return subprocess.run([sys.executable, "-m", "siogw", "client", *args], env=env,
                              cwd=self.root, capture_output=True, text=True, timeout=120)

    def ok(self, name: str, *args: str) -> str:
        r = self.run(name, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def json(self, name: str, *args: str) -> Any:
        return json.loads(self.ok(name, *args, "--json"))

    def refused(self, name: str, command: str, *args: str) -> None:
        """``name``'s role may not run ``command``: exit 9 with the gateway's reason."""
        r = self.run(name, *args)
        assert r.returncode == 9, (args, r.stdout, r.stderr)
        assert "PERMISSION_DENIED" in r.stderr and f"may not run {command}" in r.stderr, (
            r.stderr)
        assert "Traceback" not in r.stderr

    def login(self, name: str) -> None:
        p = self.person(name)
        self.ok(name, "login", "--user", p.user_id, "--key", p.key_uri, "--cert",
                str(p.cert_file), "--sms-outbox", str(self.world.home / "sms-outbox.jsonl"))


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def cli(
    request: pytest.FixtureRequest, softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cli]:
    from server.admin import execute
    from server.config import load_config
    from server.store import Store
    from siogw_api.v1 import admin_pb2
    from tests.server.conftest import pg_test_url

    drop = None
    overrides: dict[str, Any] = {"limits": {
        "logins_per_peer_per_minute": 100_000, "logins_per_user_per_minute": 100_000}}
    if request.param == "pg":
        db_url, drop = pg_test_url()
        overrides["server"] = {"database_url": db_url}
    root = tmp_path_factory.mktemp(f"cli-admin-{request.param}")
    world = demo.build_world(root / "gw", people=PEOPLE, token_store=softhsm_store,
                             label_prefix=f"ca{secrets.token_hex(3)}")
    demo.write_gateway_config(world, 0)
    config = load_config(world.home, env={}, overrides=overrides)
    op = world.people["operator"]
    store = Store(config.effective_database_url).open()
    try:  # the first operator, as `siogw admin enroll-user` does with the gateway stopped
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=op.user_id, full_name=op.full_name, role=op.role, phone=op.phone,
            certificate_der=demo._der(op.certificate()))))
    finally:
        store.close()
    server = ServerThread(config)
    port = server.start()
    try:
        yield Cli(world=world, port=port, root=root)
    finally:
        server.stop()
        if drop is not None:
            drop()


# --- users ----------
def test_the_operator_enrols_everyone_and_each_logs_in(cli: Cli) -> None:
    cli.login("operator")
    for name in ROLES:
        p = cli.person(name)
        out = cli.ok("operator", "users", "enroll", p.user_id, "--full-name", p.full_name,
                     "--role", p.role, "--phone", p.phone, "--unit", "Department 1",
                     "--cert", str(p.cert_file))
        assert f"user {p.user_id} enrolled as {p.role}" in out
        assert "active" in out  # the new user's record, as fields
        cli.login(name)
    # the analyst may not enrol anyone
    cli.refused("analyst", "enroll_user", "users", "enroll", "someone", "--full-name", "X",
                "--role", "agency_user")


def test_a_compliance_officer_is_enrolled_with_the_provider_bin(cli: Cli) -> None:
    """``users enroll --provider-bin``: required for a compliance officer, refused for any
    other role (issue 16: the officer acts for the provider enrolled with)."""
    uid = f"officer-{secrets.token_hex(3)}"
    base = ("users", "enroll", uid, "--full-name", "Kamila Compliance", "--phone",
            "+77011234568")
    r = cli.run("operator", *base, "--role", "compliance_officer")
    assert r.returncode != 0 and "provider_bin" in r.stderr and "Traceback" not in r.stderr
    r = cli.run("operator", *base, "--role", "agency_user", "--provider-bin",
                demo.DEMO_PROVIDER_BIN)
    assert r.returncode != 0 and "provider_bin" in r.stderr and "Traceback" not in r.stderr
    out = cli.ok("operator", *base, "--role", "compliance_officer", "--provider-bin",
                 demo.DEMO_PROVIDER_BIN)
    assert f"user {uid} enrolled as compliance_officer" in out
    listed = cli.json("operator", "users", "list", "--role", "compliance_officer")
    assert uid in {u["user_id"] for u in listed["result"]["users"]}


def test_users_list_show_block_unblock(cli: Cli) -> None:
    analyst = cli.person("analyst")
    listed = cli.json("operator", "users", "list")
    users = {u["user_id"]: u for u in listed["result"]["users"]}
    assert {cli.person(n).user_id for n in ("operator", *ROLES)} <= set(users)
    assert users[analyst.user_id]["role"] == "agency_user"
    assert listed["receipt"]["seq"] > 0
    # the table for people: a header and aligned columns
    table = cli.ok("operator", "users", "list", "--role", "agency_user").splitlines()
    assert table[0].endswith("user(s)")
    header = table[1]
    assert header.split()[:3] == ["USER", "ROLE", "STATUS"]
    row = next(line for line in table[2:] if line.startswith(analyst.user_id))
    assert row.index("agency_user") == header.index("ROLE")
    assert row.index("active") == header.index("STATUS")

    shown = cli.ok("operator", "users", "show", analyst.user_id)
    assert analyst.full_name in shown and "Department 1" in shown

    out = cli.ok("operator", "users", "block", analyst.user_id, "--reason", "on leave")
    assert "blocked" in out
    assert cli.json("operator", "users", "show", analyst.user_id)["result"]["status"] == (
        "blocked")
    cli.ok("security", "users", "unblock", analyst.user_id, "--reason", "back from leave")
    assert cli.json("operator", "users", "show", analyst.user_id)["result"]["status"] == (
        "active")
    cli.login("analyst")  # blocking ended the analyst's session
    cli.refused("analyst", "list_users", "users", "list")
    cli.refused("prosecutor", "block_user", "users", "block", analyst.user_id, "--reason", "x")


# --- certificates ----------
def test_certs_register_list_revoke_and_crl(cli: Cli) -> None:
    analyst, rotated = cli.person("analyst"), cli.person("rotated")
    reg = cli.json("security", "certs", "register", analyst.user_id, str(rotated.cert_file),
                   "--token-label", "analyst-token-2")
    fp = reg["result"]["fingerprint"]
    assert reg["result"]["user_id"] == analyst.user_id

    listed = cli.json("security", "certs", "list", "--user", analyst.user_id)
    certs = {c["fingerprint"]: c for c in listed["result"]["certificates"]}
    assert fp in certs and len(certs) == 2
    assert certs[fp]["not_after"].endswith("+05:00")  # the expiry
    assert any("PIN" in w for w in certs[fp]["warnings"])  # its PIN age is unknown
    table = cli.ok("security", "certs", "list", "--user", analyst.user_id)
    assert "EXPIRES" in table and "WARNINGS" in table

    out = cli.ok("security", "certs", "revoke", "--fingerprint", fp, "--reason", "token lost")
    assert "revoked" in out
    listed = cli.json("operator", "certs", "list", "--user", analyst.user_id)
    [revoked] = [c for c in listed["result"]["certificates"] if c["fingerprint"] == fp]
    assert revoked["revoked_at"] and revoked["revocation_reason"] == "token lost"

    crl = cli.world.ca_dir / "crl.pem"
    assert "CRL imported" in cli.ok("security", "certs", "import-crl", str(crl))
    cli.refused("analyst", "list_certificates", "certs", "list")
    cli.refused("operator", "import_crl", "certs", "import-crl", str(crl))


# --- maintenance ----------
def test_maintenance_publish_list_cancel(cli: Cli) -> None:
    start = now_utc() + _dt.timedelta(days=4)
    window_id = f"mw-{secrets.token_hex(3)}"
    out = cli.ok("operator", "maintenance", "publish", "--id", window_id,
                 "--starts", astana_iso(start),
                 "--ends", astana_iso(start + _dt.timedelta(hours=2)),
                 "--description", "database upgrade")
    assert f"maintenance {window_id} published" in out
    shown = cli.ok("analyst", "maintenance", "list")  # every signed-in user sees it
    assert window_id in shown and "database upgrade" in shown
    assert "database upgrade" in cli.ok("analyst", "status")

    out = cli.json("operator", "maintenance", "cancel", window_id, "--reason", "postponed")
    assert out["result"]["cancel_reason"] == "postponed" and out["result"]["cancelled_at"]
    windows = cli.json("analyst", "maintenance", "list")["windows"]
    assert window_id not in [w["id"] for w in windows]
    assert "database upgrade" not in cli.ok("analyst", "status")

    again = cli.run("operator", "maintenance", "cancel", window_id, "--reason", "twice")
    assert again.returncode == 9 and "FAILED_PRECONDITION" in again.stderr
    assert "cancelled already" in again.stderr
    bad = cli.run("operator", "maintenance", "publish", "--starts", "tomorrow",
                  "--ends", "later")
    assert bad.returncode == 8 and "ISO 8601" in bad.stderr and "Traceback" not in bad.stderr
    cli.refused("security", "publish_maintenance", "maintenance", "publish",
                "--starts", astana_iso(start), "--ends", astana_iso(start))
    cli.refused("controller", "cancel_maintenance", "maintenance", "cancel", window_id,
                "--reason", "x")


# --- emergencies ----------
def test_emergencies_record_resolve_list(cli: Cli) -> None:
    onset = now_utc() - _dt.timedelta(hours=2)
    item = cli.json("operator", "emergencies", "record", "--onset", astana_iso(onset),
                    "--causes", "power loss in the server room",
                    "--measures", "switched to the reserve line")["result"]
    assert item["id"] and not item["resolved_at"]
    listed = cli.json("security", "emergencies", "list", "--open")["result"]["emergencies"]
    assert item["id"] in [e["id"] for e in listed]
    resolved = cli.json("operator", "emergencies", "resolve", item["id"])["result"]
    assert resolved["resolved_at"].endswith("+05:00")
    listed = cli.json("security", "emergencies", "list", "--open")["result"]["emergencies"]
    assert item["id"] not in [e["id"] for e in listed]
    table = cli.ok("security", "emergencies", "list")
    assert "power loss in the server room" in table and "ONSET" in table
    cli.refused("analyst", "list_emergencies", "emergencies", "list")
    cli.refused("security", "record_emergency", "emergencies", "record", "--onset",
                astana_iso(onset), "--causes", "x", "--measures", "y")


# --- applications ----------
def test_applications_file_refuse_correct_register(cli: Cli) -> None:
    from server.resources.identifiers import make_iin

    applicant = cli.person("applicant")
    key = ("--key", applicant.key_uri, "--cert", str(applicant.cert_file))
    iin = make_iin(_dt.date(1992, 5, 6), "F", secrets.randbelow(9000) + 1)
    filed = cli.json("applicant", "applications", "file", *key, "--iin", iin,
                     "--full-name", applicant.full_name, "--phone", applicant.phone,
                     "--unit", "Analytics", "--basis", "financial_monitoring")
    first = filed["application_id"]
    assert filed["status"] == "pending" and filed["deadline_at"].endswith("+05:00")
    assert "pending" in cli.ok("applicant", "applications", "status", first, *key)

    pending = cli.json("operator", "applications", "list", "--status", "pending")
    assert first in [a["id"] for a in pending["result"]["applications"]]
    out = cli.ok("operator", "applications", "refuse", first, "--reason", "the post is missing")
    assert f"application {first} refused" in out

    saved = cli.root / f"refusal-{first}.json"
    out = cli.ok("applicant", "applications", "refusal", first, *key, "--save", str(saved))
    assert "the post is missing" in out and cli.person("operator").user_id in out
    verified = subprocess.run(
        [sys.executable, "-m", "siogw", "verify", str(saved), "--trust",
         str(cli.world.ca_file)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr

    filed = cli.json("applicant", "applications", "file", *key, "--iin", iin,
                     "--full-name", applicant.full_name, "--phone", applicant.phone,
                     "--unit", "Analytics", "--post", "analyst",
                     "--basis", "financial_monitoring", "--corrects", first)
    second = filed["application_id"]
    user_id = f"dana-{secrets.token_hex(2)}"
    reg = cli.json("operator", "applications", "register", second, "--user-id", user_id)
    assert reg["result"]["user_id"] == user_id and reg["result"]["application_id"] == second
    status = cli.json("applicant", "applications", "status", second, *key)
    assert status["status"] == "registered" and status["user_id"] == user_id
    cli.made["registered_user"] = user_id

    cli.refused("controller", "list_applications", "applications", "list")
    cli.refused("security", "register_application", "applications", "register", second)
    stranger = cli.person("prosecutor")  # not the applicant's key
    r = cli.run("prosecutor", "applications", "status", second, "--key", stranger.key_uri,
                "--cert", str(stranger.cert_file))
    assert r.returncode == 9 and "PERMISSION_DENIED" in r.stderr


# --- transfers ----------
def test_transfers_file_list_apply(cli: Cli) -> None:
    analyst = cli.person("analyst")
    signed = now_utc() - _dt.timedelta(hours=30)
    filed = cli.json("analyst", "transfers", "file", "--unit", "Investigations",
                     "--post", "senior analyst", "--order-number", "ORD-17",
                     "--order-signed-at", astana_iso(signed))["result"]
    assert filed["late"] is True and filed["user_id"] == analyst.user_id
    late = cli.json("operator", "transfers", "list", "--late")["result"]["transfers"]
    assert filed["id"] in [t["id"] for t in late]
    table = cli.ok("operator", "transfers", "list", "--pending")
    assert "ORD-17" in table and "LATE" in table
    applied = cli.json("operator", "transfers", "apply", filed["id"])["result"]
    assert (applied["unit"], applied["post"]) == ("Investigations", "senior analyst")
    cli.refused("analyst", "list_transfers", "transfers", "list")
    cli.refused("controller", "apply_transfer", "transfers", "apply", filed["id"])


# --- the controller: outbox, alerts, reviews ----------
def test_outbox_after_a_violation_block(cli: Cli) -> None:
    user_id = cli.made["registered_user"]
    out = cli.ok("controller", "users", "block", user_id, "--kind", "violation",
                 "--reason", "queries outside the task")
    assert "blocked (violation)" in out
    notices = cli.json("controller", "outbox", "list")["result"]["notices"]
    [notice] = [n for n in notices if n["user_id"] == user_id]
    assert notice["kind"] == "violation_block" and not notice["read_at"]
    read = cli.json("controller", "outbox", "read", str(notice["id"]))["result"]
    assert read["read_at"]
    unread = cli.json("controller", "outbox", "list")["result"]["notices"]
    assert notice["id"] not in [n["id"] for n in unread]
    every = cli.json("controller", "outbox", "list", "--all")["result"]["notices"]
    assert notice["id"] in [n["id"] for n in every]
    cli.refused("operator", "read_outbox", "outbox", "list")
    cli.refused("analyst", "mark_notice_read", "outbox", "read", str(notice["id"]))


def test_alerts_list_and_ack(cli: Cli) -> None:
    analyst = cli.person("analyst")
    cli.ok("analyst", "consent", "--agree")
    r = cli.run("analyst", "query", "1", "-p", "iin=900101300017", "--task-ref", "",
                "--justification", "checking the alert rule")
    assert r.returncode != 0
    alerts: list[dict[str, Any]] = []
    for _ in range(50):  # the rules observe the audit stream asynchronously
        alerts = cli.json("controller", "alerts", "list", "--open", "--user",
                          analyst.user_id)["result"]["alerts"]
        if alerts:
            break
        time.sleep(0.2)
    assert [a["rule"] for a in alerts] == ["query_without_task"]
    assert "RULE" in cli.ok("controller", "alerts", "list", "--user", analyst.user_id)
    acked = cli.json("controller", "alerts", "ack", str(alerts[0]["id"]))["result"]
    assert acked["acknowledged_by"] == cli.person("controller").user_id
    assert cli.json("controller", "alerts", "list", "--open", "--user",
                    analyst.user_id)["result"]["alerts"] == []
    cli.refused("operator", "list_alerts", "alerts", "list")
    cli.refused("security", "acknowledge_alert", "alerts", "ack", str(alerts[0]["id"]))


def test_reports_review_and_overdue(cli: Cli) -> None:
    controller = cli.person("controller")
    overdue = cli.json("controller", "reports", "overdue", "--all")["result"]["controllers"]
    assert controller.user_id in [c["controller_id"] for c in overdue]
    end = now_utc()
    review = cli.json("controller", "reports", "review",
                      "--from", astana_iso(end - _dt.timedelta(days=30)),
                      "--to", astana_iso(end), "--note", "queries of Department 1 checked")
    assert review["result"]["controller_id"] == controller.user_id
    assert review["result"]["note"] == "queries of Department 1 checked"
    overdue = cli.json("controller", "reports", "overdue")["result"]["controllers"]
    assert controller.user_id not in [c["controller_id"] for c in overdue]
    table = cli.ok("controller", "reports", "overdue", "--all")
    assert "CONTROLLER" in table and controller.user_id in table
    cli.refused("operator", "record_review", "reports", "review", "--from", astana_iso(end),
                "--to", astana_iso(end), "--note", "x")
    cli.refused("prosecutor", "list_overdue_reviews", "reports", "overdue")
