"""Issue 13, defect 15: the CLI's session token is guarded like ``~/.ssh``.

A pre-created 0777 ``client/`` directory, a symlinked one, a symlink planted where the
session file goes, or a 0666 session file: each is refused (or, for the planted link,
replaced, never followed), and the token is never written where the attacker can read
it. (Another user's directory cannot be made without root; ownership is checked by the
same code as the mode.) The
default home is per user, never under the current directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients.cli import _write_export
from clients.session import (
    StoredSession,
    check_profile,
    client_dir,
    load_session,
    private_dir,
    save_session,
    session_path,
    siogw_home,
)
from signing.home import default_home
from siogw_api.errors import ConfigError, InputError

TOKEN = "s3cret-token-of-the-victim"
SESSION = StoredSession(target="localhost:1", user_id="alice", session_token=TOKEN,
                        expires_at="2030-01-01T00:00:00+05:00", key_uri="pkcs11:x")


def test_default_home_is_per_user(tmp_path: Path) -> None:
    assert default_home({"SIOGW_HOME": "/x/y"}) == Path("/x/y")
    assert default_home({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "siogw"
    home = default_home({})
    assert home == Path.home() / ".local" / "state" / "siogw"
    assert default_home({"XDG_STATE_HOME": "relative"}) == home  # relative: ignored (XDG)
    assert siogw_home({}) != (Path.cwd() / "var").resolve()


def test_session_is_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = save_session(tmp_path, SESSION)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(client_dir(tmp_path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_session(tmp_path) == SESSION
    save_session(tmp_path, SESSION)  # replacing works; no temporary file is left
    assert sorted(p.name for p in client_dir(tmp_path).iterdir()) == ["session.json"]


def test_world_writable_client_dir_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "client"
    d.mkdir()
    d.chmod(0o777)  # pre-created by an attacker
    with pytest.raises(ConfigError, match="writable by others"):
        save_session(tmp_path, SESSION)
    assert list(d.iterdir()) == []
    with pytest.raises(ConfigError, match="writable by others"):
        load_session(tmp_path)
    d.chmod(0o700)
    assert private_dir(tmp_path) == d


def test_symlinked_client_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir()
    (home / "client").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="not a directory"):
        save_session(home, SESSION)
    assert list(elsewhere.iterdir()) == []


def test_planted_session_file_never_receives_the_token(tmp_path: Path) -> None:
    d = private_dir(tmp_path)
    trap = tmp_path / "trap"
    trap.write_text("")
    trap.chmod(0o666)
    (d / "session.json").symlink_to(trap)  # a symlink where the session goes
    save_session(tmp_path, SESSION)  # the rename replaces the link, never follows it
    assert trap.read_text() == ""
    assert not (d / "session.json").is_symlink()


def test_0666_session_file_is_refused(tmp_path: Path) -> None:
    path = save_session(tmp_path, SESSION)
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="others may access"):
        load_session(tmp_path)


def test_export_is_new_private_and_never_follows_a_link(tmp_path: Path) -> None:
    out = _write_export(str(tmp_path / "r.json"), b"{}")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    trap = tmp_path / "trap"
    trap.write_text("")
    (tmp_path / "link.json").symlink_to(trap)
    with pytest.raises(InputError, match="refusing to overwrite"):
        _write_export(str(tmp_path / "link.json"), b"secret")
    assert trap.read_text() == ""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InputError, match="writable by others"):
        _write_export(str(shared / "r.json"), b"secret")


# --- issue 15, point 2: profiles and --session-file -------------------------------------------
@given(st.text(max_size=100))
def test_a_profile_name_is_one_safe_path_component(name: str) -> None:
    home = Path("/nonexistent-home")
    try:
        chosen = check_profile(name)
    except InputError as exc:
        assert "invalid profile name" in exc.message
        assert len(exc.message) < 150  # the name is shown, bounded
        return
    if chosen is None:
        assert name == ""
        return
    directory = client_dir(home, chosen)
    assert directory.parent == home / "client" / "profiles"
    assert directory.name == name and name not in (".", "..") and "/" not in name
    assert len(name) <= 64 and not name.startswith(("-", "."))


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "/abs", "-rf", ".hidden",
                                  "a\x00b", "x" * 65, "é"])
def test_bad_profile_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="invalid profile name"):
        check_profile(name)


def test_profiles_keep_their_own_sessions(tmp_path: Path) -> None:
    analyst = SESSION
    operator = StoredSession(target="localhost:1", user_id="olga", session_token="op-token",
                             expires_at="2030-01-01T00:00:00+05:00", key_uri="pkcs11:y")
    save_session(tmp_path, analyst, "analyst")
    path = save_session(tmp_path, operator, "operator")
    assert path == tmp_path / "client" / "profiles" / "operator" / "session.json"
    assert load_session(tmp_path, "analyst") == analyst
    assert load_session(tmp_path, "operator") == operator
    with pytest.raises(ConfigError, match="not logged in"):
        load_session(tmp_path)  # the default profile has no session
    for d in (client_dir(tmp_path), tmp_path / "client" / "profiles",
              client_dir(tmp_path, "operator")):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    os.chmod(client_dir(tmp_path, "operator"), 0o777)
    with pytest.raises(ConfigError, match="writable by others"):
        load_session(tmp_path, "operator")


def test_session_file_needs_a_private_directory(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    path = save_session(tmp_path, SESSION, session_file=mine / "s.json")
    assert path == mine / "s.json" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_session(tmp_path, session_file=str(path)) == SESSION
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(ConfigError, match="writable by others"):
        save_session(tmp_path, SESSION, session_file=shared / "s.json")
    assert not (shared / "s.json").exists()
    with pytest.raises(ConfigError, match="cannot use the session file"):
        session_path(tmp_path, session_file=tmp_path / "missing" / "s.json")
