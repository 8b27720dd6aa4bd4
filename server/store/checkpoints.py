"""The audit log's signed checkpoints, kept in the gateway's database (issue 12, point 3).

The audit log lives in its own directory; whoever can rewrite that directory could also
rewrite the checkpoints kept beside it. So every checkpoint the log signs is also stored
here, outside the log directory (table ``audit_checkpoints``, migration 4): origin, tree
size, root hash, the signed note exactly as signed, and when it was stored. ``siogw
audit verify --db URL`` (:mod:`audit.stored`) reads them back and refuses a log that does
not reach the latest one, and checks each against the log's own tree.

The log calls :meth:`CheckpointStore.save_checkpoint` for each checkpoint it signs
(``on_checkpoint=`` of :meth:`audit.AuditLog.open`, wired in :mod:`server.assembly`).
A checkpoint is kept once (same origin, size and root: no new row). One of a size
already stored with another root is refused with :class:`CheckpointRegression`: the
log was forked or rewritten, and the stored history must not follow it. A smaller size
than the latest is kept: the sealer signs a rolled segment's seal after the writer has
gone on (and a ``GetCheckpoint`` may have signed a larger tree meanwhile); a log rolled
back as a whole is caught by ``siogw audit verify --db``, which refuses a log that does
not reach the latest stored checkpoint.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import sqlalchemy as sa

from server.store.base import StoreBase
from server.store.schema import audit_checkpoints
from siogw_api.errors import AuditError
from siogw_api.timeutil import now_utc

#: A signed checkpoint is a few hundred bytes; anything far larger is not one of ours.
MAX_NOTE_BYTES = 16 * 1024


class CheckpointRegression(AuditError):
    """A checkpoint of a tree size already stored for its origin, with another root."""


@dataclass(frozen=True)
class StoredCheckpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    note: bytes
    stored_at: _dt.datetime


def _row(r: sa.Row[tuple[object, ...]]) -> StoredCheckpoint:
    m = r._mapping
    return StoredCheckpoint(
        origin=str(m["origin"]), tree_size=int(m["tree_size"]),
        root_hash=bytes(m["root_hash"]), note=bytes(m["note"]), stored_at=m["stored_at"],
    )


class CheckpointStore(StoreBase):
    """The ``audit_checkpoints`` table (see the module docstring)."""

    def save_checkpoint(self, origin: str, tree_size: int, root_hash: bytes,
                        note: bytes) -> bool:
        """Store one signed checkpoint; True if a row was added (False: already kept).

        Raises :class:`CheckpointRegression` for another root at a stored size, and
        :class:`~server.store.errors.StoreUnavailable` when the database fails.
        """
        if len(note) > MAX_NOTE_BYTES or len(root_hash) != 32 or tree_size < 0:
            raise AuditError("not a checkpoint of this log (size, root or note length)")
        with self._write_lock, self._tx() as conn:
            same = conn.execute(
                sa.select(audit_checkpoints.c.root_hash)
                .where(audit_checkpoints.c.origin == origin,
                       audit_checkpoints.c.tree_size == tree_size)
                .limit(1)
            ).first()
            if same is not None:
                if bytes(same[0]) != root_hash:
                    raise CheckpointRegression(
                        f"a checkpoint of size {tree_size} with another root is stored",
                        detail=origin)
                return False
            conn.execute(audit_checkpoints.insert().values(
                origin=origin, tree_size=tree_size, root_hash=root_hash, note=note,
                stored_at=now_utc()))
        return True

    def latest_checkpoint(self, origin: str) -> StoredCheckpoint | None:
        with self._tx() as conn:
            r = conn.execute(
                sa.select(audit_checkpoints).where(audit_checkpoints.c.origin == origin)
                .order_by(audit_checkpoints.c.tree_size.desc(), audit_checkpoints.c.id.desc())
                .limit(1)
            ).first()
        return _row(r) if r is not None else None

    def stored_checkpoints(self, origin: str) -> list[StoredCheckpoint]:
        """Every stored checkpoint of ``origin``, smallest tree first."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(audit_checkpoints).where(audit_checkpoints.c.origin == origin)
                .order_by(audit_checkpoints.c.tree_size, audit_checkpoints.c.id)
            ).all()
        return [_row(r) for r in rows]
