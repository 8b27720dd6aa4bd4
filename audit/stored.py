"""Checkpoints the gateway kept outside the log directory, read back for ``siogw audit
verify --db URL``.

The gateway stores every checkpoint its audit log signs in its database (table
``audit_checkpoints``, written by ``server.store.checkpoints``; migration 4 of
``server.store.schema``). This module reads that table with SQLAlchemy Core by name --
the audit package never imports the server -- and checks what was read *before* the
archive is walked: every note's signature under the trusted keys (before parsing),
one origin, one root per size, and each row's columns equal to its signed note. Then
every stored checkpoint is handed to the walk (:func:`audit.archive.verify_archive`,
``checkpoints=``): the records must reach each one with its root at its size, which
also proves successive stored checkpoints consistent with each other; a log that does
not reach the latest is refused. Imported
only by the ``--db`` path of the command (SQLAlchemy is loaded there only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from signing.errors import VerificationError
from signing.note import Checkpoint, TrustedKey, open_checkpoint
from siogw_api.errors import InputError

#: The table ``server.store.schema`` creates (migration 4); read by name here.
TABLE = sa.table(
    "audit_checkpoints",
    sa.column("origin", sa.String()),
    sa.column("tree_size", sa.BigInteger()),
    sa.column("root_hash", sa.LargeBinary()),
    sa.column("note", sa.LargeBinary()),
    sa.column("id", sa.Integer()),
)


def read_stored_notes(url: str, origin: str | None) -> list[tuple[int, bytes, bytes]]:
    """(tree size, root hash, note) of every stored checkpoint (of ``origin`` if given),
    smallest tree first. :class:`InputError` when the database cannot be read."""
    try:
        engine = sa.create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise InputError("cannot open the checkpoint database", detail=str(exc)) from exc
    try:
        query = sa.select(TABLE.c.tree_size, TABLE.c.root_hash, TABLE.c.note)
        if origin is not None:
            query = query.where(TABLE.c.origin == origin)
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(TABLE.c.tree_size, TABLE.c.id)).all()
    except SQLAlchemyError as exc:
        raise InputError("cannot read the stored checkpoints (audit_checkpoints)",
                         detail=str(exc).splitlines()[0]) from exc
    finally:
        engine.dispose()
    return [(int(r[0]), bytes(r[1]), bytes(r[2])) for r in rows]


def stored_checkpoints(
    rows: Sequence[tuple[int, bytes, bytes]], keys: Sequence[TrustedKey],
    origin: str | None = None,
) -> list[Checkpoint]:
    """Check every stored checkpoint (module docstring); return them, smallest first.

    Raises :class:`~siogw_api.errors.CheckpointError` for a note no trusted key signed,
    :class:`~signing.errors.VerificationError` for rows that disagree with their notes,
    another origin or two roots for one size (rows come smallest tree first), and for
    no rows.
    """
    if not rows:
        raise VerificationError("the database holds no stored checkpoint of this log",
                                where="database")
    previous: Checkpoint | None = None
    out: list[Checkpoint] = []
    for size, root, note in rows:
        where = f"database checkpoint of size {size}"
        cp, _key = open_checkpoint(note, keys, origin=origin, where=where)
        if (cp.size, cp.root_hash) != (size, root):
            raise VerificationError("stored columns differ from the signed note", where=where)
        if previous is not None:
            if cp.origin != previous.origin:
                raise VerificationError("stored checkpoints of two logs", where=where)
            if cp.size < previous.size or (
                cp.size == previous.size and cp.root_hash != previous.root_hash
            ):  # rows come ordered by size: only a fork can trip this
                raise VerificationError(
                    f"stored checkpoints fork at size {cp.size}", where=where)
        previous = cp
        out.append(cp)
    return out
