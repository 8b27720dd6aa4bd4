"""Issue 12, point 3: the audit key of its own, checkpoints kept in the database, receipts
that prove inclusion in a signed tree.

* The audit log's checkpoints are standard C2SP signed notes under an Ed25519 key on a
  SoftHSM token: checked here by an independent reading of the C2SP ``signed-note`` and
  ``tlog-checkpoint`` specifications written in this file (not the project's
  ``signing.note``).
* The gateway refuses to start without an audit key, or with its result key as the audit
  key; the key history (``keys.json``) records the audit key.
* Every checkpoint the log signs is kept in ``audit_checkpoints`` (migration 4), seals
  signed after a larger checkpoint included; another root at a stored size is refused.
* A receipt is verified through GetCheckpoint (the audit key endorsed by the gateway's
  result key) and GetInclusionProof, with the client library's ``verify_receipt``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit import AuditLog, AuditRecord
from clients import ResultVerificationError
from clients._common import (
    AuditKeyInfo,
    CheckpointInfo,
    InclusionProofInfo,
    Receipt,
    checkpoint_from_proto,
    proof_from_proto,
    verify_receipt,
)
from server.assembly import build_gateway, keep_checkpoints, load_audit_signer
from server.config import load_config
from server.store import Store
from server.store.checkpoints import CheckpointRegression
from siogw_api.errors import ConfigError
from siogw_api.v1 import audit_pb2
from tests.server.conftest import Harness, bearer, make_token_signer


# --- an independent C2SP signed-note verifier (from the spec, not signing.note) ----------
def c2sp_vkey(name: str, public_raw: bytes) -> str:
    """The standard verifier key: ``<name>+<hex key hash>+<base64(0x01 || key)>``."""
    key_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public_raw).digest()[:4]
    typed = base64.b64encode(b"\x01" + public_raw).decode()
    return f"{name}+{key_hash.hex()}+{typed}"


def c2sp_verify(note: bytes, vkey: str) -> tuple[str, int, bytes]:
    """Verify ``note`` with the Ed25519 verifier key ``vkey`` per C2SP signed-note, then
    parse the body per C2SP tlog-checkpoint; return (origin, size, root hash)."""
    name, hash_hex, key_b64 = vkey.split("+", 2)  # the name has no "+", base64 may
    key_blob = base64.b64decode(key_b64)
    assert key_blob[0] == 0x01 and len(key_blob) == 33  # 0x01: Ed25519
    key_hash = bytes.fromhex(hash_hex)
    assert hashlib.sha256(name.encode() + b"\n" + key_blob).digest()[:4] == key_hash
    public = ed25519.Ed25519PublicKey.from_public_bytes(key_blob[1:])

    text = note.decode("utf-8")
    assert text.endswith("\n")
    body, _, signatures = text.rpartition("\n\n")
    body += "\n"  # the signed message is the text up to and including the last body LF
    verified = False
    for line in signatures.rstrip("\n").split("\n"):
        assert line.startswith("\u2014 ")  # em dash, space
        sig_name, sig_b64 = line[2:].split(" ")
        blob = base64.b64decode(sig_b64)
        if sig_name != name or blob[:4] != key_hash:
            continue
        try:
            public.verify(blob[4:], body.encode("utf-8"))
        except InvalidSignature:
            pytest.fail("the checkpoint's Ed25519 signature does not verify")
        verified = True
    assert verified, "no signature line for the verifier key"
    origin, size, root_b64, *_extensions = body.split("\n")[:-1]
    return origin, int(size), base64.b64decode(root_b64)


def _record(i: int) -> AuditRecord:
    return AuditRecord(actor="tester", event="admin", outcome="success",
                       details={"i": i, "pad": secrets.token_hex(8)})


@pytest.fixture(scope="module")
def ed25519_audit_signer(softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_token_signer(softhsm_store, tmp_path_factory.mktemp("audit-key"), "audit",
                             key_type="ed25519")


def test_checkpoints_and_seals_are_standard_c2sp_ed25519_notes(
    ed25519_audit_signer: Any, tmp_path: Path
) -> None:
    signer = ed25519_audit_signer
    assert signer.algorithm.value == "ed25519"
    raw = signer.public_key.public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    vkey = c2sp_vkey("sio-gateway/audit", raw)
    with AuditLog.open(tmp_path / "audit", signer, "sio-gateway/audit") as log:
        receipts = [log.append_sync(_record(i)) for i in range(5)]
        signed = log.checkpoint()
        origin, size, root = c2sp_verify(signed.note, vkey)
        assert (origin, size, root) == ("sio-gateway/audit", 5, signed.checkpoint.root_hash)
        assert receipts[-1].tree_size == size
        log.seal_now(timeout=30)
    seal = next((tmp_path / "audit" / "archive").glob("*.seal")).read_bytes()
    assert c2sp_verify(seal, vkey)[1] == 5
    # a verifier key of another name or key is not accepted: the test checks something
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with pytest.raises(AssertionError):
        c2sp_verify(seal, c2sp_vkey("sio-gateway/audit", other))


def test_the_key_history_records_the_audit_key(
    ed25519_audit_signer: Any, softhsm_store: Any, tmp_path: Path
) -> None:
    with AuditLog.open(tmp_path / "audit", ed25519_audit_signer, "sio-gateway/audit") as log:
        log.append_sync(_record(0))
    history = json.loads((tmp_path / "audit" / "archive" / "keys.json").read_text())
    assert [k["key_id"] for k in history["keys"]] == [ed25519_audit_signer.key_id]
    assert history["keys"][0]["algorithm"] == "ed25519"
    # rotated on its own schedule: a new audit key takes over, the old one is retired
    rotated = make_token_signer(softhsm_store, tmp_path, "audit2", key_type="ed25519")
    with AuditLog.open(tmp_path / "audit", rotated, "sio-gateway/audit") as log:
        assert [k.key_id for k in log.trusted_keys()] == [ed25519_audit_signer.key_id,
                                                          rotated.key_id]


# --- configuration ------------------------------------------------------------------------
def _config_home(tmp_path: Path, audit: str) -> Path:
    """A home whose config could serve but for its ``[audit]`` section (a trust anchor is
    there: a config without one is refused before the audit key is looked at)."""
    from signing.ca import CertificateAuthority

    if not (tmp_path / "root.pem").exists():
        ca = CertificateAuthority.init(tmp_path / "ca", "CN=Audit Key Test Root,C=KZ")
        (tmp_path / "root.pem").write_bytes(
            ca.root_certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "siogw.toml").write_text(
        f'[server]\nport = 0\n[trust]\nanchors = ["root.pem"]\n{audit}', encoding="utf-8")
    return tmp_path


def test_the_gateway_refuses_to_start_without_an_audit_key(
    tmp_path: Path, softhsm_store: Any
) -> None:
    gateway_signer = make_token_signer(softhsm_store, tmp_path, "gw")
    config = load_config(_config_home(tmp_path, ""), env={})
    with pytest.raises(ConfigError, match=r"audit\.signer_uri is not set"):
        build_gateway(config, signer=gateway_signer)
    assert not (tmp_path / "audit").exists()  # nothing opened


def test_the_gateway_refuses_its_result_key_as_audit_key(
    tmp_path: Path, softhsm_store: Any
) -> None:
    gateway_signer = make_token_signer(softhsm_store, tmp_path, "gw")
    uri = str(gateway_signer.uri)
    config = load_config(_config_home(tmp_path, f'[audit]\nsigner_uri = "{uri}"\n'), env={})
    with pytest.raises(ConfigError, match="key of its own"):
        load_audit_signer(config, gateway_signer)
    with pytest.raises(ConfigError, match="key of its own"):
        build_gateway(config, signer=gateway_signer)
    with pytest.raises(ConfigError, match="key of its own"):
        build_gateway(config, signer=gateway_signer, audit_signer=gateway_signer)


def test_audit_settings_are_read_and_checked(tmp_path: Path) -> None:
    home = _config_home(tmp_path, '[signer]\npin_source = "file:secrets/gw.pin"\n'
                        '[audit]\nsigner_uri = "pkcs11:token=t;object=audit"\n'
                        "segment_max_records = 16\n")
    config = load_config(home, env={})
    assert config.audit.signer_uri == "pkcs11:token=t;object=audit"
    assert config.audit.pin_source == f"file:{tmp_path / 'secrets' / 'gw.pin'}"
    assert config.audit.segment_max_records == 16
    env = {"SIOGW_AUDIT_SIGNER_URI": "pkcs11:token=u;object=a",
           "SIOGW_AUDIT_PIN_SOURCE": "env:AUDIT_PIN"}
    config = load_config(home, env=env)
    assert config.audit.signer_uri == "pkcs11:token=u;object=a"
    assert config.audit.pin_source == "env:AUDIT_PIN"
    with pytest.raises(ConfigError, match="segment_max_records"):
        load_config(_config_home(tmp_path, "[audit]\nsegment_max_records = -1\n"), env={})


# --- checkpoints kept in the database -----------------------------------------------------
def test_checkpoints_are_kept_in_the_database_and_never_fork(
    ed25519_audit_signer: Any, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}").open()
    try:
        with AuditLog.open(tmp_path / "audit", ed25519_audit_signer, "sio-gateway/audit",
                           on_checkpoint=keep_checkpoints(store)) as log:
            log.append_sync(_record(0))
            first = log.checkpoint()
            log.checkpoint()  # cached: not signed again, not stored again
            log.append_sync(_record(1))
            log.seal_now(timeout=30)  # the seal's checkpoint is kept too
            second = log.checkpoint()
        kept = store.stored_checkpoints("sio-gateway/audit")
        assert [k.tree_size for k in kept] == [0, 1, 2]  # open() signs the tree it found
        kept = kept[1:]
        assert kept[0].note == first.note and kept[0].root_hash == first.checkpoint.root_hash
        latest = store.latest_checkpoint("sio-gateway/audit")
        assert latest is not None and latest.tree_size == 2
        assert second.checkpoint.root_hash == latest.root_hash
        # the same checkpoint again is kept once; another root at a stored size is refused
        assert not store.save_checkpoint("sio-gateway/audit", 2, latest.root_hash, latest.note)
        assert not store.save_checkpoint("sio-gateway/audit", 1, kept[0].root_hash,
                                         kept[0].note)
        with pytest.raises(CheckpointRegression):
            store.save_checkpoint("sio-gateway/audit", 2, b"\x00" * 32, latest.note)
        with pytest.raises(CheckpointRegression):
            store.save_checkpoint("sio-gateway/audit", 1, b"\x00" * 32, kept[0].note)
        assert store.latest_checkpoint("another/log") is None
        # a seal signed after a larger checkpoint (the sealer runs behind the writer) is
        # kept, and the latest stays the larger one
        assert store.save_checkpoint("another/log", 5, b"\x05" * 32, b"note 5")
        assert store.save_checkpoint("another/log", 3, b"\x03" * 32, b"note 3")
        again = store.latest_checkpoint("another/log")
        assert again is not None and again.tree_size == 5
    finally:
        store.close()


# --- receipts over the wire ---------------------------------------------------------------
def _gateway_keys(gateway: Harness) -> list[Any]:
    cert = gateway.gateway.signer.certificate
    assert cert is not None
    return [cert.public_key()]


def test_a_receipt_is_proved_in_a_checkpoint_signed_by_the_endorsed_audit_key(
    gateway: Harness,
) -> None:
    token = gateway.session("alice")
    resp = gateway.send_query("alice")
    receipt = Receipt(resp.receipt.seq, bytes(resp.receipt.leaf_hash), resp.receipt.tree_size)
    cp = checkpoint_from_proto(gateway.audit.GetCheckpoint(audit_pb2.GetCheckpointRequest(),
                                                           metadata=bearer(token)))
    proof = proof_from_proto(gateway.audit.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(seq=receipt.seq, tree_size=cp.tree_size),
        metadata=bearer(token)))
    keys = _gateway_keys(gateway)
    log = gateway.gateway.audit_log
    assert cp.audit_key is not None
    assert cp.key_id == log.trusted_keys()[-1].key_id != gateway.gateway.signer.key_id
    assert verify_receipt(receipt, proof, cp, keys, origin=log.origin) == cp.tree_size
    # pinned audit key: the same answer without the endorsement
    pinned = [log.trusted_keys()[-1].public_key]
    assert verify_receipt(receipt, proof, cp, [], origin=log.origin,
                          audit_keys=pinned) == cp.tree_size
    # the checkpoint is kept in the gateway's database
    latest = gateway.gateway.store.latest_checkpoint(log.origin)
    assert latest is not None and latest.tree_size >= cp.tree_size

    # the result key does not sign checkpoints: pinning it as the audit key fails
    with pytest.raises(Exception, match="no signature from a trusted key"):
        verify_receipt(receipt, proof, cp, keys, origin=log.origin, audit_keys=keys)
    # an endorsement that does not verify, or is not by a pinned key, is refused
    bad = AuditKeyInfo(cp.audit_key.origin, cp.audit_key.public_key_der,
                       cp.audit_key.signer_key_id, bytes(len(cp.audit_key.signature)))
    forged = CheckpointInfo(cp.signed_checkpoint, cp.tree_size, cp.root_hash, cp.key_id, bad)
    with pytest.raises(ResultVerificationError, match="does not verify"):
        verify_receipt(receipt, proof, forged, keys, origin=log.origin)
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ResultVerificationError, match="not endorsed by a pinned"):
        verify_receipt(receipt, proof, cp, [other], origin=log.origin)
    with pytest.raises(ResultVerificationError, match="endorsed for log"):
        verify_receipt(receipt, proof, cp, keys, origin="another/log")
    # a receipt beyond the checkpoint is not covered by it
    later = Receipt(cp.tree_size, receipt.leaf_hash, cp.tree_size + 1)
    with pytest.raises(ResultVerificationError, match="does not cover"):
        verify_receipt(later, InclusionProofInfo(cp.tree_size, cp.tree_size,
                                                 receipt.leaf_hash, ()), cp, keys,
                       origin=log.origin)


# --- siogw audit verify --db ------------------------------------------------------------
def _siogw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "siogw", *args], capture_output=True,
                          text=True, timeout=120)


def test_audit_verify_db_refuses_a_log_short_of_the_latest_stored_checkpoint(
    ed25519_audit_signer: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url).open()
    log_dir = tmp_path / "audit"
    try:
        with AuditLog.open(log_dir, ed25519_audit_signer, "sio-gateway/audit",
                           on_checkpoint=keep_checkpoints(store)) as log:
            for i in range(3):
                log.append_sync(_record(i))
            log.checkpoint()
            log.append_sync(_record(3))
            log.checkpoint()
    finally:
        store.close()
    pem = tmp_path / "audit-key.pem"
    pem.write_bytes(ed25519_audit_signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ok = _siogw("audit", "verify", str(log_dir), "--keys", str(pem), "--db", url, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "tree size 4" in ok.stdout

    # a log short of the stored checkpoints (the same key, one record fewer, each signed
    # at its own time): refused against the database
    with AuditLog.open(tmp_path / "copy", ed25519_audit_signer, "sio-gateway/audit") as copy:
        for i in range(3):
            copy.append_sync(_record(i))
    cut = _siogw("audit", "verify", str(tmp_path / "copy"), "--keys", str(pem), "--db", url,
                 "--quiet")
    assert cut.returncode != 0
    assert "database checkpoint of size" in cut.stderr, cut.stderr
    # a log rewritten under the same key (other records, as many): every stored
    # checkpoint is checked against the records, not only the latest
    with AuditLog.open(tmp_path / "forged", ed25519_audit_signer, "sio-gateway/audit") as forged:
        for i in range(4):
            forged.append_sync(_record(100 + i))
    fork = _siogw("audit", "verify", str(tmp_path / "forged"), "--keys", str(pem), "--db", url,
                  "--quiet")
    assert fork.returncode != 0
    assert "database checkpoint of size" in fork.stderr, fork.stderr

    # a stored checkpoint that no trusted key signed is refused
    other = tmp_path / "other.pem"
    other.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    bad = _siogw("audit", "verify", str(log_dir), "--keys", str(other), "--db", url, "--quiet")
    assert bad.returncode != 0
    # a database without stored checkpoints cannot vouch for the log
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    Store(empty).open().close()
    none = _siogw("audit", "verify", str(log_dir), "--keys", str(pem), "--db", empty, "--quiet")
    assert none.returncode != 0 and "no stored checkpoint" in none.stderr
