"""The audit key history kept with the archive (``archive/keys.json``).

The audit key is a key of its own (the gateway's ``[audit] signer_uri``: Ed25519 on
the gateway token where it has it, ECDSA P-256 otherwise), never the key that signs
query results; it signs checkpoints and seals only and is rotated on its own schedule:
opening the log with a new audit key rotates it here (:func:`ensure_current`).

Format (UTF-8 JSON)::

    {"origin": "...", "keys": [
       {"key_id": "<hex SHA-256 of SPKI DER>", "algorithm": "ecdsa-p256-sha256",
        "public_key_pem": "-----BEGIN PUBLIC KEY-----...", "valid_from_size": 0,
        "valid_from_time": "2026-11-22T04:00:00.000000+05:00", "retired": false}, ...]}

A key signs seals of tree size ``>= valid_from_size``, which is the size of the last
seal made before it took over; the old key is then marked ``retired`` and its seals
(all of size ``<= valid_from_size``) keep verifying. The file is a convenience copy:
a verifier should be given the keys out of band (``siogw audit verify --keys``);
every rotation is also an ``audit.key_rotated`` record inside the log itself, so the
history is covered by the seals.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from audit.segments import parse_key_history
from signing.api import Signer
from signing.note import TrustedKey
from siogw_api.errors import ConfigError


def _entry(key: TrustedKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "algorithm": key.algorithm.value,
        "public_key_pem": key.public_pem(),
        "valid_from_size": key.valid_from_size,
        "valid_from_time": key.valid_from_time,
        "retired": key.retired,
    }


def read_history(path: Path) -> list[TrustedKey]:
    if not path.exists():
        return []
    return parse_key_history(path.read_bytes(), where=str(path))


def write_history(path: Path, origin: str, keys: list[TrustedKey]) -> None:
    """Write the history atomically (temp file, fsync, rename, fsync dir)."""
    doc = {"origin": origin, "keys": [_entry(k) for k in keys]}
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # confidential at rest, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def ensure_current(
    path: Path, origin: str, signer: Signer, sealed_size: int, now_text: str
) -> tuple[list[TrustedKey], TrustedKey | None]:
    """Make ``signer``'s key the current one; return (history, previous key if rotated)."""
    keys = read_history(path)
    current = keys[-1] if keys else None
    if current is not None and current.key_id == signer.key_id:
        return keys, None
    if any(k.key_id == signer.key_id for k in keys):
        raise ConfigError(
            "the audit signer's key is a retired audit key; re-activating keys is refused",
            detail=signer.key_id,
        )
    new = TrustedKey(
        public_key=signer.public_key,
        algorithm=signer.algorithm,
        valid_from_size=sealed_size,
        valid_from_time=now_text,
    )
    updated = [
        TrustedKey(k.public_key, k.algorithm, k.valid_from_size, k.valid_from_time, True)
        for k in keys
    ]
    updated.append(new)
    write_history(path, origin, updated)
    return updated, current
