"""``siogw admin applications|alerts|overdue-reviews|report`` on the gateway database."""

from __future__ import annotations

import csv
import datetime as _dt
import io
from pathlib import Path
from typing import Any

import pytest

from audit import AuditLog, AuditRecord
from audit.archive import iter_archive_records
from server.admin import execute
from server.ops import PAYLOAD_APPLICATION, Operations, sign_document
from server.resources.identifiers import make_iin
from server.store import Store
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.software import SoftwareSigner, generate_software_key
from siogw.cli import main
from siogw_api.timeutil import now_utc
from siogw_api.v1 import admin_pb2


def _home(tmp_path: Path, audit_signer_uri: str = "") -> Path:
    ca = CertificateAuthority.init(tmp_path / "ca", "CN=CLI Ops Root")
    toml = '[trust]\nanchors = ["ca/root.pem"]\n'
    if audit_signer_uri:
        toml += f'[audit]\nsigner_uri = "{audit_signer_uri}"\n'
    (tmp_path / "siogw.toml").write_text(toml)
    private = generate_software_key("ecdsa-p256-sha256")
    key = SoftwareSigner(private)
    cert = ca.issue(build_csr(key, "CN=Anna,O=AFM test,C=KZ"), "user", 30,
                    not_before=now_utc() - _dt.timedelta(hours=1))
    from cryptography.hazmat.primitives import serialization

    store = Store(f"sqlite:///{tmp_path / 'siogw.db'}").open()
    try:
        ops = Operations.open(store.engine, record=lambda *a: None,
                              trust=_trust(tmp_path), index=None)  # type: ignore[arg-type]
        import base64

        doc = {"iin": make_iin(_dt.date(1990, 2, 3), "F", 17), "full_name": "Anna",
               "unit": "Analytics", "post": "analyst", "phone": "+77010000041",
               "certificate": base64.b64encode(
                   cert.public_bytes(serialization.Encoding.DER)).decode(),
               "requested_role": "agency_user", "basis": "financial_monitoring"}
        app = ops.applications.file(sign_document(PAYLOAD_APPLICATION, doc,
                                                  SoftwareSigner(private, certificate=cert)))
        from server.ops import schema

        with store.engine.begin() as conn:  # two days later: past the one-day deadline
            conn.execute(schema.applications.update().where(
                schema.applications.c.id == app.id).values(
                deadline_at=now_utc() - _dt.timedelta(days=1)))
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id="cora", full_name="Cora", role="controller")))
    finally:
        store.close()
    return tmp_path


def _trust(home: Path) -> Any:
    from cryptography import x509

    from signing.trust import TrustStore

    return TrustStore([x509.load_pem_x509_certificate((home / "ca" / "root.pem").read_bytes())])


def test_offline_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(_home(tmp_path))]
    assert main(["admin", *home, "applications"]) == 0
    out = capsys.readouterr().out
    assert "pending agency_user 'Anna'" in out and "OVERDUE" in out
    assert out.strip().endswith("1 application(s)")
    assert main(["admin", *home, "applications", "--overdue"]) == 0
    assert "1 application(s)" in capsys.readouterr().out
    assert main(["admin", *home, "applications", "--status", "refused"]) == 0
    assert capsys.readouterr().out.strip() == "0 application(s)"
    assert main(["admin", *home, "alerts", "--open"]) == 0
    assert capsys.readouterr().out.strip() == "0 alert(s)"
    assert main(["admin", *home, "overdue-reviews", "--all"]) == 0
    # cora, enrolled as a controller by `siogw admin`, is one of the users the operations
    # domain sees (one users table) and has never recorded a review (R15).
    out = capsys.readouterr().out
    assert "cora last review never OVERDUE" in out
    assert out.strip().endswith("1 controller(s) overdue")
    # the report needs the audit key to record the read: a one-line error
    code = main(["admin", *home, "report", "--as", "cora"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("siogw: error:") and len(err.strip().splitlines()) == 1
    assert "audit.signer_uri" in err
    code = main(["admin", *home, "report", "--as", "nobody"])
    assert code != 0 and "no user 'nobody'" in capsys.readouterr().err


def test_report_csv_is_recorded(tmp_path: Path, ec_token_key: Any,
                                capsys: pytest.CaptureFixture[str]) -> None:
    home = _home(tmp_path, ec_token_key.uri)
    log = AuditLog.open(home / "audit", ec_token_key.signer, "sio-gateway/audit")
    log.append_sync(AuditRecord(actor="anna", event="query", outcome="success",
                                details={"resource": 1, "basis": "financial_monitoring",
                                         "task": "T-1", "request_id": "q-cli-1"}))
    log.close()
    out_file = tmp_path / "report.csv"
    assert main(["admin", "--home", str(home), "report", "--as", "cora", "--user", "anna",
                 "--csv", str(out_file)]) == 0, capsys.readouterr().err
    assert "1 query record(s) written" in capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out_file.read_text())))
    assert rows[1][8] == "q-cli-1"
    # issue 15's filters: the record names no subject, so a subject filter finds nothing
    none_file = tmp_path / "none.csv"
    assert main(["admin", "--home", str(home), "report", "--as", "cora", "--subject",
                 "900101300017", "--csv", str(none_file)]) == 0
    assert "0 query record(s) written" in capsys.readouterr().out
    events = [rec.event for _, rec in iter_archive_records(home / "audit")]
    assert events[-1] == "report.read"
    # an unknown reader is refused
    code = main(["admin", "--home", str(home), "report", "--as", "cora-not"])
    assert code != 0
    # while a gateway holds the audit log, the CLI points to the gRPC export
    held = AuditLog.open(home / "audit", ec_token_key.signer, "sio-gateway/audit")
    try:
        capsys.readouterr()
        code = main(["admin", "--home", str(home), "report", "--as", "cora"])
        err = capsys.readouterr().err
        assert code != 0 and "ExportQueriesCsv" in err and len(err.strip().splitlines()) == 1
    finally:
        held.close()
