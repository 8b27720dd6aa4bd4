"""Interoperability with OpenSC's pkcs11-tool on the same SoftHSM token.

pkcs11-tool signs with keys our backend generated, and our ``verify_signature`` checks
the results; then pkcs11-tool verifies a signature our backend made.

NOTE: pkcs11-tool only takes the PIN on its argv (``--pin``), where ``ps`` can see it.
That is acceptable ONLY here, with a throwaway random PIN of a token that this test
creates and that is deleted with the session's temporary token store. Production code
never passes a PIN on argv.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from signing import Algorithm, Pkcs11Signer, verify_signature
from signing.errors import BadSignature
from softhsm.store import find_softhsm_library

IN_CI = os.environ.get("CI", "").lower() == "true"

PAYLOAD = b"interop payload: query 42"


@pytest.fixture
def pkcs11_tool() -> str:
    tool = shutil.which("pkcs11-tool")
    if tool is None:
        if IN_CI:
            pytest.fail("pkcs11-tool (OpenSC) missing under CI=true")
        pytest.skip("pkcs11-tool (OpenSC) not installed")
    return tool


def _run_tool(tool: str, token: Any, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [
        tool, "--module", str(find_softhsm_library()), "--token-label", token.label,
        "--login", "--pin", token.pin,  # throwaway test PIN: see the module docstring
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=60, check=False)


def test_pkcs11_tool_ecdsa_signature_verifies(
    pkcs11_tool: str, ec_token_key: Any, tmp_path: Path
) -> None:
    digest = tmp_path / "digest.bin"
    digest.write_bytes(hashlib.sha256(PAYLOAD).digest())
    sig_path = tmp_path / "sig.der"
    proc = _run_tool(
        pkcs11_tool, ec_token_key.token, "--sign", "--id", ec_token_key.key_id.hex(),
        "-m", "ECDSA", "--signature-format", "openssl",
        "-i", str(digest), "-o", str(sig_path),
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    signature = sig_path.read_bytes()
    signer: Pkcs11Signer = ec_token_key.signer
    verify_signature(signer.public_key, Algorithm.ECDSA_P256_SHA256, PAYLOAD, signature)
    with pytest.raises(BadSignature):
        verify_signature(signer.public_key, Algorithm.ECDSA_P256_SHA256, PAYLOAD + b"!",
                         signature)


def test_pkcs11_tool_rsa_pss_signature_verifies(
    pkcs11_tool: str, rsa_token_key: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(PAYLOAD)
    sig_path = tmp_path / "sig.bin"
    proc = _run_tool(
        pkcs11_tool, rsa_token_key.token, "--sign", "--id", rsa_token_key.key_id.hex(),
        "-m", "SHA256-RSA-PKCS-PSS", "--mgf", "MGF1-SHA256", "--salt-len", "32",
        "-i", str(data), "-o", str(sig_path),
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    verify_signature(
        rsa_token_key.signer.public_key, Algorithm.RSA_PSS_SHA256, PAYLOAD, sig_path.read_bytes()
    )


def test_pkcs11_tool_verifies_our_ecdsa_signature(
    pkcs11_tool: str, ec_token_key: Any, tmp_path: Path
) -> None:
    digest = tmp_path / "digest.bin"
    digest.write_bytes(hashlib.sha256(PAYLOAD).digest())
    sig_path = tmp_path / "ours.der"
    sig_path.write_bytes(ec_token_key.signer.sign(PAYLOAD))
    proc = _run_tool(
        pkcs11_tool, ec_token_key.token, "--verify", "--id", ec_token_key.key_id.hex(),
        "-m", "ECDSA", "--signature-format", "openssl",
        "-i", str(digest), "--signature-file", str(sig_path),
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Signature is valid" in proc.stdout
