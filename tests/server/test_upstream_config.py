"""``[upstreams.N]`` in ``siogw.toml`` (issue 14, finding 2): strict parsing, a
configuration that cannot reach its upstream safely refuses to start, and an open
breaker shows in gRPC health as ``siogw.upstream.N``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from server.assembly import default_dispatcher
from server.config import load_config
from server.resources import (
    EmbeddedConnector,
    RemoteConnector,
    UpstreamUnavailable,
    get_resource,
)
from server.resources.upstreams import UpstreamConfig, check_url, parse_upstreams
from server.status import HealthUpdater
from server.store import Store
from siogw_api.errors import ConfigError
from tests.server.resources.upstream import down_url
from tests.server.test_config_strict import _home, _serve_refused


def _load(tmp_path: Path, text: str) -> dict[int, UpstreamConfig]:
    (tmp_path / "siogw.toml").write_text(text)
    return dict(load_config(tmp_path, env={}).upstreams)


def test_a_full_table_loads(tmp_path: Path) -> None:
    ups = _load(tmp_path, """
[upstreams.11]
url = "https://pension.example.kz:8443/siogw/11"
timeout = 2.5
attempts = 2
idempotent = true
auth_header_file = "secrets/pension.auth"
ca_file = "/etc/ssl/bus-ca.pem"
max_response_bytes = 1048576
max_depth = 10
failure_threshold = 3
reset_timeout = 60

[upstreams.50]
url = "http://127.0.0.1:9000/links"
allow_plain_http = true
""")
    assert set(ups) == {11, 50}
    assert ups[11] == UpstreamConfig(
        url="https://pension.example.kz:8443/siogw/11", timeout=2.5, attempts=2,
        idempotent=True, auth_header_file=tmp_path / "secrets/pension.auth",
        ca_file=Path("/etc/ssl/bus-ca.pem"), max_response_bytes=1048576, max_depth=10,
        failure_threshold=3, reset_timeout=60.0)
    assert ups[50].allow_plain_http and ups[50].timeout == 5.0 and not ups[50].idempotent


def test_no_section_no_upstreams(tmp_path: Path) -> None:
    assert _load(tmp_path, "[server]\nport = 1\n") == {}


@pytest.mark.parametrize(("text", "message"), [
    ('[upstreams.53]\nurl = "https://x"\n', "no resource 53 in the catalogue"),
    ('[upstreams.0]\nurl = "https://x"\n', "no resource 0 in the catalogue"),
    ('[upstreams.pension]\nurl = "https://x"\n', "must be a resource number"),
    ('[upstreams.011]\nurl = "https://x"\n', "must be a resource number"),
    ('[upstreams]\n11 = "https://x"\n', "upstreams.11 must be a table"),
    ('upstreams = "https://x"\n', "[upstreams] must be a table"),
    ('[upstreams.11]\nurl = "https://x"\ntimout = 3\n',
     "unknown key upstreams.11.timout (did you mean timeout?)"),
    ('[upstreams.11]\ntimeout = 3\n', "upstreams.11: url is required"),
    ('[upstreams.11]\nurl = "http://x/q"\n', "url must be https://"),
    ('[upstreams.11]\nurl = "ftp://x/q"\n', "url must be https://"),
    ('[upstreams.11]\nurl = "ftp://x/q"\nallow_plain_http = true\n', "url must be https://"),
    ('[upstreams.11]\nurl = "https:///q"\n', "url has no host"),
    ('[upstreams.11]\nurl = "https://u:p@x/q"\n', "must not carry credentials"),
    ('[upstreams.11]\nurl = "https://x/q?token=1"\n', "query string or fragment"),
    ('[upstreams.11]\nurl = "https://x/q#f"\n', "query string or fragment"),
    ('[upstreams.11]\nurl = "https://x:99999/q"\n', "not a valid URL"),
    ('[upstreams.11]\nurl = "https://x /q"\n', "printable ASCII"),
    ('[upstreams.11]\nurl = 5\n', "url must be a non-empty string"),
    ('[upstreams.11]\nurl = "https://x"\ntimeout = 0\n', "upstreams.11.timeout must be in"),
    ('[upstreams.11]\nurl = "https://x"\ntimeout = 301\n', "upstreams.11.timeout must be in"),
    ('[upstreams.11]\nurl = "https://x"\ntimeout = "5"\n', "expected seconds"),
    ('[upstreams.11]\nurl = "https://x"\nattempts = 0\n', "attempts must be between 1"),
    ('[upstreams.11]\nurl = "https://x"\nidempotent = "yes"\n', "expected true or false"),
    ('[upstreams.11]\nurl = "https://x"\nmax_response_bytes = 1\n', "max_response_bytes"),
    ('[upstreams.11]\nurl = "https://x"\nmax_depth = 65\n', "max_depth must be between"),
    ('[upstreams.11]\nurl = "https://x"\nfailure_threshold = 0\n', "failure_threshold"),
    ('[upstreams.11]\nurl = "https://x"\nreset_timeout = -1\n', "reset_timeout"),
])
def test_bad_tables_are_refused_with_one_clear_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as ei:
        _load(tmp_path, text)
    assert message in ei.value.diagnostics()
    assert "\n" not in ei.value.diagnostics()


def test_overrides_replace_a_resources_table(tmp_path: Path) -> None:
    (tmp_path / "siogw.toml").write_text('[upstreams.11]\nurl = "https://a.example/11"\n')
    cfg = load_config(tmp_path, env={}, overrides={
        "upstreams": {"11": {"url": "https://b.example/11"}, "12": {"url": "https://c/12"}}})
    assert cfg.upstreams[11].url == "https://b.example/11" and set(cfg.upstreams) == {11, 12}
    with pytest.raises(ConfigError, match=r"unknown key upstreams\.12\.uri"):
        load_config(tmp_path, env={}, overrides={"upstreams": {"12": {"uri": "x"}}})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_check_url_accepts_only_https_urls_without_secrets(text: str) -> None:
    """Property: whatever string, either ConfigError or an https URL with a host and no
    credentials, query or fragment (outside input: the operator's file)."""
    try:
        url = check_url(text, "upstreams.1", allow_plain_http=False)
    except ConfigError:
        return
    assert url.startswith("https://") and "@" not in url.split("/", 3)[2]
    assert "?" not in url and "#" not in url


# --- secrets and CAs are read when the gateway is built ----------------------------------
@pytest.fixture
def engine() -> sa.Engine:
    return sa.create_engine("sqlite://")


class _Store:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine


def _dispatcher(tmp_path: Path, engine: sa.Engine, table: dict[str, object]) -> object:
    cfg = load_config(tmp_path, env={}, overrides={"upstreams": {"11": table}})
    return default_dispatcher(_Store(engine), cfg)  # type: ignore[arg-type]


def test_the_auth_header_file_is_read_like_a_pin_file(tmp_path: Path, engine: sa.Engine) -> None:
    secret = tmp_path / "up.auth"
    secret.write_text("Bearer abc.def\n")
    os.chmod(secret, 0o600)
    table = {"url": "https://up.example/11", "auth_header_file": "up.auth"}
    d = _dispatcher(tmp_path, engine, table)
    conn = d.connector_for(11)  # type: ignore[attr-defined]
    assert isinstance(conn, RemoteConnector)
    assert conn._headers["Authorization"] == "Bearer abc.def"
    assert isinstance(d.connector_for(12), EmbeddedConnector)  # type: ignore[attr-defined]

    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        _dispatcher(tmp_path, engine, table)
    os.chmod(secret, 0o600)
    (tmp_path / "link.auth").symlink_to(secret)
    with pytest.raises(ConfigError, match="cannot open auth_header_file"):
        _dispatcher(tmp_path, engine, {**table, "auth_header_file": "link.auth"})
    with pytest.raises(ConfigError, match="cannot open auth_header_file"):
        _dispatcher(tmp_path, engine, {**table, "auth_header_file": "missing.auth"})
    secret.write_text("Bearer a\x01b\n")
    with pytest.raises(ConfigError, match="printable ASCII"):
        _dispatcher(tmp_path, engine, table)
    secret.write_text("\n")
    with pytest.raises(ConfigError, match="must hold one value"):
        _dispatcher(tmp_path, engine, table)


def test_an_unreadable_ca_file_is_refused(tmp_path: Path, engine: sa.Engine) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot load ca_file"):
        _dispatcher(tmp_path, engine, {"url": "https://up.example/11", "ca_file": "ca.pem"})


def test_resources_with_the_same_table_share_a_connector_and_breaker(
    tmp_path: Path, engine: sa.Engine
) -> None:
    same = {"url": "https://up.example/q"}
    cfg = load_config(tmp_path, env={}, overrides={"upstreams": {
        "11": same, "12": same, "13": {"url": "https://up.example/q", "timeout": 1}}})
    d = default_dispatcher(_Store(engine), cfg)  # type: ignore[arg-type]
    assert d.connector_for(11) is d.connector_for(12)
    assert d.connector_for(13) is not d.connector_for(11)
    assert d.upstream_health() == {"siogw.upstream.11": True, "siogw.upstream.12": True,
                                   "siogw.upstream.13": True}


def test_parse_upstreams_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"in /etc/siogw\.toml"):
        parse_upstreams(tmp_path, {"99": {"url": "https://x"}}, "/etc/siogw.toml")


def test_serve_refuses_plain_http_and_a_world_readable_secret(tmp_path: Path) -> None:
    home = _home(tmp_path, extra='[upstreams.11]\nurl = "http://127.0.0.1:9/q"\n')
    assert "upstreams.11: url must be https://" in _serve_refused(home)
    (home / "up.auth").write_text("Bearer x\n")
    os.chmod(home / "up.auth", 0o644)
    text = (home / "siogw.toml").read_text().replace(
        'url = "http://127.0.0.1:9/q"',
        'url = "https://127.0.0.1:9/q"\nauth_header_file = "up.auth"')
    (home / "siogw.toml").write_text(text)
    line = _serve_refused(home)
    assert "upstreams.11: auth_header_file" in line and "readable by group or others" in line
    assert not (home / "audit").exists()


# --- the breaker in gRPC health ------------------------------------------------------------
def test_an_open_breaker_shows_as_not_serving_in_health(tmp_path: Path) -> None:
    """Connection refused opens resource 2's breaker (threshold 1): its health service
    ``siogw.upstream.2`` goes NOT_SERVING over gRPC, resource 1's stays SERVING, and the
    gateway's own status is untouched."""
    cfg = load_config(tmp_path, env={}, overrides={"upstreams": {
        "1": {"url": "https://up.example/1"},
        "2": {"url": down_url(), "allow_plain_http": True, "attempts": 1,
              "failure_threshold": 1, "reset_timeout": 3600}}})
    store = Store(f"sqlite:///{tmp_path / 'gw.db'}").open()
    try:
        dispatcher = default_dispatcher(store, cfg)

        async def scenario() -> dict[str, int]:
            servicer = health.aio.HealthServicer()
            updater = HealthUpdater(store, servicer, 1.0,
                                    upstream_check=dispatcher.upstream_health)
            server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            out: dict[str, int] = {}
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = health_pb2_grpc.HealthStub(channel)

                    async def check(name: str) -> int:
                        got = await stub.Check(health_pb2.HealthCheckRequest(service=name),
                                               timeout=10)
                        return int(got.status)

                    await updater.refresh()
                    out["before"] = await check("siogw.upstream.2")
                    try:
                        await dispatcher.connector_for(2).fetch(
                            get_resource(2), {"bin": "120640313373"})
                    except UpstreamUnavailable:
                        pass
                    await updater.refresh()
                    for name in ("siogw.upstream.1", "siogw.upstream.2", ""):
                        out[name] = await check(name)
            finally:
                await server.stop(None)
                await dispatcher.aclose()
            return out

        out = asyncio.run(scenario())
    finally:
        store.close()
    serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                            health_pb2.HealthCheckResponse.NOT_SERVING)
    assert out["before"] == serving
    assert out["siogw.upstream.2"] == not_serving
    assert out["siogw.upstream.1"] == serving and out[""] == serving
