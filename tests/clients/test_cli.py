"""`siogw client ...` as subprocesses against the real gateway of ``client_world``."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from siogw import demo

from .conftest import ClientWorld


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` with its (size, mtime_ns)."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def cli_home(client_world: ClientWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clients.session import write_settings

    home = tmp_path_factory.mktemp("cli-home")
    write_settings(home, client_world.world.client_settings(client_world.port))
    return home


def siogw(
    home: Path, cwd: Path, *args: str, user_home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIOGW_HOME": str(home)}
    if user_home is not None:
        env["HOME"] = str(user_home)
    return subprocess.run(
        [sys.executable, "-m", "siogw", "client", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_login_consent_query_export_shred(
    client_world: ClientWorld, cli_home: Path, tmp_path: Path
) -> None:
    analyst = client_world.person("analyst")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = siogw(
        cli_home,
        cwd,
        "login",
        "--user",
        analyst.user_id,
        "--key",
        analyst.key_uri,
        "--cert",
        str(analyst.cert_file),
        "--sms-outbox",
        str(client_world.home / "sms-outbox.jsonl"),
    )
    assert r.returncode == 0, r.stderr
    session = cli_home / "client" / "session.json"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    stored = json.loads(session.read_text())
    assert stored["user_id"] == analyst.user_id and stored["session_token"]
    assert analyst.pin_file.read_text().strip() not in session.read_text()  # no PIN stored

    r = siogw(cli_home, cwd, "consent", "--agree")
    assert r.returncode == 0, r.stderr
    assert "consent signed at" in r.stdout

    r = siogw(cli_home, cwd, "resources")
    assert r.returncode == 0 and "Pension contributions" in r.stdout

    # R14: a query without --export leaves nothing new on disk: not in the cwd, not in
    # $SIOGW_HOME, not in the user's home directory.
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    before = snapshot(cwd, cli_home, user_home)
    iin = demo.demo_parameters(11)["iin"]
    r = siogw(
        cli_home,
        cwd,
        "query",
        "11",
        "-p",
        f"iin={iin}",
        "--task-ref",
        "CASE-CLI-1",
        "--justification",
        "cli test",
        user_home=user_home,
    )
    assert r.returncode == 0, r.stderr
    assert "[truncated by the gateway]" in r.stdout and "verified" in r.stdout
    assert snapshot(cwd, cli_home, user_home) == before  # no file at all (an empty
    # ~/.cache directory may appear: the PKCS#11 stack creates it, with nothing in it)
    assert not [p for p in user_home.rglob("*") if not p.is_dir()]

    # With --export: one new file, 0600, verifiable offline, then shredded.
    out = cwd / "result.json"
    r = siogw(
        cli_home,
        cwd,
        "query",
        "1",
        "-p",
        f"iin={iin}",
        "--task-ref",
        "CASE-CLI-1",
        "--justification",
        "cli test",
        "--export",
        str(out),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["resource"] == 1
    assert set(snapshot(cwd, cli_home)) - set(before) == {str(out)}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    env = json.loads(out.read_text())
    assert env["payloadType"] == "application/vnd.siogw.result+protobuf"
    v = subprocess.run(
        [
            sys.executable,
            "-m",
            "siogw",
            "verify",
            str(out),
            "--trust",
            str(client_world.world.ca_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert v.returncode == 0, v.stderr
    r = siogw(
        cli_home,
        cwd,
        "query",
        "1",
        "-p",
        f"iin={iin}",
        "--task-ref",
        "X",
        "--justification",
        "again",
        "--export",
        str(out),
    )
    assert r.returncode != 0 and "refusing to overwrite" in r.stderr
    r = siogw(cli_home, cwd, "shred", str(out))
    assert r.returncode == 0, r.stderr
    assert not out.exists()

    r = siogw(cli_home, cwd, "status")
    assert r.returncode == 0 and "serving" in r.stdout

    r = siogw(cli_home, cwd, "logout")
    assert r.returncode == 0 and not session.exists()
    r = siogw(cli_home, cwd, "resources")
    assert r.returncode != 0 and "not logged in" in r.stderr


def test_cli_query_refusal_shows_status(client_world: ClientWorld, tmp_path: Path) -> None:
    from clients.session import write_settings

    home = tmp_path / "home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    r = siogw(
        home, tmp_path, "query", "1", "-p", "iin=1", "--task-ref", "X", "--justification", "Y"
    )
    assert r.returncode != 0 and "not logged in" in r.stderr
    r = siogw(home, tmp_path, "query", "1", "-p", "oops", "--task-ref", "X", "--justification", "Y")
    assert r.returncode != 0 and "NAME=VALUE" in r.stderr


# --- issue 15, point 2: several users on one machine; the signed query for offline checks ----
def siogw_env(
    home: Path, cwd: Path, *args: str, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    options: dict[str, object] = {"capture_output": True, **kwargs}
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "siogw", "client", *args],
        cwd=cwd,
        env={**os.environ, "SIOGW_HOME": str(home), **(env or {})},
        text=True,
        timeout=120,
        **options,
    )


def login_args(client_world: ClientWorld, name: str) -> list[str]:
    person = client_world.person(name)
    return ["login", "--user", person.user_id, "--key", person.key_uri,
            "--sms-outbox", str(client_world.home / "sms-outbox.jsonl")]


def test_cli_profiles_operator_and_analyst_share_a_home(
    client_world: ClientWorld, tmp_path: Path
) -> None:
    home, cwd = tmp_path / "home", tmp_path
    settings = client_world.world.client_settings(client_world.port)
    # `siogw client config` writes the shared config.json from an empty home
    r = siogw_env(home, cwd, "config", "--target", settings["target"], "--ca-file",
                  settings["ca_file"], "--gateway-cert", settings["gateway_cert"],
                  "--server-name", settings["server_name"])
    assert r.returncode == 0, r.stderr
    shared = json.loads((home / "client" / "config.json").read_text())
    assert shared["target"] == settings["target"]

    # no --cert: the certificate is read from the token, beside the key
    r = siogw_env(home, cwd, *login_args(client_world, "analyst"), "--profile", "analyst")
    assert r.returncode == 0, r.stderr
    r = siogw_env(home, cwd, *login_args(client_world, "operator"),
                  env={"SIOGW_PROFILE": "operator"})
    assert r.returncode == 0, r.stderr
    profiles = home / "client" / "profiles"
    sessions = {p: json.loads((profiles / p / "session.json").read_text())
                for p in ("analyst", "operator")}
    assert sessions["analyst"]["user_id"] == client_world.person("analyst").user_id
    assert sessions["operator"]["user_id"] == client_world.person("operator").user_id
    assert sessions["analyst"]["session_token"] != sessions["operator"]["session_token"]
    assert not (home / "client" / "session.json").exists()  # the default profile: untouched
    for d in (profiles, profiles / "analyst", profiles / "operator"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700

    # each works as itself, at the same time, from the same home
    assert siogw_env(home, cwd, "consent", "--agree", "--profile", "analyst").returncode == 0
    r = siogw_env(home, cwd, "resources", "--profile", "analyst")
    assert r.returncode == 0 and "Pension contributions" in r.stdout, r.stderr
    iin = demo.demo_parameters(11)["iin"]
    r = siogw_env(home, cwd, "query", "11", "-p", f"iin={iin}", "--task-ref", "CASE-PROF",
                  "--justification", "profiles", "--profile", "operator")
    # the operator has signed no consent (and is no analyst): the refusal says the status,
    # the gateway's reason code and its explanation, in one line
    assert r.returncode == 9, r.stderr
    assert re.fullmatch(r"siogw: error: Query refused: [A-Z_]+ \([A-Z_]+\): \S.*\n", r.stderr)
    r = siogw_env(home, cwd, "query", "11", "-p", f"iin={iin}", "--task-ref", "CASE-PROF",
                  "--justification", "profiles", env={"SIOGW_PROFILE": "analyst"})
    assert r.returncode == 0, r.stderr

    # a profile's own config.json overrides the shared one, key by key
    r = siogw_env(home, cwd, "config", "--profile", "operator", "--target", "127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert json.loads((profiles / "operator" / "config.json").read_text()) == {
        "target": "127.0.0.1:1"}
    r = siogw_env(home, cwd, "config", "--show", "--profile", "operator")
    assert "target: 127.0.0.1:1" in r.stdout and settings["ca_file"] in r.stdout
    r = siogw_env(home, cwd, "config", "--show", "--profile", "analyst")
    assert f"target: {settings['target']}" in r.stdout

    # logging out one profile leaves the other logged in
    r = siogw_env(home, cwd, "logout", "--profile", "analyst")
    assert r.returncode == 0 and not (profiles / "analyst" / "session.json").exists()
    assert (profiles / "operator" / "session.json").exists()
    r = siogw_env(home, cwd, "resources", "--profile", "analyst")
    assert r.returncode == 2 and "siogw client login --profile analyst" in r.stderr

    # bad names are refused before anything is read or written
    for bad in ("../evil", "..", "a/b", "-x", "x" * 65):
        r = siogw_env(home, cwd, "resources", f"--profile={bad}")
        assert r.returncode == 8 and "invalid profile name" in r.stderr, (bad, r.stderr)
    assert sorted(p.name for p in profiles.iterdir()) == ["analyst", "operator"]
    assert not (home / "evil").exists()


def test_cli_session_file_option(client_world: ClientWorld, tmp_path: Path) -> None:
    from clients.session import write_settings

    home = tmp_path / "home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    session = private / "analyst-session.json"
    r = siogw_env(home, tmp_path, *login_args(client_world, "analyst"),
                  "--session-file", str(session))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert not (home / "client" / "session.json").exists()
    r = siogw_env(home, tmp_path, "consent", "--show", "--session-file", str(session))
    assert r.returncode == 0, r.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    r = siogw_env(home, tmp_path, *login_args(client_world, "analyst"),
                  "--session-file", str(shared / "s.json"))
    assert r.returncode == 2 and "writable by others" in r.stderr
    assert not (shared / "s.json").exists()


def test_cli_export_request_verifies_offline(client_world: ClientWorld, tmp_path: Path) -> None:
    from clients.session import write_settings

    home = tmp_path / "home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    assert siogw_env(home, tmp_path, *login_args(client_world, "analyst")).returncode == 0
    assert siogw_env(home, tmp_path, "consent", "--agree").returncode == 0
    iin = demo.demo_parameters(11)["iin"]
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    query = ["query", "11", "-p", f"iin={iin}", "--task-ref", "CASE-REQ-1",
             "--justification", "payer check for case 1"]
    r = siogw_env(home, tmp_path, *query, "--export-request", str(request),
                  "--export", str(result), "--json")
    assert r.returncode == 0, r.stderr
    request_id = json.loads(r.stdout)["request_id"]
    assert stat.S_IMODE(request.stat().st_mode) == 0o600
    assert json.loads(request.read_text())["payloadType"] == "application/vnd.siogw.query+protobuf"

    v = subprocess.run(
        [sys.executable, "-m", "siogw", "verify", str(request),
         "--trust", str(client_world.world.ca_file)],
        capture_output=True, text=True, timeout=60,
    )
    assert v.returncode == 0, v.stderr
    lines = v.stdout.splitlines()
    analyst = client_world.person("analyst")
    subject = analyst.certificate().subject.rfc4514_string()
    assert lines[0].startswith(f"valid: signed by {subject} (key ")
    assert f"certificate serial {analyst.certificate().serial_number:x}" in lines[0]
    assert lines[1].startswith(f"query {request_id} created ")
    assert f"resource 11 (iin={iin})" in lines[1]
    assert "task CASE-REQ-1; justification: payer check for case 1" in lines[2]
    # the result verifies as the gateway's answer to that query
    v = subprocess.run(
        [sys.executable, "-m", "siogw", "verify", str(result),
         "--trust", str(client_world.world.ca_file)],
        capture_output=True, text=True, timeout=60,
    )
    assert v.returncode == 0 and f"result for query {request_id} produced" in v.stdout

    # an export name that exists is refused before the query is signed or sent
    r = siogw_env(home, tmp_path, *query, "--export-request", str(request))
    assert r.returncode == 8 and "refusing to overwrite" in r.stderr
    r = siogw_env(home, tmp_path, *query, "--export", str(tmp_path / "same.json"),
                  "--export-request", str(tmp_path / "same.json"))
    assert r.returncode == 8 and "same file" in r.stderr


def test_cli_export_survives_a_reader_that_went_away(
    client_world: ClientWorld, tmp_path: Path
) -> None:
    """`siogw client query --export FILE | head`: the export is written (and fsynced)
    before anything is printed, and the closed pipe ends the command quietly with 141."""
    from clients.session import write_settings

    home = tmp_path / "home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    assert siogw_env(home, tmp_path, *login_args(client_world, "analyst")).returncode == 0
    assert siogw_env(home, tmp_path, "consent", "--agree").returncode == 0
    out = tmp_path / "export.json"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        r = siogw_env(home, tmp_path, "query", "1", "-p",
                      f"iin={demo.demo_parameters(1)['iin']}", "--task-ref", "CASE-PIPE",
                      "--justification", "pipe", "--export", str(out), "--json",
                      capture_output=False, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert r.returncode == 141, r.stderr
    assert "Traceback" not in r.stderr and "Exception" not in r.stderr
    assert json.loads(out.read_text())["payloadType"] == "application/vnd.siogw.result+protobuf"


def test_cli_login_at_end_of_input_is_one_line(
    client_world: ClientWorld, tmp_path: Path
) -> None:
    from clients.session import write_settings

    home = tmp_path / "home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    person = client_world.person("analyst")
    r = siogw_env(home, tmp_path, "login", "--user", person.user_id, "--key", person.key_uri,
                  stdin=subprocess.DEVNULL)
    assert r.returncode == 8, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().endswith(
        "siogw: error: no SMS code: the input ended before one was typed: "
        "type the code at the prompt, or give --sms-outbox"
    )
    assert not (home / "client" / "session.json").exists()
