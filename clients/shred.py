"""Destroy an exported result file (R14: copies on a local device are destroyed at once).

The file's bytes are overwritten in place with random data, flushed to the device with
``fsync``, the file is renamed to a random name (so the directory entry no longer names
the case), and unlinked; the directory is then fsynced. On copy-on-write or journalling
file systems and on SSDs an overwrite cannot guarantee the old blocks are gone; the
overwrite defeats casual recovery and the unlink removes the file. Only regular files
are touched: directories, symlinks and special files are refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from siogw_api.errors import InputError, StorageError

_CHUNK = 1024 * 1024


class ShredRefused(InputError):
    """The path is not a regular file (a directory, a symlink, a device) or is missing."""


def shred(path: str | Path, *, passes: int = 1) -> int:
    """Overwrite ``path`` with random bytes ``passes`` times, fsync, rename and unlink it.

    Returns the number of bytes overwritten per pass. Raises :class:`ShredRefused` for
    anything but a regular file (symlinks are not followed) and
    :class:`~siogw_api.errors.StorageError` when the file system fails.
    """
    target = Path(path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        raise ShredRefused(f"no such file: {target}") from None
    except OSError as exc:
        raise StorageError(f"cannot stat {target}", detail=exc.strerror) from exc
    if stat.S_ISLNK(st.st_mode):
        raise ShredRefused(f"refusing to shred a symlink: {target} (shred its target instead)")
    if stat.S_ISDIR(st.st_mode):
        raise ShredRefused(f"refusing to shred a directory: {target}")
    if not stat.S_ISREG(st.st_mode):
        raise ShredRefused(f"refusing to shred a special file: {target}")
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        raise StorageError(f"cannot open {target} for writing", detail=exc.strerror) from exc
    try:
        if os.fstat(fd).st_ino != st.st_ino:
            raise ShredRefused(f"{target} changed while it was being opened")
        size = st.st_size
        for _ in range(max(1, passes)):
            os.lseek(fd, 0, os.SEEK_SET)
            left = size
            while left > 0:
                n = min(left, _CHUNK)
                os.write(fd, secrets.token_bytes(n))
                left -= n
            os.fsync(fd)
        os.ftruncate(fd, 0)
        os.fsync(fd)
    except OSError as exc:
        raise StorageError(f"cannot overwrite {target}", detail=exc.strerror) from exc
    finally:
        os.close(fd)
    directory = target.parent
    scrambled = directory / f".shred-{secrets.token_hex(8)}"
    try:
        os.rename(target, scrambled)
        os.unlink(scrambled)
    except OSError as exc:
        raise StorageError(f"cannot remove {target}", detail=exc.strerror) from exc
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return size
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return size
