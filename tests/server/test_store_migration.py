"""Migration 3 (one home for each fact): a database made before it, with rows in both the
store's tables and the operations tables, opens with one row per fact and the
``ops_users`` / ``ops_certificates`` / ``ops_maintenance`` tables gone. SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.ops import Actor, Operations, Role
from server.store import Store
from server.store.certificates import fingerprint
from server.store.schema import SCHEMA_VERSION, consents, logins, seen_requests
from server.store.users import USER_ACTIVE, USER_BLOCKED
from signing.api import key_id_for
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from signing.trust import TrustStore
from siogw_api.timeutil import now_utc

T = sa.DateTime(timezone=True)


def _v2_tables(md: sa.MetaData) -> None:
    """The tables as migrations 1-2 and the operations schema made them before migration 3."""
    sa.Table("schema_version", md, sa.Column("version", sa.Integer, primary_key=True,
                                             autoincrement=False),
             sa.Column("description", sa.String(200), nullable=False),
             sa.Column("applied_at", T, nullable=False))
    sa.Table("users", md, sa.Column("user_id", sa.String(64), primary_key=True),
             *(sa.Column(c, sa.String(300), nullable=False)
               for c in ("full_name", "role", "unit", "post", "phone", "status")),
             sa.Column("status_reason", sa.String(500), nullable=False),
             sa.Column("device_public_key_der", sa.LargeBinary),
             sa.Column("created_at", T, nullable=False), sa.Column("updated_at", T, nullable=False))
    sa.Table("certificates", md, sa.Column("fingerprint", sa.String(64), primary_key=True),
             sa.Column("user_id", sa.String(64), sa.ForeignKey("users.user_id"), nullable=False),
             sa.Column("serial_hex", sa.String(64), nullable=False, index=True),
             sa.Column("key_id", sa.String(64), nullable=False, index=True),
             sa.Column("der", sa.LargeBinary, nullable=False),
             sa.Column("registered_at", T, nullable=False))
    sa.Table("revocations", md, sa.Column("issuer", sa.String(500), primary_key=True),
             sa.Column("serial_hex", sa.String(64), primary_key=True, index=True),
             sa.Column("reason", sa.String(500), nullable=False),
             sa.Column("revoked_at", T, nullable=False))
    sa.Table("sessions", md, sa.Column("token_hash", sa.String(64), primary_key=True),
             sa.Column("user_id", sa.String(64), nullable=False, index=True),
             sa.Column("cert_fingerprint", sa.String(64), nullable=False, index=True),
             sa.Column("factor", sa.String(16), nullable=False),
             sa.Column("created_at", T, nullable=False), sa.Column("expires_at", T, nullable=False),
             sa.Column("ended_at", T))
    sa.Table("maintenance", md, sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("starts_at", T, nullable=False),
             sa.Column("ends_at", T, nullable=False, index=True),
             sa.Column("description", sa.String(1000), nullable=False),
             sa.Column("created_at", T, nullable=False))
    sa.Table("ops_users", md, sa.Column("user_id", sa.String(64), primary_key=True),
             sa.Column("iin", sa.String(12), nullable=False, index=True),
             *(sa.Column(c, sa.String(300), nullable=False)
               for c in ("full_name", "role", "unit", "post", "phone", "basis", "status")),
             sa.Column("block_kind", sa.String(16)),
             sa.Column("status_reason", sa.String(1000), nullable=False),
             sa.Column("application_id", sa.String(40)),
             sa.Column("created_at", T, nullable=False), sa.Column("updated_at", T, nullable=False))
    sa.Table("ops_certificates", md, sa.Column("fingerprint", sa.String(64), primary_key=True),
             sa.Column("user_id", sa.String(64), nullable=False, index=True),
             sa.Column("serial_hex", sa.String(64), nullable=False, index=True),
             sa.Column("issuer", sa.String(500), nullable=False),
             sa.Column("subject", sa.String(500), nullable=False),
             sa.Column("not_before", T, nullable=False), sa.Column("not_after", T, nullable=False),
             sa.Column("token_label", sa.String(64)), sa.Column("der", sa.LargeBinary,
                                                                nullable=False),
             sa.Column("registered_at", T, nullable=False), sa.Column("revoked_at", T),
             sa.Column("revocation_reason", sa.String(500)))
    sa.Table("ops_maintenance", md, sa.Column("id", sa.String(40), primary_key=True),
             sa.Column("starts_at", T, nullable=False), sa.Column("ends_at", T, nullable=False),
             sa.Column("what", sa.String(1000), nullable=False),
             sa.Column("published_by", sa.String(64), nullable=False),
             sa.Column("published_at", T, nullable=False))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    from tests.server.conftest import pg_test_url

    pg, drop = pg_test_url()
    yield pg
    drop()


def _person(ca: CertificateAuthority, name: str) -> tuple[x509.Certificate, bytes]:
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    cert = ca.issue(build_csr(signer, f"CN={name},O=AFM test,C=KZ"), "user", 30)
    return cert, cert.public_bytes(serialization.Encoding.DER)


def test_migration_3_moves_the_operations_rows_and_drops_their_tables(
    url: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=Migration Root,C=KZ")
    (olga_cert, olga_der), (anna_cert, anna_der) = _person(ca, "Olga"), _person(ca, "Anna")
    (anna2_cert, anna2_der) = _person(ca, "Anna rotated")
    now = now_utc().replace(microsecond=0)
    day = _dt.timedelta(days=1)
    engine = sa.create_engine(url)
    md = sa.MetaData()
    _v2_tables(md)
    md.create_all(engine)
    for table in (logins, consents, seen_requests):  # unchanged by migration 3
        table.create(engine)
    t = md.tables
    with engine.begin() as conn:
        conn.execute(t["schema_version"].insert(), [
            {"version": 1, "description": "initial", "applied_at": now},
            {"version": 2, "description": "indexes", "applied_at": now}])
        # olga: enrolled by `siogw admin` (store) and imported into ops; anna: registered
        # from an application (both tables, then transferred and blocked in ops only, the
        # mirror having missed it); petr: known to ops only.
        user = {"unit": "", "post": "", "phone": "", "status": "active", "status_reason": "",
                "device_public_key_der": None, "created_at": now, "updated_at": now}
        conn.execute(t["users"].insert(), [
            {**user, "user_id": "olga", "full_name": "Olga", "role": "operator",
             "phone": "+77010000001", "device_public_key_der": b"device"},
            {**user, "user_id": "anna", "full_name": "Anna", "role": "agency_user",
             "unit": "Analytics", "post": "analyst", "phone": "+77010000002"}])
        ops_user = {"basis": "", "block_kind": None, "status_reason": "", "status": "active",
                    "application_id": None, "created_at": now, "updated_at": now, "unit": "",
                    "post": "", "phone": ""}
        conn.execute(t["ops_users"].insert(), [
            {**ops_user, "user_id": "olga", "iin": "850517300005", "full_name": "Olga",
             "role": "operator"},
            {**ops_user, "user_id": "anna", "iin": "900101400002", "full_name": "Anna",
             "role": "agency_user", "unit": "Compliance", "post": "head", "phone": "+77010000002",
             "basis": "financial_monitoring", "status": "blocked", "block_kind": "violation",
             "status_reason": "query without a task", "application_id": "app-1",
             "updated_at": now + day},
            {**ops_user, "user_id": "petr", "iin": "800101300003", "full_name": "Petr",
             "role": "prosecutor"}])
        conn.execute(t["certificates"].insert(), [{
            "fingerprint": fingerprint(olga_der), "user_id": "olga",
            "serial_hex": format(olga_cert.serial_number, "x"),
            "key_id": key_id_for(olga_cert.public_key()),  # type: ignore[arg-type]
            "der": olga_der, "registered_at": now}, {
            "fingerprint": fingerprint(anna_der), "user_id": "anna",
            "serial_hex": format(anna_cert.serial_number, "x"),
            "key_id": key_id_for(anna_cert.public_key()),  # type: ignore[arg-type]
            "der": anna_der, "registered_at": now}])
        ops_cert = {"token_label": None, "registered_at": now, "revoked_at": None,
                    "revocation_reason": None}
        conn.execute(t["ops_certificates"].insert(), [
            {**ops_cert, "fingerprint": fingerprint(d), "user_id": "anna",
             "serial_hex": format(c.serial_number, "x"), "issuer": c.issuer.rfc4514_string(),
             "subject": c.subject.rfc4514_string(), "not_before": c.not_valid_before_utc,
             "not_after": c.not_valid_after_utc, "der": d}
            for c, d in ((anna_cert, anna_der), (anna2_cert, anna2_der))])
        # the rotated certificate's revocation never reached the store
        conn.execute(t["ops_certificates"].update().where(
            t["ops_certificates"].c.fingerprint == fingerprint(anna_der)).values(
            revoked_at=now, revocation_reason="keyCompromise", token_label="anna-1"))
        conn.execute(t["sessions"].insert().values(
            token_hash="s1", user_id="anna", cert_fingerprint=fingerprint(anna_der),
            factor="sms", created_at=now, expires_at=now + day))
        conn.execute(t["maintenance"].insert().values(
            id="w-store", starts_at=now, ends_at=now + day, description="store window",
            created_at=now))
        conn.execute(t["ops_maintenance"].insert(), [
            {"id": "w-store", "starts_at": now, "ends_at": now + day, "what": "store window",
             "published_by": "olga", "published_at": now},
            {"id": "w-ops", "starts_at": now + day, "ends_at": now + 2 * day,
             "what": "index rebuild", "published_by": "olga", "published_at": now}])
    engine.dispose()

    store = Store(url).open()
    try:
        assert store.version() == SCHEMA_VERSION == 6
        names = set(sa.inspect(store.engine).get_table_names())
        assert not names & {"ops_users", "ops_certificates", "ops_maintenance"}
        olga, anna, petr = (store.require_user(u) for u in ("olga", "anna", "petr"))
        assert olga.active and olga.phone == "+77010000001"
        assert olga.device_public_key_der == b"device"
        # the block in either table stood: the stricter status wins
        assert (anna.status, anna.status_reason) == (USER_BLOCKED, "query without a task")
        assert (anna.unit, anna.post) == ("Compliance", "head")  # the applied transfer
        assert petr.status == USER_ACTIVE and petr.role == "prosecutor"
        rotated = store.get_certificate(fingerprint(anna2_der))
        assert rotated is not None and rotated.key_id == key_id_for(
            anna2_cert.public_key())  # type: ignore[arg-type]
        rev = store.revocation(format(anna_cert.serial_number, "x"),
                               issuer=anna_cert.issuer.rfc4514_string())
        assert rev is not None and rev.reason == "keyCompromise"
        session = store.get_session("s1")
        assert session is not None and session.ended_at is not None
        windows = {w.id: w.description for w in store.windows()}
        assert windows == {"w-store": "store window", "w-ops": "index rebuild"}

        # The operations domain reads the same rows, details and revocation included.
        ops = Operations.open(store.engine, record=lambda *a: None,
                              trust=TrustStore([ca.root_certificate]),
                              index=None)  # type: ignore[arg-type]
        operator = Actor("olga", Role.OPERATOR)
        user = ops.lifecycle.require_user("anna")
        assert (user.iin, user.block_kind, user.application_id) == (
            "900101400002", "violation", "app-1")
        assert {u.user_id for u in ops.lifecycle.users(operator)} == {"olga", "anna", "petr"}
        certs = {c.certificate.fingerprint: c.certificate
                 for c in ops.certificates.overview(Actor("sam", Role.SECURITY_OFFICER))}
        assert set(certs) == {fingerprint(d) for d in (olga_der, anna_der, anna2_der)}
        assert certs[fingerprint(anna_der)].revoked
        assert certs[fingerprint(anna_der)].token_label == "anna-1"
        assert not certs[fingerprint(anna2_der)].revoked
        assert certs[fingerprint(olga_der)].issuer == olga_cert.issuer.rfc4514_string()
        assert {w.id: w.published_by for w in ops.journal.windows()} == {
            "w-store": "olga", "w-ops": "olga"}
    finally:
        store.drop_all()
        store.close()
