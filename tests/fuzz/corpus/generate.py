"""Regenerate the seed corpus of the fuzz tests: a few real samples per parser.

Run from the repository root: ``python -m tests.fuzz.corpus.generate``. The samples are
real outputs of the project's own writers (a DSSE envelope, a signed checkpoint, a
segment with two records, a certificate and a CRL from the test CA, a query and an
admin command, a configuration); the fuzz tests start from them and mutate.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from audit.record import AuditRecord, encode_record
from audit.segments import MAGIC, encode_frame
from signing import dsse
from signing.ca import CertificateAuthority
from signing.csr import build_csr
from signing.note import Checkpoint, note_key_hash, sign_note
from signing.software import SoftwareSigner, generate_software_key
from siogw_api.v1 import admin_pb2, query_pb2

HERE = Path(__file__).parent
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def main() -> None:
    signer = SoftwareSigner(generate_software_key("ecdsa-p256-sha256"))
    query = query_pb2.Query(
        request_id="r-1", resource=1, parameters={"iin": "900101300123"},
        basis="financial_monitoring", task_ref="TASK-1", justification="a check",
        created_at="2026-06-01T17:00:00+05:00",
    ).SerializeToString(deterministic=True)
    admin = admin_pb2.AdminCommand(
        request_id="a-1", created_at="2026-06-01T17:00:00+05:00",
        block_user=admin_pb2.BlockUser(user_id="bob", reason="left"),
    ).SerializeToString(deterministic=True)
    env = dsse.sign_envelope(dsse.PAYLOAD_QUERY, query, signer)
    records = [
        encode_record(AuditRecord(actor="alice", event="query", outcome="success",
                                  details={"resource": 1}, payload=query), 0, T0),
        encode_record(AuditRecord(actor="anonymous", event="refusal", outcome="refused",
                                  details={"reason": "MALFORMED_REQUEST"}), 1, T0),
    ]
    cp = Checkpoint("sio-gateway/test", 2, bytes(32), ("key abc",))
    kh = note_key_hash(cp.origin, signer.public_key, signer.algorithm)
    note = sign_note(cp.body(), cp.origin, signer.sign, kh)
    with tempfile.TemporaryDirectory() as tmp:
        ca = CertificateAuthority.init(Path(tmp) / "ca", "CN=Fuzz Root,C=KZ")
        crl = ca.publish_crl()
        leaf = ca.issue(build_csr(signer, "CN=Alice,O=AFM,C=KZ"), "user")
        root = ca.root_certificate
        samples = {
            "dsse/envelope.json": env.to_json(),
            "query/query.bin": query,
            "admin/block_user.bin": admin,
            "record/query.json": records[0],
            "record/refusal.json": records[1],
            "segment/two_records.seg": MAGIC + b"".join(encode_frame(r) for r in records),
            "note/checkpoint.txt": note,
            "cert/root.pem": root.public_bytes(serialization.Encoding.PEM),
            "cert/leaf.der": leaf.public_bytes(serialization.Encoding.DER),
            "cert/bundle.pem": leaf.public_bytes(serialization.Encoding.PEM)
            + root.public_bytes(serialization.Encoding.PEM),
            "crl/crl.pem": Path(crl).read_bytes() if isinstance(crl, (str, Path))
            else crl.public_bytes(serialization.Encoding.PEM),
            "config/siogw.toml": b'[server]\nport = 8443\nhost = "127.0.0.1"\n\n'
            b'[trust]\nanchors = ["root.pem"]\ncrls = ["ca/crl.pem"]\n\n'
            b"[limits]\nmax_message_bytes = 65536\n",
        }
    for name, data in samples.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    main()
