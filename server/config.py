"""Gateway configuration: frozen dataclasses loaded from ``$SIOGW_HOME/siogw.toml``.

Precedence, lowest first: the defaults below, the TOML file, then ``SIOGW_*`` environment
variables. Only the scalars an operator plausibly overrides per deployment have an
environment variable (see :data:`ENV_OVERRIDES`); everything else lives in the file.

Example ``siogw.toml``::

    [server]
    host = "0.0.0.0"
    port = 8443
    database_url = "postgresql+psycopg2://siogw@db/siogw"   # default: SQLite in $SIOGW_HOME
    seed_dataset = false   # true: load the synthetic resource dataset at start (test benches)
    workers = 1            # gateway processes on the port (ADR 0007); env SIOGW_WORKERS
    worker_threads = 0     # threads per process for blocking steps; 0: 2 x cores (2..16)

    [tls]
    cert_file = "tls/server.pem"      # relative paths are relative to $SIOGW_HOME
    key_file = "tls/server.key"
    client_ca_file = ""               # set to require client certificates
    require_client_cert = false

    [signer]
    uri = "pkcs11:token=siogw-gateway;object=gateway;type=private"
    pin_source = "file:secrets/gateway.pin"   # or "env:SIOGW_SIGNER_PIN" (the default)
    certificate = "tls/gateway-signing.pem"   # embedded in signed results, pinned by clients
    sessions = 0                              # PKCS#11 sessions per token; 0: the CPU count
    batch_window_ms = 0       # batch-sign results ready within this window (ADR 0011); 0: off
    batch_max = 64            # at most this many results per batch signature
    batch_idle_sign = true    # sign at once while no batch is at the token; false: wait the window

    [audit]
    # The audit key: signs the log's checkpoints and seals, never query results (a key
    # of its own, Ed25519 where the token has it; rotated on its own schedule).
    signer_uri = "pkcs11:token=siogw-gateway;object=audit;type=private"
    pin_source = "file:secrets/gateway.pin"   # default: the [signer] pin_source
    segment_max_records = 0                   # seal a segment at N records; 0: 100,000
    checkpoint_interval = 1.0                 # seconds between checkpoints while records arrive
    seal_max_age = 3600                       # seal the live segment at least this often (s)
    witness_dir = ""                          # also write each checkpoint here
    immutable_seals = false                   # chattr +i sealed files (CAP_LINUX_IMMUTABLE)

    [trust]
    anchors = ["ca/root.pem"]
    crls = ["ca/root.crl"]

    [crl]                 # CRLs from the CAs' distribution points (server.crlfetch)
    enabled = true        # also: timeout, attempts, refresh_margin, retry_seconds,
    grace = 0             # cache_dir, max_bytes (CrlSettings)

    [limits]
    max_message_bytes = 262144
    clock_skew_seconds = 120
    session_ttl_seconds = 900
    challenge_ttl_seconds = 120
    housekeeping_seconds = 600        # prune old request ids, sessions, logins; 0: never
    session_cache_entries = 4096      # checked sessions kept per process (epoch-bound); 0: off
    maintenance_notice_hours = 24     # publish a window this long before it starts (§14)


    [metrics]             # Prometheus metrics (server.metrics); off unless port is set
    host = "127.0.0.1"
    port = 9464           # http://127.0.0.1:9464/metrics; 0 (the default): off

    [tracing]             # OpenTelemetry (server.tracing); off by default
    enabled = false
    otlp_endpoint = ""    # e.g. "http://127.0.0.1:4317"; empty: spans printed to stderr

    [logging]
    format = "text"       # or "json": one object per line (server.logformat)
    level = ""            # DEBUG, INFO, WARNING (default), ERROR

    [policy]
    consent_version = "2026-2"
    consent_text = "..."              # default: the text of DEFAULT_CONSENT_TEXT

    [upstreams.11]        # resource 11 from a remote upstream (server.resources.upstreams)
    url = "https://pension.bus.example.kz/siogw/11"
    timeout = 5.0         # total seconds per call; also: attempts, idempotent,
                          # auth_header_file, ca_file, max_response_bytes, max_depth, ...

The role -> basis table (R1) is :data:`server.resources.catalogue.ROLE_BASES`, not
configuration. The PIN itself is never part of the configuration: only where to read it.

**Strict.** The file is checked against the dataclasses before anything is read from it
(:func:`known_settings`, :func:`check_known`): a section or key that no dataclass field
names refuses to start with one line naming it and the nearest valid one -- ``unknown key
trust.crl (did you mean trust.crls?)``, ``unknown section [trsut] (did you mean
[trust]?)`` -- because an ignored typo silently turns a safety setting off (``crls``:
revocation). ``[server]`` holds the scalar fields of :class:`GatewayConfig`; every field
of :class:`GatewayConfig` whose type is a dataclass is a section of its own, so a new
section or key is known as soon as its field exists. Whether the configuration can
*serve* (anchors, signer, CRL files, TLS files) is checked when the gateway is built
(:func:`server.assembly.check_can_serve`), before a port is bound.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from server.consent_text import DEFAULT_CONSENT_TEXT, DEFAULT_CONSENT_VERSION
from server.resources.upstreams import (
    UPSTREAMS_SECTION,
    UpstreamConfig,
    check_upstream_keys,
    parse_upstreams,
)
from siogw_api.errors import ConfigError

#: The most gateway processes ``server.workers`` may ask for.
MAX_WORKERS = 64

#: Bounds of ``server.worker_threads`` when set (0 means the default, 2 x cores).
MIN_WORKER_THREADS, MAX_WORKER_THREADS = 2, 16

#: The longest batch window ``signer.batch_window_ms`` may set (ms): a result never waits
#: longer than this for its signature's batch to fill.
MAX_BATCH_WINDOW_MS = 1000.0
#: The most results ``signer.batch_max`` may put under one signature.
MAX_BATCH_RESULTS = 4096
#: The most PKCS#11 sessions per token ``signer.sessions`` may ask for.
MAX_SIGNER_SESSIONS = 256

#: Default file name inside ``$SIOGW_HOME``.
CONFIG_FILE = "siogw.toml"

#: The largest max_message_bytes that keeps every accepted request's audit record (the
#: envelope base64-encoded, 4/3, plus capped details) under the audit log's
#: ``max_record_bytes`` (1 MiB) with a margin of a third.
MAX_RECORDABLE_MESSAGE_BYTES = 512 * 1024

#: What gRPC's receive limit allows above ``max_message_bytes`` (issue 14, finding 9):
#: room for the protobuf framing around a request at the application's limit, so that
#: such a request still reaches the interceptor (refused there, recorded) while nothing
#: much larger is ever buffered by the transport.
TRANSPORT_OVERHEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class Limits:
    """Documented limits of the gateway (R5, R7, R10)."""

    #: Largest request message the gateway accepts (RESOURCE_EXHAUSTED above it, recorded).
    max_message_bytes: int = 256 * 1024
    #: Largest *answer* the gateway sends (an audit CSV export is the biggest). Requests
    #: are capped at the transport by :attr:`transport_receive_bytes` instead, so a
    #: client cannot make gRPC buffer more than the application accepts.
    #: Must be >= max_message_bytes.
    transport_max_message_bytes: int = 4 * 1024 * 1024
    #: Calls one gRPC server (one process) runs at once; beyond it gRPC refuses new calls
    #: with RESOURCE_EXHAUSTED before reading them (``maximum_concurrent_rpcs``).
    max_concurrent_rpcs: int = 256
    #: Seconds a worker waits for the log host to answer one append or health probe;
    #: past it the record is refused (UNAVAILABLE) and the worker reports NOT_SERVING
    #: until the log host answers again (``server.loghost``). Also the log host's read
    #: timeout for the rest of a frame whose header arrived.
    loghost_timeout_seconds: float = 5.0
    #: Worker connections the log host accepts at once (a worker holds one).
    loghost_max_connections: int = 128
    #: Frames in flight on one log-host connection: the log host stops reading that
    #: connection until one is answered; a worker waits before sending another.
    loghost_max_in_flight: int = 256
    #: Allowed distance between a signed request's ``created_at`` and the gateway clock.
    clock_skew_seconds: int = 120
    #: Lifetime of a session token.
    session_ttl_seconds: int = 15 * 60
    #: Lifetime of a login challenge (BeginLogin -> CompleteLogin).
    challenge_ttl_seconds: int = 2 * 60
    #: Lifetime of an SMS code.
    sms_code_ttl_seconds: int = 5 * 60
    #: Wrong SMS codes before the login is locked.
    sms_max_attempts: int = 5
    #: BeginLogin calls allowed per client address, and per claimed user id, in any
    #: sliding minute (RESOURCE_EXHAUSTED, reason RATE_LIMITED, above); see server.auth.
    logins_per_peer_per_minute: int = 60
    logins_per_user_per_minute: int = 20
    #: Logins begun and not yet proved (nor expired) kept at once for one user id.
    open_logins_per_user: int = 10
    #: Seconds a graceful shutdown waits for in-flight calls.
    shutdown_grace_seconds: float = 5.0
    #: How often the health status is re-evaluated against maintenance windows.
    health_poll_seconds: float = 1.0
    #: A maintenance window is published at least this many hours before it starts,
    #: unless the operator marks it urgent (§14: planned work is announced on the portal
    #: beforehand; the rules name no period, 24 hours is this gateway's). 0: no minimum.
    maintenance_notice_hours: float = 24.0
    #: How often the database is cleared of request ids, sessions and login attempts no
    #: check needs any more (``server.store.Store.prune``: kept a day at least); 0: never.
    housekeeping_seconds: float = 600.0
    #: Checked sessions each process keeps for reuse while the database's authentication
    #: epoch is unchanged (``server.sessioncache``); 0: every call re-reads its session.
    session_cache_entries: int = 4096
    #: Unauthenticated refusals recorded one by one per peer address and window; beyond
    #: that they are counted by reason and summarised in one record per peer and window
    #: (``server.interceptors.RefusalLimiter``, ADR 0003).
    anonymous_refusal_burst: int = 20
    anonymous_refusal_window_seconds: float = 60.0

    @property
    def transport_receive_bytes(self) -> int:
        """gRPC's receive limit on every server: the application's limit plus
        :data:`TRANSPORT_OVERHEAD_BYTES` (issue 14, finding 9)."""
        return self.max_message_bytes + TRANSPORT_OVERHEAD_BYTES


@dataclass(frozen=True)
class TlsConfig:
    """Transport security. TLS is on unless ``enabled = false`` (tests and local dev only)."""

    enabled: bool = True
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    require_client_cert: bool = False


@dataclass(frozen=True)
class SignerConfig:
    """The gateway's own signing key: a key URI (``pkcs11:`` on its own token).

    ``pin_source`` is a :mod:`signing.pins` spec (``env:VAR`` or ``file:/path``);
    ``certificate`` the PEM certificate of that key, embedded in every signed result;
    ``sessions`` bounds the PKCS#11 sessions opened on its token (0: one per CPU core).
    """

    uri: str = ""
    pin_source: str | None = None
    certificate: Path | None = None
    #: PKCS#11 sessions per token (the signing pool's bound); 0: the CPU count.
    sessions: int = 0
    #: Batch signing of results (issue 18, ADR 0011): results ready within this many
    #: milliseconds share one token signature over their Merkle root. 0: off (one
    #: signature per result).
    batch_window_ms: float = 0.0
    #: The most results in one batch; a full batch is signed without waiting the window.
    batch_max: int = 64
    #: Sign at once while no batch is at the token (natural batching): a lone result does
    #: not wait out the window; while a batch is at the token the next one gathers until
    #: the window passes, it is full, or the token is idle again. False: every batch
    #: waits out the window unless it fills first.
    batch_idle_sign: bool = True


@dataclass(frozen=True)
class TrustConfig:
    """Trust anchors (PEM files) and CRLs (PEM or DER files) for user certificates."""

    anchors: tuple[Path, ...] = ()
    crls: tuple[Path, ...] = ()


@dataclass(frozen=True)
class PolicyConfig:
    """The consent text and its version (R6)."""

    consent_version: str = DEFAULT_CONSENT_VERSION
    consent_text: str = DEFAULT_CONSENT_TEXT


@dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: the audit key, and the checkpoints and seals of the WORM log (ADR 0003).

    ``signer_uri`` names the audit key: it signs the audit log's checkpoints and seals
    and nothing else, never the gateway's result key. ``pin_source`` defaults to the
    ``[signer]`` one (the same token, another key). ``segment_max_records`` seals a
    segment at that many records (0: the log's default, 100,000; the demo uses a few
    dozen so that it seals and archives one). A checkpoint is signed every
    ``checkpoint_interval`` seconds while records arrive, a segment sealed at the latest
    ``seal_max_age`` seconds after its first record; ``witness_dir`` receives a copy of
    every checkpoint; ``immutable_seals`` sets the immutable flag on sealed files (needs
    CAP_LINUX_IMMUTABLE).
    """

    signer_uri: str = ""
    pin_source: str | None = None
    segment_max_records: int = 0
    checkpoint_interval: float = 1.0
    seal_max_age: float = 3600.0
    witness_dir: Path | None = None
    immutable_seals: bool = False


@dataclass(frozen=True)
class ReportingSettings:
    """``[reporting]``: corrections to Kazakhstan's working-day calendar for FM-1 deadlines
    (issue 16; ``server.reporting.calendar``). The ``holidays`` package supplies weekends,
    public holidays (Kurban Ait included) and the government's transfers of days off;
    a year's decree it lacks or gets wrong is added here: ``holidays`` are extra days
    off, ``workdays`` are working days (a Saturday a day off was transferred from, or a
    day the package wrongly calls a holiday). ISO dates, ``"2026-05-08"``.
    """

    holidays: tuple[str, ...] = ()
    workdays: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScreeningSettings:
    """``[screening]``: screening against the List and the Lists (issue 16, point 6;
    ``server/screening/match.py``). A name scoring at least ``match_threshold`` (0-100,
    rapidfuzz token-sort ratio of the normalised Latin forms) with the same date of
    birth is a match; at least ``possible_threshold`` a possible match. Results are kept
    ``retention_years`` (at least 5, S§10.14) after the screening."""

    match_threshold: float = 92.0
    possible_threshold: float = 82.0
    retention_years: int = 5


@dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: the Prometheus listener of ``siogw serve`` (:mod:`server.metrics`),
    its own HTTP port, never the gRPC one. ``port = 0`` (the default): no metrics."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class TracingSettings:
    """``[tracing]``: OpenTelemetry spans (:mod:`server.tracing`), off by default; sent
    over OTLP/gRPC to ``otlp_endpoint`` when set, else printed (console exporter)."""

    enabled: bool = False
    otlp_endpoint: str = ""


#: The log formats of ``[logging] format`` / ``siogw serve --log-format``.
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class LoggingSettings:
    """``[logging]``: ``format`` text or json (:mod:`server.logformat`); ``level`` the
    root level ("": WARNING, or DEBUG with ``siogw -v``)."""

    format: str = "text"
    level: str = ""


@dataclass(frozen=True)
class CrlSettings:
    """``[crl]``: CRLs fetched from the distribution points of the trusted CAs (issue 17,
    point 4; :mod:`server.crlfetch`, ADR 0002 section 11).

    On by default: it only does something when a trusted CA certificate, or a user
    certificate being checked, names an ``http``/``https`` cRLDistributionPoint; an
    issuer with one is then *required* to have a current CRL from it (fail closed,
    ``CRL_UNAVAILABLE``). ``timeout`` is the total seconds of one HTTP attempt,
    ``attempts`` the tries per refresh (tenacity, exponential backoff). A CRL is
    refreshed at 80 % of its thisUpdate..nextUpdate interval, or ``refresh_margin``
    seconds before its nextUpdate if that is earlier; a failed refresh is retried every
    ``retry_seconds``. ``grace`` is how many seconds past its nextUpdate a CRL is still
    used (every CRL, fetched or a ``trust.crls`` file; 0: none, RFC 5280's rule).
    ``cache_dir`` keeps the last good CRL of each issuer (default ``$SIOGW_HOME/crl-cache``,
    0700); ``max_bytes`` bounds a CRL's size.
    """

    enabled: bool = True
    timeout: float = 5.0
    attempts: int = 3
    refresh_margin: float = 0.0
    retry_seconds: float = 60.0
    grace: float = 0.0
    cache_dir: Path | None = None
    max_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``siogw serve`` needs."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 8443
    database_url: str = ""
    #: Load the synthetic dataset of the embedded connector at start (idempotent).
    seed_dataset: bool = False
    audit_dir: Path | None = None
    sms_outbox: Path | None = None
    #: Gateway processes serving the port (ADR 0007). 1: one process does everything.
    #: N > 1: this process is the log host (audit log, rules, every service but queries)
    #: and serves queries too; N - 1 worker processes serve queries on the same port.
    workers: int = 1
    #: Threads per process for the blocking parts of a call (DB, certificate checks,
    #: resource fetches, PKCS#11 signing); 0: :attr:`effective_worker_threads` decides.
    worker_threads: int = 0
    tls: TlsConfig = field(default_factory=TlsConfig)
    signer: SignerConfig = field(default_factory=SignerConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    limits: Limits = field(default_factory=Limits)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    audit: AuditSettings = field(default_factory=AuditSettings)
    #: ``[upstreams.N]``: resources answered by a remote upstream instead of the embedded
    #: connector (:mod:`server.resources.upstreams`); the others stay embedded.
    upstreams: Mapping[int, UpstreamConfig] = field(default_factory=dict)
    reporting: ReportingSettings = field(default_factory=ReportingSettings)
    screening: ScreeningSettings = field(default_factory=ScreeningSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    crl: CrlSettings = field(default_factory=CrlSettings)

    @property
    def effective_database_url(self) -> str:
        """The database URL; SQLite at ``$SIOGW_HOME/siogw.db`` when none is configured."""
        return self.database_url or f"sqlite:///{self.home / 'siogw.db'}"

    @property
    def effective_worker_threads(self) -> int:
        """``worker_threads``, or by default ``2 x cores`` (at least 2, at most 16): under
        the GIL more threads than cores mostly add contention."""
        if self.worker_threads:
            return self.worker_threads
        return max(MIN_WORKER_THREADS, min(MAX_WORKER_THREADS, 2 * (os.cpu_count() or 1)))

    @property
    def effective_audit_dir(self) -> Path:
        return self.audit_dir or self.home / "audit"

    @property
    def effective_crl_cache_dir(self) -> Path:
        return self.crl.cache_dir or self.home / "crl-cache"

    @property
    def effective_sms_outbox(self) -> Path:
        return self.sms_outbox or self.home / "sms-outbox.jsonl"

    def with_port(self, port: int) -> GatewayConfig:
        return replace(self, port=port)


#: Environment variable -> (section, key). Section "" is the top level. These are the only
#: environment variables the gateway reads for its settings (besides ``SIOGW_HOME`` and
#: the PIN a ``pin_source`` names); ``SIOGW_WORKER_THREADS`` and ``SIOGW_PKCS11_SESSIONS``
#: override ``server.worker_threads`` and ``signer.sessions``.
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = {
    "SIOGW_HOST": ("server", "host"),
    "SIOGW_PORT": ("server", "port"),
    "SIOGW_DATABASE_URL": ("server", "database_url"),
    "SIOGW_AUDIT_DIR": ("server", "audit_dir"),
    "SIOGW_SEED_DATASET": ("server", "seed_dataset"),
    "SIOGW_WORKERS": ("server", "workers"),
    "SIOGW_WORKER_THREADS": ("server", "worker_threads"),
    "SIOGW_TLS": ("tls", "enabled"),
    "SIOGW_TLS_CERT": ("tls", "cert_file"),
    "SIOGW_TLS_KEY": ("tls", "key_file"),
    "SIOGW_TLS_CLIENT_CA": ("tls", "client_ca_file"),
    "SIOGW_SIGNER_URI": ("signer", "uri"),
    "SIOGW_SIGNER_PIN_SOURCE": ("signer", "pin_source"),
    "SIOGW_SIGNER_CERT": ("signer", "certificate"),
    "SIOGW_PKCS11_SESSIONS": ("signer", "sessions"),
    "SIOGW_SIGNER_BATCH_WINDOW_MS": ("signer", "batch_window_ms"),
    "SIOGW_SIGNER_BATCH_MAX": ("signer", "batch_max"),
    "SIOGW_SIGNER_BATCH_IDLE_SIGN": ("signer", "batch_idle_sign"),
    "SIOGW_AUDIT_SIGNER_URI": ("audit", "signer_uri"),
    "SIOGW_AUDIT_PIN_SOURCE": ("audit", "pin_source"),
    "SIOGW_MAX_MESSAGE_BYTES": ("limits", "max_message_bytes"),
    "SIOGW_CLOCK_SKEW_SECONDS": ("limits", "clock_skew_seconds"),
    "SIOGW_SESSION_TTL_SECONDS": ("limits", "session_ttl_seconds"),
    "SIOGW_METRICS_PORT": ("metrics", "port"),
    "SIOGW_TRACING": ("tracing", "enabled"),
    "SIOGW_LOG_FORMAT": ("logging", "format"),
    "SIOGW_LOG_LEVEL": ("logging", "level"),
}


#: The section of :class:`GatewayConfig`'s own scalar fields.
SERVER_SECTION = "server"


@functools.cache
def known_settings() -> Mapping[str, frozenset[str]]:
    """Section -> the keys it accepts, read from the dataclasses (module docstring)."""
    hints = typing.get_type_hints(GatewayConfig)
    server: set[str] = set()
    sections: dict[str, frozenset[str]] = {}
    for f in fields(GatewayConfig):
        if f.name in ("home", UPSTREAMS_SECTION):  # the file's place; [upstreams]: its own
            continue
        kind = hints[f.name]
        if isinstance(kind, type) and is_dataclass(kind):
            sections[f.name] = frozenset(sub.name for sub in fields(kind))
        else:
            server.add(f.name)
    sections[SERVER_SECTION] = frozenset(server)
    return sections


def _nearest(word: str, candidates: typing.Iterable[str]) -> str | None:
    """The closest candidate (``difflib``), else the first one ``word`` begins (``pin``
    for ``pin_source``); None when nothing is near."""
    ordered = sorted(candidates)
    close = difflib.get_close_matches(word, ordered, n=1, cutoff=0.6)
    if close:
        return close[0]
    return next((c for c in ordered if len(word) >= 3 and c.startswith(word)), None)


def check_known(doc: Mapping[str, Any], source: str) -> None:
    """:class:`ConfigError` for the first section or key of ``doc`` no dataclass field
    names, in one line with the nearest valid one; ``source`` says where ``doc`` came
    from (the file, or ``overrides``)."""
    known = known_settings()
    dotted = {f"{sec}.{key}": key for sec, keys in known.items() for key in keys}
    for name, value in doc.items():
        if name == UPSTREAMS_SECTION:  # tables named by resource number
            check_upstream_keys(value, source)
            continue
        if name not in known:
            if isinstance(value, dict):
                near = _nearest(name, known)
                hint = f" (did you mean [{near}]?)" if near else ""
                raise ConfigError(f"unknown section [{name}]{hint} in {source}")
            # A top-level key: belongs in a section.
            # [server] first: a top-level "port" means server.port, not metrics.port
            near = (f"{SERVER_SECTION}.{name}" if name in known[SERVER_SECTION] else
                    next((d for d, key in sorted(dotted.items()) if key == name), None))
            if near is None:
                near_key = _nearest(name, set(dotted.values()))
                near = next((d for d, key in sorted(dotted.items()) if key == near_key), None)
            hint = f" (did you mean {near}?)" if near else ""
            raise ConfigError(f"unknown key {name}{hint} in {source}")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table in {source}")
        for key in value:
            if key not in known[name]:
                near = _nearest(str(key), known[name])
                hint = f" (did you mean {name}.{near}?)" if near else ""
                raise ConfigError(f"unknown key {name}.{key}{hint} in {source}")


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$SIOGW_HOME``, or ``./var`` when unset."""
    env = os.environ if env is None else env
    return Path(env.get("SIOGW_HOME", "var")).resolve()


def _path(home: Path, value: Any, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a path string")
    p = Path(value).expanduser()
    return p if p.is_absolute() else home / p


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def _limits(raw: Mapping[str, Any]) -> Limits:
    kwargs: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Limits)}
    for key, value in raw.items():
        if key not in types:
            raise ConfigError(f"unknown setting limits.{key}")
        kind = float if types[key] in ("float", float) else int
        kwargs[key] = _coerce(value, kind, f"limits.{key}")
    limits = Limits(**kwargs)
    if limits.max_message_bytes < 1024:
        raise ConfigError("limits.max_message_bytes must be at least 1024")
    if limits.transport_max_message_bytes < limits.max_message_bytes:
        raise ConfigError("limits.transport_max_message_bytes is below max_message_bytes")
    if limits.max_message_bytes > MAX_RECORDABLE_MESSAGE_BYTES:
        raise ConfigError(
            f"limits.max_message_bytes must be at most {MAX_RECORDABLE_MESSAGE_BYTES}: a "
            "request is kept whole in its audit record, under the log's 1 MiB record limit"
        )
    if limits.anonymous_refusal_burst < 1 or limits.anonymous_refusal_window_seconds <= 0:
        raise ConfigError("limits.anonymous_refusal_burst and _window_seconds must be positive")
    for name in ("clock_skew_seconds", "session_ttl_seconds", "challenge_ttl_seconds",
                 "sms_max_attempts", "logins_per_peer_per_minute",
                 "logins_per_user_per_minute", "open_logins_per_user",
                 "max_concurrent_rpcs", "loghost_timeout_seconds",
                 "loghost_max_connections", "loghost_max_in_flight"):
        if getattr(limits, name) <= 0:
            raise ConfigError(f"limits.{name} must be positive")
    if limits.maintenance_notice_hours < 0:
        raise ConfigError("limits.maintenance_notice_hours must be 0 (no minimum) or positive")
    if limits.housekeeping_seconds < 0:
        raise ConfigError("limits.housekeeping_seconds must be 0 (off) or positive")
    if not 0 <= limits.session_cache_entries <= 1_000_000:
        raise ConfigError("limits.session_cache_entries must be 0 (off) to 1000000")
    return limits


def _audit(home: Path, raw: Mapping[str, Any], signer: SignerConfig) -> AuditSettings:
    """``[audit]`` (see :class:`AuditSettings`)."""
    pin_source = raw.get("pin_source") or None
    if isinstance(pin_source, str) and pin_source.startswith("file:"):
        pin_source = f"file:{_path(home, pin_source[len('file:'):], 'audit.pin_source')}"
    segment_max_records = _coerce(raw.get("segment_max_records", 0), int,
                                  "audit.segment_max_records")
    if segment_max_records < 0:
        raise ConfigError("audit.segment_max_records must be 0 (the default) or positive")
    settings = AuditSettings(
        signer_uri=_coerce(raw.get("signer_uri", ""), str, "audit.signer_uri"),
        pin_source=(_coerce(pin_source, str, "audit.pin_source") if pin_source
                    else signer.pin_source),
        segment_max_records=segment_max_records,
        checkpoint_interval=_coerce(raw.get("checkpoint_interval", 1.0), float,
                                    "audit.checkpoint_interval"),
        seal_max_age=_coerce(raw.get("seal_max_age", 3600.0), float, "audit.seal_max_age"),
        witness_dir=_path(home, raw.get("witness_dir") or None, "audit.witness_dir"),
        immutable_seals=_coerce(raw.get("immutable_seals", False), bool,
                                "audit.immutable_seals"),
    )
    if not 0 < settings.checkpoint_interval <= 3600:
        raise ConfigError("audit.checkpoint_interval must be in (0, 3600] seconds")
    if not 0 < settings.seal_max_age <= 31 * 86400:
        raise ConfigError("audit.seal_max_age must be in (0, 31 days] seconds")
    return settings


def _reporting(raw: Mapping[str, Any]) -> ReportingSettings:
    days: dict[str, tuple[str, ...]] = {}
    for key in ("holidays", "workdays"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"reporting.{key} must be a list of ISO dates (\"2026-05-08\")")
        for v in value:
            try:
                _dt.date.fromisoformat(v)
            except ValueError:
                raise ConfigError(f"reporting.{key}: {v!r} is not an ISO date "
                                  "(YYYY-MM-DD)") from None
        days[key] = tuple(value)
    return ReportingSettings(holidays=days["holidays"], workdays=days["workdays"])
def _screening(raw: Mapping[str, Any]) -> ScreeningSettings:
    """``[screening]`` (see :class:`ScreeningSettings`)."""
    settings = ScreeningSettings(
        match_threshold=_coerce(raw.get("match_threshold", 92.0), float,
                                "screening.match_threshold"),
        possible_threshold=_coerce(raw.get("possible_threshold", 82.0), float,
                                   "screening.possible_threshold"),
        retention_years=_coerce(raw.get("retention_years", 5), int,
                                "screening.retention_years"),
    )
    if not 0 < settings.possible_threshold <= settings.match_threshold <= 100:
        raise ConfigError("screening thresholds must satisfy 0 < possible_threshold <= "
                          "match_threshold <= 100")
    if not 5 <= settings.retention_years <= 100:
        raise ConfigError("screening.retention_years must be between 5 (S§10.14) and 100")
    return settings


def _observability(
    raw_metrics: Mapping[str, Any], raw_tracing: Mapping[str, Any],
    raw_logging: Mapping[str, Any],
) -> tuple[MetricsSettings, TracingSettings, LoggingSettings]:
    """``[metrics]``, ``[tracing]`` and ``[logging]`` (issue 17)."""
    metrics = MetricsSettings(
        host=_coerce(raw_metrics.get("host", "127.0.0.1"), str, "metrics.host"),
        port=_coerce(raw_metrics.get("port", 0), int, "metrics.port"),
    )
    if not 0 <= metrics.port <= 65535:
        raise ConfigError(f"metrics.port out of range: {metrics.port}")
    tracing = TracingSettings(
        enabled=_coerce(raw_tracing.get("enabled", False), bool, "tracing.enabled"),
        otlp_endpoint=_coerce(raw_tracing.get("otlp_endpoint", ""), str,
                              "tracing.otlp_endpoint"),
    )
    logging_ = LoggingSettings(
        format=_coerce(raw_logging.get("format", "text"), str, "logging.format").lower(),
        level=_coerce(raw_logging.get("level", ""), str, "logging.level").upper(),
    )
    if logging_.format not in LOG_FORMATS:
        raise ConfigError(f"logging.format must be one of {', '.join(LOG_FORMATS)}: "
                          f"{logging_.format!r}")
    if logging_.level and logging_.level not in LOG_LEVELS:
        raise ConfigError(f"logging.level must be one of {', '.join(LOG_LEVELS)}: "
                          f"{logging_.level!r}")
    return metrics, tracing, logging_


def _crl(home: Path, raw: Mapping[str, Any]) -> CrlSettings:
    """``[crl]`` (see :class:`CrlSettings`)."""
    settings = CrlSettings(
        enabled=_coerce(raw.get("enabled", True), bool, "crl.enabled"),
        timeout=_coerce(raw.get("timeout", 5.0), float, "crl.timeout"),
        attempts=_coerce(raw.get("attempts", 3), int, "crl.attempts"),
        refresh_margin=_coerce(raw.get("refresh_margin", 0.0), float, "crl.refresh_margin"),
        retry_seconds=_coerce(raw.get("retry_seconds", 60.0), float, "crl.retry_seconds"),
        grace=_coerce(raw.get("grace", 0.0), float, "crl.grace"),
        cache_dir=_path(home, raw.get("cache_dir") or None, "crl.cache_dir"),
        max_bytes=_coerce(raw.get("max_bytes", 16 * 1024 * 1024), int, "crl.max_bytes"),
    )
    if not 0 < settings.timeout <= 300:
        raise ConfigError("crl.timeout must be in (0, 300] seconds")
    if not 1 <= settings.attempts <= 10:
        raise ConfigError("crl.attempts must be between 1 and 10")
    if not 0 <= settings.refresh_margin <= 366 * 86400:
        raise ConfigError("crl.refresh_margin must be 0 (80 % of the interval) or positive, "
                          "at most a year")
    if not 1 <= settings.retry_seconds <= 86400:
        raise ConfigError("crl.retry_seconds must be in [1, 86400]")
    if not 0 <= settings.grace <= 31 * 86400:
        raise ConfigError("crl.grace must be in [0, 31 days] seconds")
    if not 1024 <= settings.max_bytes <= 256 * 1024 * 1024:
        raise ConfigError("crl.max_bytes must be between 1 KiB and 256 MiB")
    return settings


def _section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return dict(value)


def load_config(
    home: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> GatewayConfig:
    """Load ``siogw.toml`` from ``home`` (default ``$SIOGW_HOME``) and apply overrides.

    ``overrides`` is ``{section: {key: value}}`` applied last (tests use it). A missing file
    is fine (defaults); a malformed one, or one with a section or key no setting has
    (:func:`check_known`), is :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    home_path = Path(home).resolve() if home is not None else default_home(env)
    doc: dict[str, Any] = {}
    file = home_path / CONFIG_FILE
    if file.exists():
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {file}", detail=str(exc)) from exc
        check_known(doc, str(file))
    check_known(overrides or {}, "overrides")
    sections = {name: _section(doc, name) for name in known_settings()}
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in env and env[var] != "":
            sections[section][key] = env[var]
    for section, values in (overrides or {}).items():
        if section != UPSTREAMS_SECTION:  # read by _upstreams
            sections[section].update(values)

    srv, tls, sig, tr, pol = (
        sections["server"], sections["tls"], sections["signer"], sections["trust"],
        sections["policy"],
    )
    tls_cfg = TlsConfig(
        enabled=_coerce(tls.get("enabled", True), bool, "tls.enabled"),
        cert_file=_path(home_path, tls.get("cert_file"), "tls.cert_file"),
        key_file=_path(home_path, tls.get("key_file"), "tls.key_file"),
        client_ca_file=_path(home_path, tls.get("client_ca_file"), "tls.client_ca_file"),
        require_client_cert=_coerce(
            tls.get("require_client_cert", False), bool, "tls.require_client_cert"
        ),
    )
    pin_source = sig.get("pin_source") or None
    if pin_source is None and env.get("SIOGW_SIGNER_PIN"):
        pin_source = "env:SIOGW_SIGNER_PIN"
    if isinstance(pin_source, str) and pin_source.startswith("file:"):
        pin_path = _path(home_path, pin_source[len("file:"):], "signer.pin_source")
        pin_source = f"file:{pin_path}"
    signer_cfg = SignerConfig(
        uri=_coerce(sig.get("uri", ""), str, "signer.uri"),
        pin_source=_coerce(pin_source, str, "signer.pin_source") if pin_source else None,
        certificate=_path(home_path, sig.get("certificate"), "signer.certificate"),
        sessions=_coerce(sig.get("sessions", 0), int, "signer.sessions"),
        batch_window_ms=_coerce(sig.get("batch_window_ms", 0.0), float,
                                "signer.batch_window_ms"),
        batch_max=_coerce(sig.get("batch_max", 64), int, "signer.batch_max"),
        batch_idle_sign=_coerce(sig.get("batch_idle_sign", True), bool,
                                "signer.batch_idle_sign"),
    )
    if not 0 <= signer_cfg.batch_window_ms <= MAX_BATCH_WINDOW_MS:
        raise ConfigError(f"signer.batch_window_ms must be between 0 (off) and "
                          f"{MAX_BATCH_WINDOW_MS:g}: {signer_cfg.batch_window_ms:g}")
    if not 1 <= signer_cfg.batch_max <= MAX_BATCH_RESULTS:
        raise ConfigError(f"signer.batch_max must be between 1 and {MAX_BATCH_RESULTS}: "
                          f"{signer_cfg.batch_max}")
    if not 0 <= signer_cfg.sessions <= MAX_SIGNER_SESSIONS:
        raise ConfigError(f"signer.sessions must be 0 (one per CPU core) or between 1 and "
                          f"{MAX_SIGNER_SESSIONS}: {signer_cfg.sessions}")
    audit_cfg = _audit(home_path, sections["audit"], signer_cfg)
    anchors = tr.get("anchors", [])
    crls = tr.get("crls", [])
    if isinstance(anchors, str):
        anchors = [anchors]
    if isinstance(crls, str):
        crls = [crls]
    if not isinstance(anchors, list) or not isinstance(crls, list):
        raise ConfigError("trust.anchors and trust.crls must be lists of paths")
    trust_cfg = TrustConfig(
        anchors=tuple(p for p in (_path(home_path, a, "trust.anchors") for a in anchors) if p),
        crls=tuple(p for p in (_path(home_path, c, "trust.crls") for c in crls) if p),
    )
    policy_cfg = PolicyConfig(
        consent_version=_coerce(
            pol.get("consent_version", DEFAULT_CONSENT_VERSION), str, "policy.consent_version"
        ),
        consent_text=_coerce(
            pol.get("consent_text", DEFAULT_CONSENT_TEXT), str, "policy.consent_text"
        ),
    )
    port = _coerce(srv.get("port", 8443), int, "server.port")
    if not 0 <= port <= 65535:
        raise ConfigError(f"server.port out of range: {port}")
    workers = _coerce(srv.get("workers", 1), int, "server.workers")
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"server.workers must be between 1 and {MAX_WORKERS}: {workers}")
    threads = _coerce(srv.get("worker_threads", 0), int, "server.worker_threads")
    if threads != 0 and not MIN_WORKER_THREADS <= threads <= MAX_WORKER_THREADS:
        raise ConfigError(f"server.worker_threads must be 0 (2 x cores) or between "
                          f"{MIN_WORKER_THREADS} and {MAX_WORKER_THREADS}: {threads}")
    metrics_cfg, tracing_cfg, logging_cfg = _observability(
        sections["metrics"], sections["tracing"], sections["logging"])
    return GatewayConfig(
        home=home_path,
        host=_coerce(srv.get("host", "127.0.0.1"), str, "server.host"),
        port=port,
        database_url=_coerce(srv.get("database_url", ""), str, "server.database_url"),
        seed_dataset=_coerce(srv.get("seed_dataset", False), bool, "server.seed_dataset"),
        audit_dir=_path(home_path, srv.get("audit_dir"), "server.audit_dir"),
        sms_outbox=_path(home_path, srv.get("sms_outbox"), "server.sms_outbox"),
        workers=workers,
        worker_threads=threads,
        tls=tls_cfg,
        signer=signer_cfg,
        audit=audit_cfg,
        trust=trust_cfg,
        limits=_limits(sections["limits"]),
        policy=policy_cfg,
        upstreams=_upstreams(home_path, doc, overrides, str(file)),
        reporting=_reporting(sections["reporting"]),
        screening=_screening(sections["screening"]),
        metrics=metrics_cfg,
        tracing=tracing_cfg,
        logging=logging_cfg,
        crl=_crl(home_path, sections["crl"]),
    )


def _upstreams(
    home: Path, doc: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]] | None,
    source: str,
) -> dict[int, UpstreamConfig]:
    """``[upstreams]`` of the file, each resource's table replaced by an override's."""
    merged = dict(doc.get(UPSTREAMS_SECTION) or {})
    merged.update((overrides or {}).get(UPSTREAMS_SECTION) or {})
    return parse_upstreams(home, merged, source) if merged else {}
