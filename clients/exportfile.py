"""Exports a person writes to disk: a new private file, never an existing one.

The one home of the rule for ``siogw client query --export``/``--export-request`` and
``siogw client reports export``: a new file, mode 0600, not in a directory others may
write (unless sticky, like ``/tmp``), never an existing file or a planted symlink.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siogw_api.errors import InputError


def export_target(path: str) -> tuple[Path, Path]:
    """``path`` and its resolved directory, if an export may be created there (see
    ``clients.cli._write_export``); checked before a query is sent, and again when writing."""
    target = Path(path)
    parent = (target.parent if str(target.parent) else Path(".")).resolve()
    try:
        st = os.stat(parent)
    except OSError as exc:
        raise InputError(f"cannot create {target}", detail=exc.strerror) from exc
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise InputError(f"refusing to write {target}: {parent} is writable by others")
    if os.path.lexists(target):
        raise InputError(f"refusing to overwrite {target}")
    return target, parent


def stream_to_new_file(path: str, write: Callable[[Any], Any]) -> tuple[Path, Any]:
    """Call ``write(binary file)`` on a new private file beside ``path``, then give it the
    name ``path``; returns ``(path, write's result)``.

    Like ``siogw client query --export``: a new file, mode 0600, ``O_EXCL|O_NOFOLLOW``,
    never an existing file or a planted symlink, not in a directory others may write
    (unless sticky, like ``/tmp``). The data goes to a temporary file first, fsynced,
    and is linked to the target name only once ``write`` returned: an error (the
    gateway's, the stream's, a full disk) leaves no file, partial or temporary.
    """
    target, parent = export_target(path)
    temporary = parent / f".{target.name}.{secrets.token_hex(8)}.part"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise InputError(f"cannot create {target}", detail="temporary name taken") from None
    except OSError as exc:
        raise InputError(f"cannot create {target}", detail=exc.strerror) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # on the descriptor, whatever the umask
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, target, follow_symlinks=False)
        except FileExistsError:
            raise InputError(f"refusing to overwrite {target}") from None
        except OSError as exc:
            raise InputError(f"cannot create {target}", detail=exc.strerror) from exc
    except OSError as exc:  # writing (disk full): nothing partial stays
        raise InputError(f"cannot write {target}", detail=exc.strerror) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return target, result
