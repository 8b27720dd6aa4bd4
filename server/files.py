"""Files and directories the gateway creates under its home: only its own user reads them.

The home holds people's records (``siogw.db``: names, phone numbers, requests), the SMS
outbox (login codes), the audit log and the Unix sockets of the worker processes. Two
layers, so neither a umask nor a library that creates its own files can widen them:

1. ``siogw serve`` sets the process umask to :data:`PRIVATE_UMASK` (``0o077``) first
   (:func:`restrict_umask`): whatever the process or a library creates afterwards -- the
   SQLite ``-wal``/``-shm`` files, audit segments, sockets, temporary files -- is at most
   0600 (files) / 0700 (directories). Worker processes inherit it.
2. Every place that creates a file or directory under the home names its mode
   explicitly through :func:`private_dir` / :func:`private_file`, so a library user that
   never calls :func:`restrict_umask` (tests, ``siogw admin``) gets the same modes. An
   existing one with group or other bits (an older installation) is tightened, and one
   that belongs to another user is refused (:class:`~siogw_api.errors.ConfigError`).

SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database file, so a
database made 0600 here keeps them 0600 under any umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from siogw_api.errors import ConfigError

#: The umask of a serving gateway process: nothing for group or others.
PRIVATE_UMASK = 0o077

#: Modes of what the gateway creates under its home.
DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict_umask() -> int:
    """Set the process umask to :data:`PRIVATE_UMASK`; the previous one."""
    return os.umask(PRIVATE_UMASK)


def _own(path: Path, st: os.stat_result, mode: int) -> None:
    if st.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to another user")
    if stat.S_IMODE(st.st_mode) & ~mode & 0o777:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode, follow_symlinks=False)


def private_dir(path: Path, *, follow_links: bool = True) -> Path:
    """``path`` as a directory only this user can enter (0700; created with its parents
    if needed, tightened if it has group or other bits).

    With ``follow_links=False`` (the runtime directory of the sockets, issue 14 finding
    12) ``path`` itself must not be a symbolic link, and its parent must not be writable
    by other users (who could swap it), or it is refused."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        raise ConfigError(f"cannot create directory {path}",
                          detail=exc.strerror or type(exc).__name__) from exc
    if stat.S_ISLNK(st.st_mode) and not follow_links:
        raise ConfigError(f"{path} is a symbolic link; refusing to use it")
    if not follow_links:
        parent = path.parent.stat()
        if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX:
            raise ConfigError(f"{path.parent} is writable by other users")
    if stat.S_ISLNK(st.st_mode):
        st = path.stat()  # an operator's symlinked home: check and tighten its target
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{path} is not a directory")
    _own(path.resolve(), st, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a regular file only this user can read (0600): created empty if it
    does not exist (never through a symlink), tightened if it has group or other bits.
    Its directory is made with :func:`private_dir`."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}",
                          detail=exc.strerror or type(exc).__name__) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if st.st_uid != os.getuid():
            raise ConfigError(f"{path} belongs to another user")
        if stat.S_IMODE(st.st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
