"""``siogw audit …``: verify an archive, check receipts/proofs offline, rebuild the index.

Sub-commands (registered by :func:`register`)::

    siogw audit verify ARCHIVE_DIR (--keys KEYS.json|PEM ... | --trust-archive-keys)
                       [--origin O] [--checkpoint NOTE ...] [--witness DIR ...] [--db URL]
    siogw audit prove  (--bundle F | --checkpoint F --receipt F --proof F) --keys K ...
                       [--record F] [--old-checkpoint F --consistency F]
    siogw audit reindex --db URL ARCHIVE_DIR [--keys K ...] [--table-prefix P]

``verify`` prints progress to stderr on large archives and one summary line on success;
on the first bad place it fails with one line naming the file, seq and check (exit 5).
It needs keys kept outside the archive (``--keys``; the archive's ``keys.json`` is then
checked against them); trusting the archive's own ``keys.json`` takes
``--trust-archive-keys`` and the summary says so. Signed checkpoints kept outside the
archive (``--checkpoint`` files, ``--witness`` directories, and with ``--db URL`` the
checkpoints the gateway kept in its database, :mod:`audit.stored`) must all be reached
by the records; records past the newest are reported as a crash tail, or fail after a
clean stop. Other sources of checkpoints plug in through :func:`outside_checkpoints`.
The verifier modules are pure and light; only ``reindex`` imports :mod:`audit.index`
(SQLAlchemy), inside the command, so ``siogw --help`` and ``verify`` stay light.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from audit.archive import (
    ARCHIVE_DIR,
    KEYS_FILE,
    SourcedCheckpoint,
    load_checkpoints,
    load_trusted_keys,
    verify_archive,
)
from audit.receipts import verify_consistency_notes, verify_receipt
from siogw_api.errors import InputError


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="verify the WORM audit archive and proofs")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True

    v = sub.add_parser("verify", help="verify every segment, seal, chain and Merkle root")
    v.add_argument("archive", type=Path, help="log directory (or its archive/ directory)")
    _key_args(v)
    v.add_argument("--origin", default=None, help="expected log origin")
    v.add_argument("--checkpoint", nargs="+", type=Path, default=None,
                   help="signed checkpoints kept out of band; the archive must reach them")
    v.add_argument("--witness", nargs="+", type=Path, default=None,
                   help="witness directories; the archive must reach every checkpoint* "
                        "file in them")
    v.add_argument("--db", dest="checkpoint_db", default=None, metavar="URL",
                   help="the gateway's database (SQLAlchemy URL): the archive must reach "
                        "the latest checkpoint stored there")
    v.add_argument("--quiet", action="store_true", help="no progress on stderr")
    v.add_argument("--strict", action="store_true",
                   help="also parse and schema-check every record (slower)")
    v.add_argument("--jobs", type=int, default=None,
                   help="worker processes reading segments (default: automatic)")
    v.set_defaults(func=_cmd_verify)

    p = sub.add_parser("prove", help="check a receipt and its inclusion proof offline")
    p.add_argument("--bundle", type=Path, help="JSON with checkpoint, receipt and proof")
    p.add_argument("--checkpoint", type=Path, help="signed checkpoint (note text)")
    p.add_argument("--receipt", type=Path, help="receipt JSON")
    p.add_argument("--proof", type=Path, help="inclusion proof JSON")
    p.add_argument("--record", type=Path, help="canonical record bytes to match the receipt")
    p.add_argument("--old-checkpoint", type=Path, help="an older checkpoint to link")
    p.add_argument("--consistency", type=Path, help="consistency proof JSON (old -> new)")
    p.add_argument("--keys", nargs="+", type=Path, required=True, help="trusted audit keys")
    p.set_defaults(func=_cmd_prove)

    r = sub.add_parser("reindex", help="rebuild the Reports index from the verified log")
    r.add_argument("archive", type=Path)
    r.add_argument("--db", required=True, help="SQLAlchemy URL")
    _key_args(r)
    r.add_argument("--table-prefix", default="", help="prefix for the index table name")
    r.set_defaults(func=_cmd_reindex)


def _key_args(parser: Any) -> None:
    parser.add_argument("--keys", nargs="+", type=Path, default=None,
                        help="trusted audit keys kept outside the archive: key-history "
                             "JSON and/or PEM public keys")
    parser.add_argument("--trust-archive-keys", action="store_true",
                        help="trust the archive's own keys.json instead (a wholly "
                             "rewritten archive under a new key would pass)")


def _keys(args: argparse.Namespace) -> list[Any]:
    if args.keys:
        if args.trust_archive_keys:
            raise InputError("give --keys or --trust-archive-keys, not both")
        return load_trusted_keys(args.keys)
    if not args.trust_archive_keys:
        raise InputError("give the trusted audit keys kept outside the archive (--keys), "
                         "or --trust-archive-keys to trust the archive's own keys.json")
    root: Path = args.archive
    path = root / ARCHIVE_DIR / KEYS_FILE
    if not path.exists():
        path = root / KEYS_FILE
    if not path.exists():
        raise InputError("the archive has no keys.json to trust")
    print(f"siogw: warning: trusting the archive's own key history {path} "
          "(--trust-archive-keys)", file=sys.stderr)
    return load_trusted_keys([path])


def _db_anchor(args: argparse.Namespace, keys: list[Any]) -> list[SourcedCheckpoint]:
    """``--db URL``: every checkpoint kept in the gateway's database, each checked
    (:mod:`audit.stored`); the records must reach all of them. None without ``--db``."""
    url = getattr(args, "checkpoint_db", None)
    if url is None:
        return []
    # Deferred: audit.stored loads SQLAlchemy, needed by --db only.
    from audit.stored import read_stored_notes, stored_checkpoints

    origin = getattr(args, "origin", None)
    return [(cp, f"database checkpoint of size {cp.size}")
            for cp in stored_checkpoints(read_stored_notes(url, origin), keys, origin)]


def outside_checkpoints(args: argparse.Namespace, keys: list[Any]) -> list[SourcedCheckpoint]:
    """Signed checkpoints kept outside the archive that the records must reach."""
    paths = list(getattr(args, "checkpoint", None) or ()) + list(
        getattr(args, "witness", None) or ())
    return load_checkpoints(paths, keys) + _db_anchor(args, keys)


def _verify(args: argparse.Namespace, keys: list[Any]) -> Any:
    given = outside_checkpoints(args, keys)
    if not given and not getattr(args, "quiet", False):
        print("siogw: warning: no checkpoint kept outside the archive (--checkpoint, "
              "--witness, --db): records cut from the end are detected only against the "
              "log's own checkpoint file", file=sys.stderr)
    start = time.monotonic()
    last = [start]
    quiet = getattr(args, "quiet", False)

    def progress(records: int, segments: int, name: str) -> None:
        now = time.monotonic()
        if not quiet and now - last[0] >= 1.0:
            rate = records / max(now - start, 1e-9)
            print(f"verified {segments} segments, {records} records ({rate:,.0f}/s) … {name}",
                  file=sys.stderr, flush=True)
            last[0] = now

    return verify_archive(args.archive, keys, origin=getattr(args, "origin", None),
                          progress=progress, checkpoints=given,
                          strict=getattr(args, "strict", False),
                          workers=getattr(args, "jobs", None),
                          archive_keys_trusted=bool(args.trust_archive_keys))


def _cmd_verify(args: argparse.Namespace) -> int:
    keys = _keys(args)
    report = _verify(args, keys)
    for w in report.warnings:
        print(f"siogw: warning: {w}", file=sys.stderr)
    latest = report.latest_checkpoint
    covered = "no checkpoint" if latest is None else (
        f"latest checkpoint tree size {latest.size}"
        + (" (clean stop)" if "stopped" in latest.extensions else "")
        + f" from {report.latest_checkpoint_where}")
    trust = ("keys: the archive's own keys.json (--trust-archive-keys, NOT checked "
             "against keys kept elsewhere)" if args.trust_archive_keys
             else "keys: given with --keys; the archive's key history matches them")
    print(f"OK: {report.sealed_segments} sealed segments, {report.records} records "
          f"({report.live_records} unsealed, {report.unsigned_records} past the latest "
          f"checkpoint), tree size {report.tree_size}, root {report.root_hash.hex()}; "
          f"{covered}; {trust}")
    return 0


def _read_json(path: Path, what: str) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from exc


def _cmd_prove(args: argparse.Namespace) -> int:
    keys = load_trusted_keys(args.keys)
    if args.bundle is not None:
        bundle = _read_json(args.bundle, "bundle")
        if not isinstance(bundle, dict):
            raise InputError("bundle is not a JSON object")
        try:
            note = str(bundle["checkpoint"]).encode("utf-8")
            receipt, proof = bundle["receipt"], bundle["proof"]
        except KeyError as exc:
            raise InputError(f"bundle lacks {exc}") from exc
    else:
        if not (args.checkpoint and args.receipt and args.proof):
            raise InputError("give --bundle, or --checkpoint, --receipt and --proof")
        note = args.checkpoint.read_bytes()
        receipt = _read_json(args.receipt, "receipt")
        proof = _read_json(args.proof, "proof")
    if not isinstance(receipt, dict) or not isinstance(proof, dict):
        raise InputError("receipt and proof must be JSON objects")
    record = args.record.read_bytes() if args.record else None
    proved = verify_receipt(note, receipt, proof, keys, record=record)
    print(f"OK: seq {proved.seq} is in {proved.origin} at tree size {proved.checkpoint.size} "
          f"(signed by {proved.key_id[:16]})")
    if args.old_checkpoint or args.consistency:
        if not (args.old_checkpoint and args.consistency):
            raise InputError("--old-checkpoint and --consistency go together")
        cons = _read_json(args.consistency, "consistency proof")
        if not isinstance(cons, dict):
            raise InputError("consistency proof must be a JSON object")
        old, new = verify_consistency_notes(args.old_checkpoint.read_bytes(), note, cons, keys)
        print(f"OK: tree size {new.size} is consistent with tree size {old.size}")
    return 0


def _cmd_reindex(args: argparse.Namespace) -> int:
    # Deferred: audit.index loads SQLAlchemy, needed by this command only.
    from audit.index import AuditIndex

    keys = _keys(args)
    _verify(args, keys)  # the index is only ever built from a verified log
    index = AuditIndex(args.db, table_prefix=args.table_prefix)
    try:
        count = index.rebuild(args.archive)
    finally:
        index.dispose()
    print(f"OK: indexed {count} records into {index.table.name}")
    return 0
