"""`siogw client ...` as subprocesses against the real gateway of ``client_world``."""

from __future__ import annotations

import json
import os
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
