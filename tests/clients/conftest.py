"""A real gateway for the client tests, and both clients over it.

``client_world`` (module scope) builds a CA, SoftHSM tokens with EC keys and certificates
(``siogw.demo.build_world`` with the shared token store), loads the synthetic dataset,
bootstraps the operator, starts :func:`server.app.run_server` over TLS in a background
event loop, and has the operator enrol the security officer and the analyst (with a
software device key for biometric login) through the signed AdminService.

``connect`` (parametrized ``sync`` / ``asyncio``) makes a client of either kind with
:class:`clients.GatewayClient`'s blocking surface: the asyncio one is an
:class:`AsyncGatewayClient` behind :class:`BlockingAsyncClient`, so every test written
against the blocking surface runs over both clients.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clients import AsyncGatewayClient, GatewayClient


class ServerThread:
    """:func:`server.app.run_server` in its own event-loop thread."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._cm: Any = None

    def _run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> int:
        from server.app import run_server

        async def start() -> int:
            self._cm = run_server(self.config)
            return int(await self._cm.__aenter__())

        return int(self._run(start()))

    def stop(self) -> None:
        if self._cm is not None:
            self._run(self._cm.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class ClientWorld:
    world: Any
    port: int

    @property
    def home(self) -> Path:
        return Path(self.world.home)

    def client(self, **kwargs: Any) -> Any:
        return self.world.client(self.port, **kwargs)

    def person(self, name: str) -> Any:
        return self.world.people[name]


@pytest.fixture(scope="module")
def client_world(
    softhsm_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClientWorld]:
    from server.admin import execute
    from server.config import load_config
    from server.store import Store
    from siogw import demo
    from siogw_api.v1 import admin_pb2

    home = tmp_path_factory.mktemp("client-gw")
    world = demo.build_world(
        home,
        people=(
            *demo.DEFAULT_PEOPLE,
            # carol and dave are revoked by a test, once per client kind
            ("carol", "Carol Analyst", "agency_user", "+77019876543"),
            ("dave", "Dauren Analyst", "agency_user", "+77019876544"),
            # bota's first login (asyncio) still needs consent, like the analyst's (sync)
            ("bota", "Bota Analyst", "agency_user", "+77019876545"),
            # a crypto-asset service provider's compliance officer (FM-1, issue 16)
            ("kora", "Kora Officer", "compliance_officer", "+77019876546"),
            # zhan: consent and PIN age through the CLI (tests/clients/test_cli_rules.py)
            ("zhan", "Zhanna Analyst", "agency_user", "+77019876547"),
        ),
        token_store=softhsm_store,
        label_prefix=f"cl{secrets.token_hex(3)}",
    )
    demo.write_gateway_config(world, 0)
    # Every test logs in from 127.0.0.1: the BeginLogin rate limits (server.auth) are
    # raised so that the suite's own logins never meet them.
    config = load_config(home, env={}, overrides={"limits": {
        "logins_per_peer_per_minute": 100_000, "logins_per_user_per_minute": 100_000}})
    store = Store(config.effective_database_url).open()
    op = world.people["operator"]
    try:
        execute(
            None,
            store,
            admin_pb2.AdminCommand(
                enroll_user=admin_pb2.EnrollUser(
                    user_id=op.user_id,
                    full_name=op.full_name,
                    role=op.role,
                    phone=op.phone,
                    certificate_der=demo._der(op.certificate()),
                )
            ),
        )
    finally:
        store.close()
    server = ServerThread(config)
    port = server.start()
    try:
        demo.bootstrap_users(world, port)
        yield ClientWorld(world=world, port=port)
    finally:
        server.stop()


class BlockingAsyncClient:
    """An :class:`AsyncGatewayClient` with :class:`GatewayClient`'s blocking surface.

    The client lives on its own event loop (an :class:`asyncio.Runner` in the calling
    thread); each coroutine method runs to completion there. Attributes (``session_token``,
    ``user_id``, ...) are the async client's own.
    """

    def __init__(self, target: str, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()

        async def make() -> AsyncGatewayClient:  # grpc.aio binds the channel to this loop
            return AsyncGatewayClient(target, **kwargs)

        self._client = self._runner.run(make())

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if not inspect.iscoroutinefunction(value):
            return value

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(value(*args, **kwargs))

        return blocking

    def close(self) -> None:
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def __enter__(self) -> BlockingAsyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLIENT_KINDS: dict[str, Callable[..., Any]] = {
    "sync": GatewayClient,
    "asyncio": BlockingAsyncClient,
}


@pytest.fixture(params=sorted(CLIENT_KINDS))
def client_kind(request: pytest.FixtureRequest) -> str:
    """``sync`` or ``asyncio``: every test using it (or ``connect``) runs once per client."""
    return str(request.param)


@pytest.fixture
def connect(client_world: ClientWorld, client_kind: str) -> Callable[..., Any]:
    """``connect(**options)``: a client of this test's kind on ``client_world``'s gateway
    (keyword options override the world's TLS and pinning settings)."""
    from siogw import demo

    def make(**options: Any) -> Any:
        w = client_world.world
        settings: dict[str, Any] = {
            "target": f"127.0.0.1:{client_world.port}",
            "ca_file": w.ca_file,
            "gateway_certificate": w.gateway_cert,
            "server_name": demo.TLS_NAME,
            **options,
        }
        return CLIENT_KINDS[client_kind](**settings)

    return make
