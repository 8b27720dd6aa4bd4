"""The gateway's own revocation list (R8): entries take effect the moment they are written.

CRLs from the certifying centre are published on a schedule; a lost token must stop
working *now*. The gateway therefore keeps its own list of revoked certificates, looked
up on every verification. :class:`RevocationStore` is the interface; this module has an
in-memory implementation (tests, single process) and a JSON-file one (the CLI, several
processes on one host: every lookup re-reads the file, writes are atomic renames). The
server backs the same Protocol with its database.

A certificate is named by its issuer (RFC 4514 string of the issuer ``Name`` as
``cryptography`` renders it) and its serial number, as in a CRL entry. Reasons use the
RFC 5280 ``CRLReason`` names as ``cryptography.x509.ReasonFlags`` spells them
(``keyCompromise``, ``superseded``, ...).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography import x509

from siogw_api.errors import ConfigError, InputError, StorageError
from siogw_api.timeutil import astana_iso, ensure_utc, now_utc, parse_iso

#: RFC 5280 CRLReason names accepted for revocation entries.
REASONS: frozenset[str] = frozenset(flag.value for flag in x509.ReasonFlags)

#: Reasons after which no signature by the key is trusted, whatever time it claims.
COMPROMISE_REASONS: frozenset[str] = frozenset(
    {
        x509.ReasonFlags.key_compromise.value,
        x509.ReasonFlags.ca_compromise.value,
        x509.ReasonFlags.aa_compromise.value,
    }
)


def check_reason(reason: str) -> str:
    """Return ``reason`` if it is an RFC 5280 reason name, else raise :class:`InputError`."""
    if reason not in REASONS:
        raise InputError(
            f"unknown revocation reason {reason!r}", detail="one of " + ", ".join(sorted(REASONS))
        )
    return reason


@dataclass(frozen=True)
class RevocationEntry:
    """One revoked certificate: issuer + serial, when, why."""

    issuer: str
    serial: int
    revoked_at: _dt.datetime
    reason: str = "unspecified"

    def applies_at(self, at: _dt.datetime) -> bool:
        """Whether the revocation is in force for a check at time ``at``.

        A compromise reason applies whatever the time (a stolen key can sign with any
        claimed date); other reasons apply from ``revoked_at`` on, so signatures checked
        at an earlier time (audit re-verification) still stand.
        """
        return self.reason in COMPROMISE_REASONS or ensure_utc(self.revoked_at) <= ensure_utc(at)

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "serial": format(self.serial, "x"),
            "revoked_at": astana_iso(self.revoked_at),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, item: Any) -> RevocationEntry:
        if not isinstance(item, dict):
            raise InputError("revocation entry is not an object")
        try:
            issuer, serial_hex = item["issuer"], item["serial"]
            revoked_at, reason = item["revoked_at"], item.get("reason", "unspecified")
        except KeyError as exc:
            raise InputError(f"revocation entry has no {exc.args[0]!r} field") from exc
        if not isinstance(issuer, str) or not isinstance(serial_hex, str):
            raise InputError("revocation entry issuer/serial must be strings")
        if not isinstance(revoked_at, str) or not isinstance(reason, str):
            raise InputError("revocation entry revoked_at/reason must be strings")
        try:
            serial = int(serial_hex, 16)
        except ValueError as exc:
            raise InputError(f"revocation entry serial is not hex: {serial_hex!r}") from exc
        return cls(
            issuer=issuer,
            serial=serial,
            revoked_at=parse_iso(revoked_at),
            reason=check_reason(reason),
        )


def issuer_key(name: x509.Name) -> str:
    """How a store names an issuer: the RFC 4514 string of its ``Name``."""
    return name.rfc4514_string()


@runtime_checkable
class RevocationStore(Protocol):
    """Where the gateway records revocations. Lookups must see every completed ``revoke``."""

    def lookup(self, issuer: x509.Name, serial: int) -> RevocationEntry | None:
        """The entry for ``serial`` issued by ``issuer``, or ``None``."""
        ...

    def revoke(
        self,
        issuer: x509.Name,
        serial: int,
        reason: str = "unspecified",
        at: _dt.datetime | None = None,
    ) -> RevocationEntry:
        """Record a revocation (idempotent: the first entry for a certificate wins)."""
        ...

    def entries(self) -> list[RevocationEntry]:
        """Every entry, oldest first."""
        ...


def revoke_certificate(
    store: RevocationStore,
    certificate: x509.Certificate,
    reason: str = "unspecified",
    at: _dt.datetime | None = None,
) -> RevocationEntry:
    """Convenience: revoke ``certificate`` by its issuer and serial."""
    return store.revoke(certificate.issuer, certificate.serial_number, reason, at)


class InMemoryRevocationStore:
    """A thread-safe, process-local :class:`RevocationStore`."""

    def __init__(self, entries: list[RevocationEntry] | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], RevocationEntry] = {}
        for entry in entries or []:
            self._entries.setdefault((entry.issuer, entry.serial), entry)

    def lookup(self, issuer: x509.Name, serial: int) -> RevocationEntry | None:
        with self._lock:
            return self._entries.get((issuer_key(issuer), serial))

    def revoke(
        self,
        issuer: x509.Name,
        serial: int,
        reason: str = "unspecified",
        at: _dt.datetime | None = None,
    ) -> RevocationEntry:
        entry = RevocationEntry(
            issuer=issuer_key(issuer),
            serial=serial,
            revoked_at=ensure_utc(at) if at is not None else now_utc(),
            reason=check_reason(reason),
        )
        with self._lock:
            return self._entries.setdefault((entry.issuer, entry.serial), entry)

    def entries(self) -> list[RevocationEntry]:
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.revoked_at)


class JsonFileRevocationStore:
    """A :class:`RevocationStore` in one JSON file, re-read on every lookup.

    File format: ``{"version": 1, "entries": [{"issuer", "serial" (hex), "revoked_at"
    (ISO 8601, Astana), "reason"}]}``. A missing file is an empty store. Writes go to a
    temporary file in the same directory, fsync'd, then renamed over the old one, so a
    reader sees the old or the new list, never half of one. Writers in several processes
    are serialised by ``flock`` on ``<path>.lock``; readers never wait.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[tuple[str, int], RevocationEntry]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StorageError(f"cannot read revocation list {self.path}", detail=str(exc)) from exc
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"revocation list {self.path} is not JSON", detail=str(exc)) from exc
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ConfigError(f"revocation list {self.path} is not a version 1 list")
        items = doc.get("entries")
        if not isinstance(items, list):
            raise ConfigError(f"revocation list {self.path} has no 'entries' list")
        out: dict[tuple[str, int], RevocationEntry] = {}
        for item in items:
            try:
                entry = RevocationEntry.from_json(item)
            except InputError as exc:
                raise ConfigError(
                    f"revocation list {self.path} has a bad entry", detail=exc.diagnostics()
                ) from exc
            out.setdefault((entry.issuer, entry.serial), entry)
        return out

    def _store(self, entries: dict[tuple[str, int], RevocationEntry]) -> None:
        doc = {
            "version": 1,
            "entries": [e.to_json() for e in sorted(entries.values(), key=lambda e: e.revoked_at)],
        }
        data = json.dumps(doc, indent=2).encode("utf-8") + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".revocations-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(
                f"cannot write revocation list {self.path}", detail=str(exc)
            ) from exc

    def lookup(self, issuer: x509.Name, serial: int) -> RevocationEntry | None:
        return self._load().get((issuer_key(issuer), serial))

    def revoke(
        self,
        issuer: x509.Name,
        serial: int,
        reason: str = "unspecified",
        at: _dt.datetime | None = None,
    ) -> RevocationEntry:
        entry = RevocationEntry(
            issuer=issuer_key(issuer),
            serial=serial,
            revoked_at=ensure_utc(at) if at is not None else now_utc(),
            reason=check_reason(reason),
        )
        with self._lock, self._file_lock():
            entries = self._load()
            existing = entries.setdefault((entry.issuer, entry.serial), entry)
            if existing is entry:
                self._store(entries)
            return existing

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise writers in several processes (readers never wait: renames are atomic)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot lock {lock_path}", detail=str(exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def entries(self) -> list[RevocationEntry]:
        return sorted(self._load().values(), key=lambda e: e.revoked_at)
