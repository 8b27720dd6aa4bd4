"""The client library as its own distribution: ``pip install ./clients`` into a fresh venv.

The venv gets the packages ``clients``, ``signing`` and ``siogw_api`` and the
``siogw-client`` command, and not the server, SQLAlchemy or grpcio-tools. The installed
command then logs in, signs consent, queries and verifies results against the real
gateway of ``client_world`` (TLS, SoftHSM tokens), with the suite's ``SOFTHSM2_CONF``.

The three package directories are copied beside a copy of ``clients/`` first (the layout
of the repository), so the in-tree build writes nothing into the checkout and parallel
runs do not share a build directory. pip may fetch the dependencies from the index.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siogw import demo

from .conftest import ClientWorld

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: The repository directories `clients/pyproject.toml` builds from.
SOURCES = ("clients", "signing", "siogw_api")
#: Must not be importable in the client-only venv.
ABSENT = ("server", "audit", "softhsm", "siogw", "sqlalchemy", "grpc_tools", "tenacity")


@dataclasses.dataclass(frozen=True)
class ClientVenv:
    root: Path
    cwd: Path  # outside the checkout: nothing of the repository is importable from here

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def command(self) -> Path:
        return self.root / "bin" / "siogw-client"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.root)
        env["HOME"] = str(self.cwd)
        return {**env, **extra}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> ClientVenv:
    base = tmp_path_factory.mktemp("client-dist")
    src = base / "src"
    for name in SOURCES:
        shutil.copytree(
            REPO / name,
            src / name,
            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".*"),
        )
    root = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    cwd = base / "cwd"
    cwd.mkdir()
    venv = ClientVenv(root=root, cwd=cwd)
    r = subprocess.run(
        [str(venv.python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(src / "clients")],
        cwd=cwd,
        env=venv.env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, f"pip install ./clients failed:\n{r.stdout}\n{r.stderr}"
    return venv


def run_python(venv: ClientVenv, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv.python), "-c", code, *args],
        cwd=venv.cwd,
        env=venv.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_installs_the_client_without_the_server(client_venv: ClientVenv) -> None:
    probe = """
import importlib.metadata as md, importlib.util as u, json, sys
dist = md.distribution("sio-gateway-client")
tops = sorted({f.parts[0] for f in dist.files if f.suffix == ".py"})
import clients.sync, clients.aio, clients.cli, signing.pkcs11_signer, signing.modules, signing.note
import siogw_api.v1.query_pb2_grpc
print(json.dumps({
    "tops": tops,
    "present": [m for m in sys.argv[1:] if u.find_spec(m) is not None],
    "script": [e.value for e in dist.entry_points if e.name == "siogw-client"],
}))
"""
    r = run_python(client_venv, probe, *ABSENT)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["tops"] == sorted(SOURCES)
    assert found["present"] == []  # no server, audit, SQLAlchemy, grpcio-tools, ...
    assert found["script"] == ["clients.cli:main"]
    assert client_venv.command.exists()

    r = subprocess.run(
        [str(client_venv.command), "--help"],
        cwd=client_venv.cwd, env=client_venv.env(), capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    for action in ("login", "consent", "resources", "query", "status", "logout", "shred"):
        assert action in r.stdout


def pkcs11_uri_with_module(uri: str) -> tuple[str, str]:
    """``uri`` with an explicit ``module-path`` (the client venv has no ``softhsm``
    package to discover the module with), and that path."""
    from signing.modules import find_pkcs11_module
    from signing.uri import parse_pkcs11_uri

    module = str(find_pkcs11_module())
    return str(dataclasses.replace(parse_pkcs11_uri(uri), module_path=module)), module


def test_installed_command_logs_in_signs_consent_queries_and_verifies(
    client_venv: ClientVenv, client_world: ClientWorld, tmp_path: Path
) -> None:
    from clients.session import write_settings

    home = tmp_path / "siogw-home"
    write_settings(home, client_world.world.client_settings(client_world.port))
    analyst = client_world.person("analyst")
    key_uri, module = pkcs11_uri_with_module(analyst.key_uri)
    env = client_venv.env(
        SIOGW_HOME=str(home),
        SOFTHSM2_CONF=os.environ["SOFTHSM2_CONF"],
        SIOGW_PKCS11_MODULE=module,
    )

    def siogw_client(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(client_venv.command), *args],
            cwd=client_venv.cwd, env=env, capture_output=True, text=True, timeout=120,
        )

    r = siogw_client(
        "login", "--user", analyst.user_id, "--key", key_uri, "--cert", str(analyst.cert_file),
        "--sms-outbox", str(client_world.home / "sms-outbox.jsonl"),
    )
    assert r.returncode == 0, r.stderr
    assert f"logged in as {analyst.user_id}" in r.stdout
    assert "run `siogw-client consent`" in r.stdout

    r = siogw_client("consent", "--agree")
    assert r.returncode == 0, r.stderr
    assert "consent signed at" in r.stdout

    iin = demo.demo_parameters(11)["iin"]
    r = siogw_client(
        "query", "11", "-p", f"iin={iin}", "--task-ref", "CASE-DIST-1",
        "--justification", "client-only install",
    )
    assert r.returncode == 0, r.stderr
    assert "[truncated by the gateway]" in r.stdout
    assert "gateway signature: verified against the pinned certificate" in r.stdout

    exported = tmp_path / "result.json"
    r = siogw_client(
        "query", "1", "-p", f"iin={iin}", "--task-ref", "CASE-DIST-1",
        "--justification", "client-only install", "--export", str(exported), "--json",
    )
    assert r.returncode == 0, r.stderr
    outcome = json.loads(r.stdout)
    assert outcome["resource"] == 1 and outcome["receipt"] is not None
    assert "siogw-client shred" in r.stderr

    # The exported result verifies offline with the installed library alone, against the
    # pinned gateway certificate; a tampered copy does not.
    check = """
import json, sys
from pathlib import Path
from clients import _common as c
from signing import dsse
from siogw_api.errors import TrustError
from siogw_api.v1 import query_pb2
pinned = c.PinnedGatewayVerifier(c.load_certificates(sys.argv[2]))
env = dsse.Envelope.from_json(Path(sys.argv[1]).read_bytes())
try:
    verified = dsse.verify_envelope(env, pinned, payload_types=[dsse.PAYLOAD_RESULT])
except TrustError as exc:
    sys.exit(f"refused: {exc.diagnostics()}")
result = query_pb2.QueryResult.FromString(verified.payload)
print(json.dumps({"request_id": result.request_id, "resource": result.resource}))
"""
    gateway_cert = str(client_world.world.gateway_cert)
    v = run_python(client_venv, check, str(exported), gateway_cert)
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout) == {"request_id": outcome["request_id"], "resource": 1}

    doc = json.loads(exported.read_text())
    doc["payload"] = doc["payload"][:-4] + ("AAAA" if doc["payload"][-4:] != "AAAA" else "BBBB")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    v = run_python(client_venv, check, str(tampered), gateway_cert)
    assert v.returncode == 1 and v.stderr.startswith("refused: "), v.stderr

    r = siogw_client("shred", str(exported))
    assert r.returncode == 0, r.stderr
    assert not exported.exists()
    r = siogw_client("logout")
    assert r.returncode == 0, r.stderr
    r = siogw_client("resources")
    assert r.returncode != 0 and "siogw-client: error:" in r.stderr
    assert "not logged in" in r.stderr
