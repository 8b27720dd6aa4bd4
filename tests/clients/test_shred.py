"""`shred`: content overwritten, file gone, non-regular files refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clients.shred import ShredRefused, shred


def test_shred_overwrites_then_unlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = b"IIN 900101300017 pension 123456 KZT\n" * 100
    target = tmp_path / "export.json"
    target.write_bytes(secret)
    seen: list[bytes] = []
    real_unlink = os.unlink

    def spy_unlink(path: str | os.PathLike[str], *a: object, **kw: object) -> None:
        with open(path, "rb") as fh:  # what is left on the inode right before unlink
            seen.append(fh.read())
        real_unlink(path)

    written: list[bytes] = []
    real_write = os.write

    def spy_write(fd: int, data: bytes) -> int:
        written.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "unlink", spy_unlink)
    monkeypatch.setattr(os, "write", spy_write)
    assert shred(target) == len(secret)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    overwritten = b"".join(written)
    assert len(overwritten) == len(secret)
    assert overwritten != secret and b"900101300017" not in overwritten
    assert seen == [b""]  # truncated after the overwrite, before the unlink


def test_shred_keeps_hard_link_content_destroyed(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_bytes(b"secret-data" * 50)
    other = tmp_path / "b.json"
    os.link(target, other)
    shred(target)
    assert not target.exists()
    assert b"secret-data" not in other.read_bytes()  # the shared inode was overwritten


def test_shred_refuses_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"keep me")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(ShredRefused, match="symlink"):
        shred(link)
    assert link.is_symlink() and real.read_bytes() == b"keep me"


def test_shred_refuses_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    (d / "x").write_bytes(b"x")
    with pytest.raises(ShredRefused, match="directory"):
        shred(d)
    assert (d / "x").read_bytes() == b"x"


def test_shred_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ShredRefused, match="no such file"):
        shred(tmp_path / "nope")


def test_cli_shred(tmp_path: Path) -> None:
    f = tmp_path / "out.json"
    f.write_bytes(b"{}")
    link = tmp_path / "l"
    link.symlink_to(f)
    env = {**os.environ, "SIOGW_HOME": str(tmp_path / "home")}
    bad = subprocess.run(
        [sys.executable, "-m", "siogw", "client", "shred", str(link)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0
    assert "refusing to shred a symlink" in bad.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "siogw", "client", "shred", str(f)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert not f.exists()
