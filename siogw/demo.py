"""The end-to-end demo: ``python -m siogw.demo`` (what ``make demo`` runs).

On a fresh ``$SIOGW_HOME`` (default ``./var/demo``, wiped first) it builds the whole
world with real components and tells the story in a short transcript:

1. a test CA (the stand-in for the national certifying centre);
2. SoftHSM tokens for the gateway and each person (operator, security officer, analyst,
   controller, prosecutor, list officer, a provider's compliance officer), keys generated
   on the tokens, certificates issued by the CA for them, a TLS certificate for the
   gateway;
3. the gateway started as ``siogw serve``, TLS on 127.0.0.1; the first operator
   bootstrapped with ``siogw admin``, the others enrolled by the operator on the running
   gateway -- the controller, the prosecutor, the list officer and the compliance officer
   with ``siogw client users enroll`` (one home, a ``--profile`` per person);
4. the analyst's MFA login (token signature + SMS code read from the SMS stand-in's
   outbox, or the biometric stand-in), consent signed;
5. signed queries on resources 1, 11 (truncated: no amounts), 50 and 51, every answer's
   gateway signature verified against the pinned gateway certificate; a tampered query
   and one under another role's basis refused;
6. FM-1 messages of the compliance officer (receipt verified offline; a late one
   flagged); through ``siogw client``: a client watched (``lists watch``), a List version
   published (``lists publish``), the re-screening's matches in the provider's outbox
   (``lists outbox``) and the FM-1 flagged (``fm1 list --list-match``); the controller's
   monthly review (``reports list`` with the justifications and refusal reasons,
   ``alerts list``, ``reports review``, ``reports overdue``); the prosecutor's read
   (``resolutions register``, ``resolutions trail``);
7. the analyst's certificate revoked and the next query refused;
8. ``siogw verify`` of an exported result envelope; a checkpoint signed by the audit key
   (Ed25519, a key of its own on the gateway token) shown covering a receipt, its
   inclusion proof verified by the client library and by ``siogw audit prove``; after
   the gateway stops, ``siogw audit verify`` of the whole archive -- segments of a few
   records, so at least one is sealed and archived -- with the gateway's audit key given
   explicitly (``--keys``), covering sealed and live records.

Every step is real; a step whose building block is missing from the tree prints
``(skipped: ... not built yet)``. The exit status is non-zero if any real step failed.
:func:`build_world` is reused by ``bench/gateway.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path("var/demo")
#: File that marks a directory as a demo home (only such a directory is wiped).
MARKER = ".siogw-demo"
TLS_NAME = "localhost"
#: The origin of the gateway's audit log (``server.assembly.AUDIT_ORIGIN``).
AUDIT_ORIGIN = "sio-gateway/audit"


# --- transcript ------------------------------------------------------------------------
class Skipped(Exception):
    """A step's building block is not in the tree yet."""


class Transcript:
    """Numbered steps with short indented lines; counts failures and skips."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.n = 0
        self.failed: list[str] = []
        self.skipped: list[str] = []

    def say(self, text: str) -> None:
        print(f"      {text}", file=self.out, flush=True)

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        print(f"[{self.n:2d}] {title}", file=self.out, flush=True)
        try:
            yield
        except BrokenPipeError:
            raise  # nobody is reading the transcript any more
        except Skipped as exc:
            self.skipped.append(title)
            self.say(f"(skipped: {exc} not built yet)")
        except Exception as exc:  # a real step failed: report and carry on
            self.failed.append(title)
            detail = exc.diagnostics() if hasattr(exc, "diagnostics") else repr(exc)
            self.say(f"FAILED: {type(exc).__name__}: {detail}")
            if os.environ.get("SIOGW_DEMO_TRACE"):
                traceback.print_exc(file=self.out)


def need(*modules: str) -> None:
    """Raise :class:`Skipped` if any module is missing from the tree."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise Skipped(name)


# --- the world: CA, tokens, keys, certificates, configuration ---------------------------
@dataclass
class Person:
    """A user with a key on their own SoftHSM token and a CA-issued certificate."""

    user_id: str
    full_name: str
    role: str
    phone: str
    token_label: str
    pin_file: Path
    key_uri: str = ""
    cert_file: Path | None = None
    device_file: Path | None = None

    def signer(self) -> Any:
        # Deferred: tests and the bench import this module for its helpers only.
        from signing import load_signer

        assert self.cert_file is not None
        return load_signer(self.key_uri, certificate=self.cert_file)

    def certificate(self) -> Any:
        from cryptography import x509

        assert self.cert_file is not None
        return x509.load_pem_x509_certificate(self.cert_file.read_bytes())


@dataclass
class World:
    """Everything on disk the demo, the tests and the bench need (see :func:`build_world`)."""

    home: Path
    ca_dir: Path
    ca_file: Path
    tls_cert: Path
    tls_key: Path
    gateway_cert: Path
    gateway_key_uri: str
    gateway_pin_file: Path
    softhsm_conf: Path
    #: The audit key (a second key on the gateway token: Ed25519 where the token has it)
    #: and its public half (PEM), which clients and ``siogw audit verify --keys`` trust.
    audit_key_uri: str = ""
    audit_key_file: Path | None = None
    people: dict[str, Person] = field(default_factory=dict)

    def client_settings(self, port: int) -> dict[str, Any]:
        return {
            "target": f"127.0.0.1:{port}",
            "ca_file": str(self.ca_file),
            "gateway_cert": str(self.gateway_cert),
            "server_name": TLS_NAME,
        }

    def gateway_certificate(self) -> Any:
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.gateway_cert.read_bytes())

    def client(self, port: int, **kwargs: Any) -> Any:
        # Deferred: tests and the bench import this module for its helpers only.
        from clients import GatewayClient

        return GatewayClient(
            f"127.0.0.1:{port}",
            ca_file=self.ca_file,
            gateway_certificate=self.gateway_cert,
            server_name=TLS_NAME,
            **kwargs,
        )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


#: The crypto-asset service provider whose compliance officer the demo enrols (a BIN with
#: a valid check digit; FM-1 reporting, issue 16).
DEMO_PROVIDER_BIN = "190340012348"

DEFAULT_PEOPLE: tuple[tuple[str, str, str, str], ...] = (
    ("operator", "Olzhas Operator", "operator", "+77010000001"),
    ("security", "Saule Security", "security_officer", "+77010000002"),
    ("analyst", "Aigerim Analyst", "agency_user", "+77011234567"),
)
#: People the operator enrols from the command line in the story (`siogw client users
#: enroll`): a controller (§21), a prosecutor (§22), the agency's list officer and a
#: provider's compliance officer (FM-1, the Lists).
CLI_PEOPLE: tuple[tuple[str, str, str, str], ...] = (
    ("controller", "Kamila Controller", "controller", "+77010000031"),
    ("prosecutor", "Pavel Prosecutor", "prosecutor", "+77010000032"),
    ("lists", "Lyazzat Lists", "list_officer", "+77010000033"),
    ("officer", "Kamila Compliance", "compliance_officer", "+77011234568"),
)
#: The unit each of :data:`CLI_PEOPLE` is enrolled in.
DEMO_UNITS = {"controller": "Internal control", "prosecutor": "Prosecutor General's Office",
              "list_officer": "Department of lists",
              "compliance_officer": "Compliance, provider " + DEMO_PROVIDER_BIN}
#: The story's people: the default ones and those of :data:`CLI_PEOPLE`.
STORY_PEOPLE = (*DEFAULT_PEOPLE, *CLI_PEOPLE)

#: The list the story's list officer publishes (``docs/usage.md`` section 6a): one entry
#: a watched client matches by name (Cyrillic vs Latin) and date of birth, one whose IIN
#: is that of the client in the demo's FM-1 messages.
DEMO_LIST_CSV = """ref,kind,iin_bin,names,birth_date,country,reference
AFM-T-1,person,,Жұмабаев Ғалым|Zhumabaev Galym,1979-11-02,KZ,court decision 2-117/2026
AFM-T-2,person,850517300423,Иванов Иван,1985-05-17,KZ,court decision 2-118/2026
AFM-T-3,entity,,Фонд «Рассвет»|Rassvet Foundation,,,
"""


def demo_fm1_message(kind: str, *, hours_ago: float = 1.0) -> dict[str, Any]:
    """An FM-1 message of the demo provider (``suspicious_before`` or ``suspicious_after``)
    whose decision / recognition was ``hours_ago`` hours ago (``docs/usage.md``)."""
    # Deferred: tests and the bench import this module for its helpers only.
    import datetime as _dt

    from siogw_api.timeutil import astana_iso, now_utc

    decided = now_utc() - _dt.timedelta(hours=hours_ago)
    operation_at = decided + _dt.timedelta(minutes=30) if kind == "suspicious_before" \
        else decided - _dt.timedelta(hours=2)
    message: dict[str, Any] = {
        "message_id": f"FM1-DEMO-{secrets.token_hex(4)}", "provider_bin": DEMO_PROVIDER_BIN,
        "kind": kind, "decided_at": astana_iso(decided),
        "operation": {"date": astana_iso(min(operation_at, now_utc())),
                      "crypto": {"asset": "USDT", "amount": "25000", "tx_hash": "ab" * 32,
                                 "to_wallets": ["TXdemoWalletAddress000000000000001"]}},
        "parties": [{"role": "client", "idn": "850517300423", "name": "Иванов Иван",
                     "residence": "KZ"}],
        "grounds": ["typology: rapid movement of funds through new wallets"],
    }
    if kind == "suspicious_after":
        message["recognised_at"] = astana_iso(decided)
    return message


def build_world(
    home: Path,
    *,
    people: tuple[tuple[str, str, str, str], ...] = DEFAULT_PEOPLE,
    say: Callable[[str], None] = lambda _t: None,
    token_store: Any = None,
    label_prefix: str = "siogw",
) -> World:
    """Create CA, SoftHSM tokens, token keys, certificates and TLS files under ``home``.

    Without ``token_store`` a store is made in ``home/softhsm`` and activated in this
    process (``SOFTHSM2_CONF``): call it before anything loads PKCS#11 here. Tests pass
    the session's store and a unique ``label_prefix`` instead. ``people`` are
    ``(user_id, full name, role, phone)``.
    """
    need("signing.ca", "softhsm.store", "signing.pkcs11_token", "signing.csr")
    from cryptography.hazmat.primitives import serialization

    # Deferred: tests and the bench import this module for its helpers only.
    from signing.ca import CertificateAuthority, Profile
    from signing.csr import build_csr
    from signing.pkcs11_token import Pkcs11Token
    from signing.software import SoftwareSigner, generate_software_key
    from softhsm.store import TokenStore

    home.mkdir(parents=True, exist_ok=True)
    secrets_dir = home / "secrets"
    ca_dir = home / "ca"
    ca = CertificateAuthority.init(ca_dir, "CN=IES Test Root CA,O=Demo NCA stand-in,C=KZ")
    ca.publish_crl()
    say(f"CA: {ca.root_certificate.subject.rfc4514_string()} in {ca_dir}")

    if token_store is None:
        store = TokenStore(home)
        store.activate()
    else:
        store = token_store
    gateway_label = f"{label_prefix}-gateway"[:32]
    labels = [gateway_label] + [f"{label_prefix}-{p[0]}"[:32] for p in people]
    pins: dict[str, Path] = {}
    for label in labels:
        pin = secrets.token_hex(8)
        pin_file = secrets_dir / f"{label}.pin"
        _write_private(pin_file, pin.encode() + b"\n")
        store.init_token(label, secrets.token_hex(8), pin)
        pins[label] = pin_file
    say(f"SoftHSM tokens: {', '.join(labels)} (store {store.root}, PINs in {secrets_dir})")

    def key_and_cert(
        label: str, subject: str, cert_path: Path, profile: Profile = Profile.USER
    ) -> str:
        pin_source = f"file:{pins[label]}"
        token = Pkcs11Token(label, pin_source=pin_source)
        ck_id = token.generate_keypair("ec", "sign")
        uri = token.uri("sign", ck_id)
        # Deferred: tests and the bench import this module for its helpers only.
        from signing import load_signer

        signer = load_signer(uri)
        cert = ca.issue(build_csr(signer, subject), profile, days=365)
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        token.import_certificate(cert, key_id=ck_id, label="sign")
        return uri

    certs = home / "certs"
    gw_uri = key_and_cert(  # the result EKU: `siogw verify` tells it from a person's
        gateway_label, "CN=IES Gateway,O=IES operator,C=KZ", certs / "gateway.pem",
        Profile.GATEWAY,
    )
    say(f"gateway key generated on token {gateway_label!r}; certificate certs/gateway.pem")
    audit_uri, audit_type = audit_key(Pkcs11Token(gateway_label,
                                                  pin_source=f"file:{pins[gateway_label]}"),
                                      certs / "audit-key.pem")
    say(f"audit key ({audit_type}) generated on token {gateway_label!r}: signs the audit "
        "checkpoints and seals only; public key certs/audit-key.pem")

    # TLS: a software key is fine for the transport (the signing keys are on tokens).
    tls_key = generate_software_key("ecdsa-p256-sha256")
    tls_signer = SoftwareSigner(tls_key)
    tls_cert = ca.issue(
        build_csr(tls_signer, f"CN={TLS_NAME}", dns_names=[TLS_NAME]), Profile.SERVER, days=365
    )
    tls_dir = home / "tls"
    _write_private(
        tls_dir / "server.key",
        tls_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    (tls_dir / "server.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))

    world = World(
        home=home,
        ca_dir=ca_dir,
        ca_file=ca_dir / "root.pem",
        tls_cert=tls_dir / "server.pem",
        tls_key=tls_dir / "server.key",
        gateway_cert=certs / "gateway.pem",
        gateway_key_uri=gw_uri,
        gateway_pin_file=pins[gateway_label],
        softhsm_conf=Path(store.conf_path),
        audit_key_uri=audit_uri,
        audit_key_file=certs / "audit-key.pem",
    )
    for user_id, name, role, phone in people:
        label = f"{label_prefix}-{user_id}"[:32]
        person = Person(
            user_id=user_id,
            full_name=name,
            role=role,
            phone=phone,
            token_label=label,
            pin_file=pins[label],
            cert_file=certs / f"{user_id}.pem",
        )
        person.key_uri = key_and_cert(
            label, f"CN={name},OU={role},O=AFM,C=KZ", certs / f"{user_id}.pem"
        )
        if role == "agency_user":
            # Deferred: tests and the bench import this module for its helpers only.
            from clients.biometric import SoftwareDeviceKey

            person.device_file = home / "devices" / f"{user_id}.json"
            person.device_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            SoftwareDeviceKey.enroll(person.device_file, biometric_sample(person))
        world.people[user_id] = person
        say(f"{user_id}: key on token {label!r}, certificate certs/{user_id}.pem ({role})")
    return world


#: Label of the audit key on the gateway token.
AUDIT_KEY_LABEL = "audit"


def audit_key(token: Any, public_pem: Path) -> tuple[str, str]:
    """Generate the audit key on ``token`` (Ed25519 where the token has it, else ECDSA
    P-256), write its public half to ``public_pem``; return (key URI, key type)."""
    from cryptography.hazmat.primitives import serialization

    key_type = "ed25519" if token.supports("ed25519") else "ec"
    ck_id = token.generate_keypair(key_type, AUDIT_KEY_LABEL)
    public = token.public_key(key_id=ck_id)
    public_pem.parent.mkdir(parents=True, exist_ok=True)
    public_pem.write_bytes(public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(token.uri(AUDIT_KEY_LABEL, ck_id)), key_type


#: The demo's segment size: small, so that the story seals and archives a segment.
DEMO_SEGMENT_RECORDS = 10


# --- gateway configuration and process ----------------------------------------------------
def token_env(world: World) -> dict[str, str]:
    """Environment that points SoftHSM at the world's token store."""
    return {"SOFTHSM2_CONF": str(world.softhsm_conf)}


def write_gateway_config(
    world: World, port: int = 0, *, segment_max_records: int = 0, extra: str = ""
) -> Path:
    """``$SIOGW_HOME/siogw.toml`` for ``siogw serve`` (relative paths are under the home;
    ``segment_max_records``: 0 the log's default; the story passes a small one, so that
    a segment is sealed and archived; ``extra``: TOML appended, e.g. ``[upstreams.N]``)."""
    pin = world.gateway_pin_file.relative_to(world.home)
    text = f"""# written by python -m siogw.demo
[server]
host = "127.0.0.1"
port = {port}
seed_dataset = true

[tls]
cert_file = "tls/server.pem"
key_file = "tls/server.key"

[signer]
uri = "{world.gateway_key_uri.split("?")[0]}"
pin_source = "file:{pin}"
certificate = "{world.gateway_cert.relative_to(world.home)}"

[audit]
signer_uri = "{world.audit_key_uri.split("?")[0]}"
pin_source = "file:{pin}"
segment_max_records = {segment_max_records}

[trust]
anchors = ["{world.ca_file.relative_to(world.home)}"]
crls = ["{(world.ca_dir / "crl.pem").relative_to(world.home)}"]
""" + extra
    path = world.home / "siogw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def siogw_cmd(world: World, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the ``siogw`` CLI against the world's home (as an operator would)."""
    env = {**os.environ, "SIOGW_HOME": str(world.home), **token_env(world)}
    proc = subprocess.run(
        [sys.executable, "-m", "siogw", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"siogw {' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return proc


@contextlib.contextmanager
def gateway_process(
    world: World,
    *,
    log_name: str = "gateway.log",
    started: list[subprocess.Popen[str]] | None = None,
    segment_max_records: int = 0,
    extra_config: str = "",
) -> Iterator[int]:
    """Run ``siogw serve`` (port 0) as a subprocess; yield the port it bound.

    ``started``, when given, receives the process (the bench reads its CPU time).
    ``segment_max_records``, ``extra_config``: as :func:`write_gateway_config`.
    """
    need("server.app")
    write_gateway_config(world, 0, segment_max_records=segment_max_records,
                         extra=extra_config)
    env = {**os.environ, "SIOGW_HOME": str(world.home), **token_env(world)}
    log = open(world.home / log_name, "w")
    # SIOGW_GATEWAY_PROFILE=FILE runs the gateway under cProfile (bench diagnostics).
    profile = os.environ.get("SIOGW_GATEWAY_PROFILE")
    prof_args = ["-m", "cProfile", "-o", profile] if profile else []
    proc = subprocess.Popen(
        [sys.executable, "-u", *prof_args, "-m", "siogw", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    if started is not None:
        started.append(proc)
    try:
        assert proc.stdout is not None
        port = 0
        for line in proc.stdout:
            log.write(line)
            if "listening on" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
                break
        if not port:
            proc.wait(10)
            log.flush()
            tail = (world.home / log_name).read_text(encoding="utf-8")[-2000:]
            raise RuntimeError(f"the gateway did not start (status {proc.returncode}): {tail}")
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def sms_reader(world: World, user_id: str) -> Callable[[str], str]:
    """An ``sms_code_provider`` that reads the newest code from the SMS stand-in outbox."""
    # Deferred: tests and the bench import this module for its helpers only.
    from clients.outbox import latest_code, line_count

    outbox = world.home / "sms-outbox.jsonl"
    start = line_count(outbox)

    def provider(destination: str) -> str:
        return latest_code(outbox, destination=destination, after=start)

    return provider


def login(world: World, client: Any, person: Person) -> Any:
    """MFA login of ``person`` with an SMS code from the outbox."""
    return client.login(
        person.user_id,
        person.signer(),
        factor="sms",
        sms_code_provider=sms_reader(world, person.user_id),
    )


BASIS = "financial_monitoring"
#: The justification of the analyst's queries in the story (the controller sees it).
QUERY_JUSTIFICATION = "checking links of a suspicious transfer"
#: The justification of the analyst's refused query (a basis of another role).
REFUSED_JUSTIFICATION = "supervision check asked by mistake"


def demo_parameters(resource: int) -> dict[str, str]:
    # Deferred: tests and the bench import this module for its helpers only.
    from server.resources.dataset import demo_parameters as params

    return params(resource)


def enroll(world: World, client: Any, person: Person) -> str:
    """Enrol ``person`` through the signed AdminService (the client is an operator)."""
    # Deferred: tests and the bench import this module for its helpers only.
    from clients.biometric import SoftwareDeviceKey
    from siogw_api.v1 import admin_pb2

    device = SoftwareDeviceKey.load(person.device_file) if person.device_file else None
    outcome = client.admin(
        admin_pb2.EnrollUser(
            user_id=person.user_id,
            full_name=person.full_name,
            role=person.role,
            unit="Department of financial investigations",
            post="analyst" if person.role == "agency_user" else person.role,
            phone=person.phone,
            certificate_der=_der(person.certificate()),
            device_public_key_der=device.public_key_der if device is not None else b"",
            provider_bin=DEMO_PROVIDER_BIN if person.role == "compliance_officer" else "",
        )
    )
    return str(outcome.message)


def biometric_sample(person: Person) -> bytes:
    """The demo's stand-in for the user's finger (what the simulated sensor matches)."""
    return f"fingerprint-of-{person.user_id}".encode()


def _der(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.DER))


def bootstrap_operator(world: World, person: Person) -> str:
    """The first operator, registered directly in the database (``siogw admin``)."""
    assert person.cert_file is not None
    proc = siogw_cmd(
        world,
        "admin",
        "enroll-user",
        "--user-id",
        person.user_id,
        "--full-name",
        person.full_name,
        "--role",
        person.role,
        "--phone",
        person.phone,
        "--cert",
        str(person.cert_file),
    )
    return proc.stdout.strip()


def bootstrap_users(world: World, port: int) -> None:
    """Operator (bootstrapped with ``siogw admin``) enrols the others over AdminService.

    Call with the gateway running; the operator must already be bootstrapped
    (:func:`bootstrap_operator`).
    """
    op = world.people["operator"]
    with world.client(port) as client:
        login(world, client, op)
        for person in world.people.values():
            if person is not op:
                enroll(world, client, person)


# --- the command line, as each person would use it ------------------------------------------
def client_cmd(world: World, profile: str, *args: str,
               say: Callable[[str], None] | None = None) -> str:
    """``siogw client ARGS --profile PROFILE`` from the world's home (one home, a profile
    per person, as in ``docs/usage.md`` section 5); its stdout. ``say``, when given, is
    shown the command line first (paths under the home as ``$SIOGW_HOME/...``)."""
    if say is not None:
        say("$ " + shown_command(world, ("siogw", "client", *args, "--profile", profile)))
    proc = siogw_cmd(world, "client", *args, "--profile", profile, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"siogw client {' '.join(args[:2])} exited {proc.returncode}: "
                           + (lines[-1] if lines else "no output"))
    return proc.stdout


def shown_command(world: World, argv: tuple[str, ...]) -> str:
    """``argv`` as a shell line, the home's paths written ``$SIOGW_HOME/...``."""
    home = str(world.home)
    parts = []
    for arg in argv:
        text = arg.replace(home, "$SIOGW_HOME")
        parts.append(f'"{text}"' if text != arg else shlex.quote(arg))
    return " ".join(parts)


def cli_login(world: World, person: Person, say: Callable[[str], None]) -> str:
    """``siogw client login`` of ``person`` under the profile of their user id: the key
    on their token (its certificate is stored beside it), the PIN from its file, the SMS
    code from the stand-in outbox. Returns the first line the command printed."""
    out = client_cmd(
        world, person.user_id, "login", "--user", person.user_id,
        "--key", f"pkcs11:token={person.token_label};object=sign;type=private",
        "--pin-source", f"file:{person.pin_file}",
        "--sms-outbox", str(world.home / "sms-outbox.jsonl"), say=say)
    return out.strip().splitlines()[0] if out.strip() else ""


def _say_lines(t: Transcript, text: str, limit: int = 40) -> None:
    lines = text.rstrip().splitlines()
    for line in lines[:limit]:
        t.say("  " + line)
    if len(lines) > limit:
        t.say(f"  ... ({len(lines) - limit} more lines)")


def review_period(since: str) -> tuple[str, str]:
    """The controller's review period in the story: from the start of the month (Astana
    time) of ``since`` (ISO 8601: when the story's queries began) to the next whole
    minute -- the demo's queries are all in it, even across a month's end."""
    # Deferred: tests and the bench import this module for its helpers only.
    import datetime as _dt

    from siogw_api.timeutil import now_utc, parse_iso, to_astana

    now = to_astana(now_utc())
    start = to_astana(parse_iso(since)).replace(day=1, hour=0, minute=0, second=0,
                                                microsecond=0)
    end = now.replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
    return start.isoformat(), end.isoformat()


# --- the story ----------------------------------------------------------------------------
def story(home: Path, t: Transcript) -> None:
    """Run every step, printing the transcript (failures are counted by ``t``)."""
    world: World | None = None
    with t.step("Build the world: test CA, SoftHSM tokens, keys on tokens, certificates"):
        world = build_world(home, people=STORY_PEOPLE, say=t.say)
    if world is None:
        t.say("cannot continue without the world")
        return
    analyst = world.people["analyst"]
    with t.step("Bootstrap the first operator (`siogw admin enroll-user`, on the database)"):
        need("server.cli")
        write_gateway_config(world, 0, segment_max_records=DEMO_SEGMENT_RECORDS)
        t.say(bootstrap_operator(world, world.people["operator"]))
        t.say("the gateway loads the synthetic data of the 52 resources at start (seed_dataset)")

    with contextlib.ExitStack() as stack:
        port = 0
        with t.step("Start the gateway (`siogw serve`: gRPC + TLS, gateway key on SoftHSM)"):
            port = stack.enter_context(
                gateway_process(world, segment_max_records=DEMO_SEGMENT_RECORDS))
            t.say(f"listening on 127.0.0.1:{port} (TLS name {TLS_NAME}); log in gateway.log")
            # Deferred: tests and the bench import this module for its helpers only.
            from clients.session import write_settings

            cfg = write_settings(world.home, world.client_settings(port))
            t.say(f"client settings for `siogw client` written to {cfg.relative_to(home)}")
        if not port:
            t.say("cannot continue without the gateway")
            return
        client = stack.enter_context(world.client(port))
        _story_online(world, port, client, analyst, t)
    with t.step("Gateway stopped; `siogw audit verify` walks the whole WORM archive offline"):
        need("audit.cli")
        # The gateway's audit key is passed explicitly (not the archive's own keys.json).
        assert world.audit_key_file is not None
        sealed = sorted((world.home / "audit" / "archive").glob("seg-*.seal"))
        t.say(f"segments of {DEMO_SEGMENT_RECORDS} records: {len(sealed)} sealed and "
              "archived (gzip + signed seal), the last at the clean stop")
        # the audit key from outside the archive, and the checkpoints the gateway kept
        # in its database: the records must reach the latest of them
        database = f"sqlite:///{world.home / 'siogw.db'}"
        proc = siogw_cmd(
            world, "audit", "verify", str(world.home / "audit"),
            "--keys", str(world.audit_key_file), "--db", database, check=False,
        )
        for line in (proc.stdout + proc.stderr).strip().splitlines()[:3]:
            t.say(line)
        if proc.returncode != 0:
            raise RuntimeError(f"siogw audit verify exited {proc.returncode}")
        if not sealed:
            raise RuntimeError("the demo sealed no segment")


def _story_online(world: World, port: int, client: Any, analyst: Person, t: Transcript) -> None:
    # Deferred: tests and the bench import this module for its helpers only.
    from clients import ClientError
    from siogw_api.timeutil import astana_iso

    state: dict[str, str] = {"started": astana_iso()}
    with t.step("Operator logs in (token signature + SMS), enrols analyst and security officer"):
        op = world.people["operator"]
        with world.client(port) as op_client:
            r = login(world, op_client, op)
            t.say(f"operator session until {r.expires_at}")
            cli_enrolled = {p[0] for p in CLI_PEOPLE}
            for person in world.people.values():
                if person is not op and person.user_id not in cli_enrolled:
                    t.say(enroll(world, op_client, person))

    with t.step("Operator, from the command line: `siogw client users enroll` the controller, "
                "the prosecutor, the list officer and a provider's compliance officer"):
        t.say("one home, a profile per person (`--profile NAME`); client settings from "
              "client/config.json")
        t.say(cli_login(world, op, t.say))
        for user_id, *_rest in CLI_PEOPLE:
            person = world.people[user_id]
            assert person.cert_file is not None
            extra = (["--provider-bin", DEMO_PROVIDER_BIN]
                     if person.role == "compliance_officer" else [])
            out = client_cmd(world, op.user_id, "users", "enroll", person.user_id,
                             "--full-name", person.full_name, "--role", person.role,
                             "--phone", person.phone, "--unit", DEMO_UNITS[person.role],
                             "--cert", str(person.cert_file), *extra, say=t.say)
            t.say("  " + out.strip().splitlines()[0])
        out = client_cmd(world, op.user_id, "users", "list", say=t.say)
        _say_lines(t, out)

    with t.step("Analyst: MFA login — signature on the token, then the SMS code"):
        r = login(world, client, analyst)
        t.say(
            f"SMS code read from the stand-in outbox (sms-outbox.jsonl); session until "
            f"{r.expires_at}; consent required: {r.consent_required}"
        )

    with t.step("Analyst: the other second factor — fingerprint on the device (stand-in)"):
        # Deferred: tests and the bench import this module for its helpers only.
        from clients.biometric import SoftwareDeviceKey

        assert analyst.device_file is not None
        device = SoftwareDeviceKey.load(analyst.device_file)
        with world.client(port) as bio_client:
            r = bio_client.login(
                analyst.user_id,
                analyst.signer(),
                factor="biometric",
                device_key=device,
                biometric_sample=biometric_sample(analyst),
            )
            bio_client.logout()
        t.say(
            f"device key {device.key_id[:12]}… signed the gateway's device challenge after a "
            "simulated local fingerprint match (SoftwareDeviceKey stands in for the platform "
            "authenticator); session opened, then logged out"
        )

    with t.step("Analyst signs the consent to the terms of use (R6)"):
        consent = client.get_consent()
        signed = client.sign_consent(consent)
        t.say(f"consent {consent.version} signed at {signed.signed_at}")

    outcomes: dict[int, Any] = {}
    for resource, note in (
        (1, "State DB 'Individuals'"),
        (11, "pension contributions: truncated, no amounts"),
        (50, "relationships, level 1"),
        (51, "relationships, level 2"),
    ):
        with t.step(f"Signed query: resource {resource} ({note})"):
            params = demo_parameters(resource)
            out = client.query(resource, params, BASIS, "CASE-2026-0042", QUERY_JUSTIFICATION)
            outcomes[resource] = out
            _show(t, out)
            if resource == 11:
                fields = sorted({k for rec in out.data.get("records", []) for k in rec})
                money = [f for f in fields if "amount" in f or "sum" in f or "salary" in f]
                if not out.truncated or money:
                    raise RuntimeError(f"resource 11 not truncated: {money or 'flag not set'}")
                t.say(f"record fields: {', '.join(fields)} — no amounts (enforced by the gateway)")

    with t.step("A tampered query: the signed payload altered after signing"):
        # Deferred: tests and the bench import this module for its helpers only.
        from clients import _common as c

        prepared = client.prepare_query(1, demo_parameters(1), BASIS, "CASE-2026-0042", "tamper")
        signed_query = world.home / "analyst-query.dsse.json"
        signed_query.write_bytes(prepared.envelope.to_json())  # genuine, for the offline check
        os.chmod(signed_query, 0o600)
        q = prepared.query.__class__.FromString(prepared.envelope.payload)
        q.parameters["iin"] = demo_parameters(2).get("bin", "000000000000")
        # Deferred: tests and the bench import this module for its helpers only.
        from signing import dsse

        forged = c.PreparedQuery(
            query=q,
            envelope=dsse.Envelope(
                payload_type=prepared.envelope.payload_type,
                payload=c.serialize_query(q),
                signatures=prepared.envelope.signatures,
            ),
            payload_digest=prepared.payload_digest,
        )
        try:
            client.send_query(forged)
        except ClientError as exc:
            t.say(f"refused: {exc.code.name}: {exc.server_message}")
        else:
            raise RuntimeError("the gateway accepted a tampered query")

    with t.step("A query under a legal basis the analyst's role may not use is refused"):
        try:
            client.query(1, demo_parameters(1), "prosecutor_supervision", "CASE-2026-0042",
                         REFUSED_JUSTIFICATION)
        except ClientError as exc:
            t.say(f"refused: {exc.code.name} ({exc.reason}): {exc.server_message}")
            t.say("recorded with its justification and reason: the controller sees it below")
        else:
            raise RuntimeError("a query under another role's basis was answered")

    export = world.home / "result-11.dsse.json"
    with t.step("`siogw verify` of an exported result envelope (offline, CA root only)"):
        need("signing.cli")
        if 11 not in outcomes:
            raise RuntimeError("no result of resource 11 to verify")
        export.write_bytes(outcomes[11].result_envelope.to_json())
        os.chmod(export, 0o600)
        proc = siogw_cmd(
            world,
            "verify",
            str(export),
            "--trust",
            str(world.ca_file),
            "--payload-type",
            "application/vnd.siogw.result+protobuf",
            check=False,
        )
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        if proc.returncode != 0:
            raise RuntimeError(f"siogw verify exited {proc.returncode}: {' '.join(lines[:3])}")
        t.say(
            f"siogw verify {export.name} --trust ca/root.pem: " + "; ".join(lines[:2])
        )
        siogw_cmd(world, "client", "shred", str(export))
        if export.exists():
            raise RuntimeError("the export survived `siogw client shred`")
        t.say(f"`siogw client shred {export.name}`: overwritten, fsynced, unlinked")

    with t.step("Audit: a signed checkpoint covers a receipt; its inclusion proof verified"):
        need("audit.receipts")
        # Deferred: tests and the bench import this module for its helpers only.
        from clients._common import verify_receipt

        receipt = outcomes[11].receipt if 11 in outcomes else None
        if receipt is None:
            raise RuntimeError("no receipt to prove")
        cp = client.checkpoint()
        proof = client.inclusion_proof(receipt.seq, cp.tree_size)
        size = verify_receipt(receipt, proof, cp, [world.gateway_certificate().public_key()])
        t.say(f"checkpoint: tree size {cp.tree_size}, root {cp.root_hash.hex()[:16]}…, "
              f"signed by the audit key {cp.key_id[:16]}… (endorsed by the gateway key)")
        t.say(f"receipt seq {receipt.seq} (tree size {receipt.tree_size}) is in the signed "
              f"tree of size {size}: verified by the client library")
        bundle = world.home / "receipt-bundle.json"
        bundle.write_text(json.dumps({
            "checkpoint": cp.signed_checkpoint.decode("utf-8"),
            "receipt": {"origin": AUDIT_ORIGIN, "seq": receipt.seq,
                        "leaf_hash": receipt.leaf_hash.hex()},
            "proof": {"type": "inclusion", "leaf_index": proof.leaf_index,
                      "tree_size": proof.tree_size, "hashes": [h.hex() for h in proof.hashes]},
        }), encoding="utf-8")
        assert world.audit_key_file is not None
        proc = siogw_cmd(world, "audit", "prove", "--bundle", str(bundle),
                         "--keys", str(world.audit_key_file), check=False)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        if proc.returncode != 0:
            raise RuntimeError(f"siogw audit prove exited {proc.returncode}: {lines[:2]}")
        t.say(f"siogw audit prove --bundle {bundle.name} --keys "
              f"{world.audit_key_file.relative_to(world.home)}: {lines[0]}")

    with t.step("Compliance officer: a suspicious-operation FM-1, its receipt verified offline"):
        officer = world.people["officer"]
        with world.client(port) as officer_client:
            login(world, officer_client, officer)
            done = officer_client.fm1_submit(demo_fm1_message("suspicious_before"))
            st = done.response.status
            state["fm1"] = st.message_id
            t.say(f"FM-1 {st.message_id} ({st.kind}) of provider {st.provider_bin} accepted "
                  f"at {st.received_at}; due by {st.deadline_at}: "
                  f"{'LATE' if st.late else 'on time'}")
            t.say(f"acknowledgement signed by the gateway key, checkpoint by the audit key, "
                  f"inclusion proof of seq {done.verified.receipt.seq}: verified offline by "
                  "the client library")
            late = officer_client.fm1_submit(
                demo_fm1_message("suspicious_after", hours_ago=30)).response.status
            if not late.late:
                raise RuntimeError("a message 30 hours after recognition was not flagged")
            t.say(f"FM-1 {late.message_id} recognised 30 h ago (due within 24 h): accepted "
                  f"and flagged late by {late.lateness_seconds} s, in its signed receipt")

    _story_cli(world, t, state)

    with t.step("Security officer revokes the analyst's certificate (key reported lost)"):
        # Deferred: tests and the bench import this module for its helpers only.
        from siogw_api.v1 import admin_pb2

        sec = world.people["security"]
        serial = format(analyst.certificate().serial_number, "x")
        with world.client(port) as sec_client:
            login(world, sec_client, sec)
            out = sec_client.admin(
                admin_pb2.RevokeCertificate(serial_hex=serial, reason="keyCompromise")
            )
        t.say(out.message)

    with t.step("The analyst's next query is refused"):
        try:
            client.query(1, demo_parameters(1), BASIS, "CASE-2026-0042", "after revocation")
        except ClientError as exc:
            t.say(f"refused: {exc.code.name}: {exc.server_message}")
        else:
            raise RuntimeError("a query with a revoked certificate was answered")
        try:
            with world.client(port) as again:
                login(world, again, analyst)
        except ClientError as exc:
            t.say(f"a new login is refused too: {exc.code.name}: {exc.server_message}")
        else:
            raise RuntimeError("a login with a revoked certificate succeeded")

    with t.step("Offline: the analyst's signed query verifies until the CA's CRL revokes it"):
        need("signing.cli")
        signed_query = world.home / "analyst-query.dsse.json"
        crl = world.ca_dir / "crl.pem"
        query_type = "application/vnd.siogw.query+protobuf"

        def verify_query() -> subprocess.CompletedProcess[str]:
            return siogw_cmd(world, "verify", str(signed_query), "--trust", str(world.ca_file),
                             "--crl", str(crl), "--payload-type", query_type, check=False)

        before = verify_query()
        if before.returncode != 0:
            raise RuntimeError(f"the genuine query envelope did not verify: {before.stderr}")
        t.say(f"before: siogw verify {signed_query.name} --crl ca/crl.pem: "
              + before.stdout.strip().splitlines()[0])
        siogw_cmd(world, "ca", "revoke", "--dir", str(world.ca_dir), "--reason", "keyCompromise",
                  serial)
        siogw_cmd(world, "ca", "crl", "--dir", str(world.ca_dir))
        after = verify_query()
        if after.returncode == 0 or "revoked" not in after.stderr:
            raise RuntimeError(f"a revoked signer still verifies: {after.stdout}{after.stderr}")
        t.say("CA revoked the certificate and published a new CRL (`siogw ca revoke`, `ca crl`)")
        t.say(f"after: exit {after.returncode}: {after.stderr.strip().splitlines()[-1]}")


#: The watched client of the story's provider (matched by the List's entry AFM-T-1).
WATCHED = ("C-17", "Zhumabayev Galym", "1979-11-02")


def _story_cli(world: World, t: Transcript, state: dict[str, str]) -> None:
    """The roles' work through ``siogw client NOUN VERB`` (issue 15 point 7, issue 16
    point 9): the Lists and a re-screening, the controller's review, the prosecutor's
    read. Each person logs in under their own profile of the one home."""
    officer, lists = world.people["officer"], world.people["lists"]
    analyst = world.people["analyst"]
    with t.step("The List: the list officer publishes a version; the re-screening flags a "
                "watched client and the FM-1 sent above (`siogw client lists`)"):
        t.say(cli_login(world, officer, t.say))
        ref, name, born = WATCHED
        doc = json.loads(client_cmd(world, officer.user_id, "lists", "watch", ref, "--name",
                                    name, "--birth-date", born, say=t.say))
        t.say(f"  client {ref} registered for monitoring; screened now: "
              f"{doc.get('outcome', '?')}")
        t.say(cli_login(world, lists, t.say))
        list_file = world.home / "lists" / "terrorist.csv"
        list_file.parent.mkdir(parents=True, exist_ok=True)
        list_file.write_text(DEMO_LIST_CSV, encoding="utf-8")
        t.say(f"the list file: {len(DEMO_LIST_CSV.splitlines()) - 1} entries "
              "(docs/usage.md section 6a), e.g. AFM-T-1 Жұмабаев Ғалым|Zhumabaev Galym")
        doc = json.loads(client_cmd(world, lists.user_id, "lists", "publish", str(list_file),
                                    "--list", "terrorist", "--source-reference",
                                    "AFM order 77 (demo)", say=t.say))
        version = doc.get("version", {})
        rescreened, new = int(doc.get("rescreened", 0)), int(doc.get("new_matches", 0))
        t.say(f"  published {version.get('list_name')} version {version.get('version')}, "
              f"{version.get('entries')} entries, SHA-256 {str(version.get('digest'))[:16]}…, "
              f"signed on the list officer's token")
        t.say(f"  re-screened {rescreened} monitored subjects (watched clients and FM-1 "
              f"parties): {new} new match(es)")
        if not new:
            raise RuntimeError("the list update raised no match")
        items = json.loads(client_cmd(world, officer.user_id, "lists", "outbox",
                                      say=t.say)).get("items", [])
        for item in items:
            t.say(f"  outbox: {item.get('client_ref')}: {item.get('outcome')} "
                  f"({item.get('list_name')} v{item.get('version')}, entry "
                  f"{item.get('entry_ref')})")
        if not any(item.get("client_ref") == ref for item in items):
            raise RuntimeError(f"no outbox item for the watched client {ref}")
        flagged = json.loads(client_cmd(world, officer.user_id, "fm1", "list",
                                        "--list-match", "--json", say=t.say))
        ids = [m.get("message_id") for m in flagged.get("messages", [])]
        for m in flagged.get("messages", []):
            t.say(f"  FM-1 {m.get('message_id')} ({m.get('kind')}): list_match "
                  f"{m.get('list_match', False)}")
        if state.get("fm1") not in ids:
            raise RuntimeError(f"the FM-1 {state.get('fm1')} was not flagged: {ids}")
        t.say(f"the FM-1 {state['fm1']} submitted above is flagged: a party's IIN is on "
              "the List (the agency's analysts filter with `fm1 list --list-match`)")

    controller = world.people["controller"]
    start, end = review_period(state["started"])
    with t.step("Controller's monthly review (§21): the analyst's queries with their "
                "justification, then `siogw client reports review`"):
        t.say(cli_login(world, controller, t.say))
        out = client_cmd(world, controller.user_id, "reports", "list", "--since", start,
                         "--until", end, "--user", analyst.user_id, say=t.say)
        _say_lines(t, out)
        if QUERY_JUSTIFICATION not in out or REFUSED_JUSTIFICATION not in out:
            raise RuntimeError("the justifications are not in the controller's rows")
        if "refused: " not in out:
            raise RuntimeError("the refused query's reason is not in the controller's rows")
        out = client_cmd(world, controller.user_id, "alerts", "list", "--open", say=t.say)
        _say_lines(t, out, limit=8)
        out = client_cmd(world, controller.user_id, "reports", "review", "--from", start,
                         "--to", end, "--note",
                         "queries of the month checked: each justified by its case", say=t.say)
        _say_lines(t, out)
        out = client_cmd(world, controller.user_id, "reports", "overdue", "--all", say=t.say)
        _say_lines(t, out)

    prosecutor = world.people["prosecutor"]
    with t.step("Prosecutor's read under a resolution (§22): `siogw client resolutions "
                "register`, then `resolutions trail`"):
        t.say(cli_login(world, prosecutor, t.say))
        today = review_today()
        out = client_cmd(world, prosecutor.user_id, "resolutions", "register", "--number",
                         "12-345/2026", "--date", today, "--user", analyst.user_id,
                         "--period-start", start, "--period-end", end, say=t.say)
        _say_lines(t, out)
        found = re.search(r"registered: id (\S+)", out)
        if found is None:
            raise RuntimeError(f"no resolution id in: {out.strip()}")
        out = client_cmd(world, prosecutor.user_id, "resolutions", "trail", found.group(1),
                         say=t.say)
        _say_lines(t, out)
        if analyst.user_id not in out or QUERY_JUSTIFICATION not in out:
            raise RuntimeError("the trail does not show the analyst's queries")


def review_today() -> str:
    """Today's date in Astana (the resolution's date in the story)."""
    # Deferred: tests and the bench import this module for its helpers only.
    from siogw_api.timeutil import now_utc, to_astana

    return to_astana(now_utc()).date().isoformat()


def _show(t: Transcript, out: Any) -> None:
    flag = "TRUNCATED" if out.truncated else "full"
    t.say(
        f"{out.resource_name} [{flag}] — gateway signature verified "
        f"(key {out.gateway_key_id[:12]}…)"
    )
    if out.receipt:
        t.say(f"audit receipt: seq {out.receipt.seq}")
    text = json.dumps(out.data, ensure_ascii=False, sort_keys=True)
    t.say("data: " + (text if len(text) <= 300 else text[:297] + "..."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m siogw.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="demo home (default: $SIOGW_HOME or ./var/demo); WIPED first",
    )
    parser.add_argument(
        "--force", action="store_true", help="wipe --home even if the demo did not make it"
    )
    args = parser.parse_args(argv)
    home = (args.home or Path(os.environ.get("SIOGW_HOME") or DEFAULT_HOME)).resolve()
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists() and not args.force:
        print(
            f"siogw.demo: refusing to wipe {home}: it is not empty and was not made by the "
            f"demo (no {MARKER} file); pass --force or choose another --home",
            file=sys.stderr,
        )
        return 2
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("made by python -m siogw.demo; wiped by its next run\n")
    os.environ["SIOGW_HOME"] = str(home)
    print(f"sio-gateway demo in {home}\n", flush=True)
    t = Transcript()
    try:
        story(home, t)
    except BrokenPipeError:  # e.g. `| head`: stop quietly (the gateway was stopped on the way)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print()
    if t.failed:
        print(f"demo FAILED: {len(t.failed)} step(s): " + "; ".join(t.failed))
        return 1
    skipped = f", {len(t.skipped)} skipped" if t.skipped else ""
    print(f"demo OK: {t.n - len(t.skipped)} steps passed{skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
