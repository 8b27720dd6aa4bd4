"""A real gateway for the client tests: the demo's world on the session's SoftHSM store.

``client_world`` (module scope) builds a CA, SoftHSM tokens with EC keys and certificates
(``siogw.demo.build_world`` with the shared token store), loads the synthetic dataset,
bootstraps the operator, starts :func:`server.app.run_server` over TLS in a background
event loop, and has the operator enrol the security officer and the analyst (with a
software device key for biometric login) through the signed AdminService.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


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
        people=(*demo.DEFAULT_PEOPLE, ("carol", "Carol Analyst", "agency_user", "+77019876543")),
        token_store=softhsm_store,
        label_prefix=f"cl{secrets.token_hex(3)}",
    )
    demo.write_gateway_config(world, 0)
    config = load_config(home, env={})
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
