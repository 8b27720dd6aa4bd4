"""Fixtures of the operations-domain tests.

``db_url`` is parametrised over SQLite (a file in ``tmp_path``) and PostgreSQL (a fresh
schema per test, dropped afterwards; skipped without ``SIOGW_TEST_PG_URL``).
``ops`` builds :class:`server.ops.Operations` over it with a settable clock, a recorder
that keeps every event in a list (``recorder.events``), a test CA as the trust anchor
and the audit index (``audit.index.AuditIndex``) in the same database.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from audit.index import AuditIndex
from server.ops import Actor, AuditIndexQueries, Operations, Role, drop_schema
from server.resources.identifiers import make_iin
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore
from siogw_api.timeutil import now_utc


def fresh_pg_schema(base_url: str) -> tuple[str, Callable[[], None]]:
    schema = f"ops_test_{secrets.token_hex(4)}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return f"{base_url}{sep}options=-csearch_path%3D{schema}", drop


@pytest.fixture(params=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ops.db'}"
        return
    base = request.getfixturevalue("pg_url")
    url, drop = fresh_pg_schema(base)
    yield url
    drop()


class Clock:
    """A settable clock (UTC)."""

    def __init__(self, start: _dt.datetime) -> None:
        self.now = start

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> _dt.datetime:
        self.now += _dt.timedelta(**kwargs)
        return self.now


@dataclass
class ListRecorder:
    """The audit callable, keeping events in memory; ``fail`` makes it refuse."""

    events: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def __call__(self, event_type: str, actor: str, outcome: str,
                 details: Mapping[str, Any]) -> None:
        if self.fail:
            from audit.errors import AuditUnavailable

            raise AuditUnavailable("audit log is down (test)")
        self.events.append({"event_type": event_type, "actor": actor, "outcome": outcome,
                            "details": dict(details)})

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == event_type]


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path_factory.mktemp("ops-ca") / "ca",
                                     "CN=Ops Test Root,O=AFM test,C=KZ")


@pytest.fixture
def trust(ca: CertificateAuthority) -> TrustStore:
    return TrustStore([ca.root_certificate])


@dataclass
class Person:
    """Someone with a software key and a certificate from the test CA."""

    name: str
    iin: str
    signer: SoftwareSigner

    @property
    def cert(self) -> x509.Certificate:
        cert = self.signer.certificate
        assert cert is not None
        return cert

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


_serial = iter(range(1, 10_000))


def make_person(ca: CertificateAuthority, name: str, days: int = 30) -> Person:
    key = generate_software_key("ecdsa-p256-sha256")
    bare = SoftwareSigner(key)
    cert = ca.issue(build_csr(bare, f"CN={name},O=AFM test,C=KZ"), "user", days,
                    not_before=now_utc() - _dt.timedelta(hours=1))
    iin = make_iin(_dt.date(1985, 5, 17), "M", next(_serial) * 7)
    return Person(name, iin, SoftwareSigner(key, certificate=cert))


@pytest.fixture
def people(ca: CertificateAuthority) -> Callable[..., Person]:
    return lambda name, days=30: make_person(ca, name, days)


@pytest.fixture
def clock() -> Clock:
    return Clock(now_utc().replace(microsecond=0))


@pytest.fixture
def recorder() -> ListRecorder:
    return ListRecorder()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(db_url)
    yield eng
    drop_schema(eng)
    eng.dispose()


@pytest.fixture
def audit_index(db_url: str) -> Iterator[AuditIndex]:
    index = AuditIndex(db_url, table_prefix="opst_")
    index.create()
    yield index
    index.drop()
    index.dispose()


@pytest.fixture
def ops(engine: sa.Engine, recorder: ListRecorder, trust: TrustStore, clock: Clock,
        audit_index: AuditIndex) -> Operations:
    return Operations.open(engine, record=recorder, trust=trust,
                           index=AuditIndexQueries(audit_index), clock=clock)


OPERATOR = Actor("olga", Role.OPERATOR)
CONTROLLER = Actor("carl", Role.CONTROLLER)
PROSECUTOR = Actor("petr", Role.PROSECUTOR)
SECURITY = Actor("sam", Role.SECURITY_OFFICER)
AGENCY = Actor("alice", Role.AGENCY_USER)
