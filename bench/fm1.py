"""FM-1 submissions per second through the whole gateway, beside a crypto floor measured
in the same run (issue 16).

Full path: TLS gRPC to a gateway in this process's background thread (SQLite in a
temporary home unless ``SIOGW_DATABASE_URL`` names another database), the officer's
message signed on a SoftHSM token *before* the timed window; in the window the gateway
checks the session, verifies the envelope against the officer's certificate, validates
the message, computes its deadline, writes the request record ahead (fsync'd), stores
the message, writes the outcome record, signs a fresh checkpoint (audit key), builds
the inclusion proof and signs the acknowledgement (result key). Every answer is verified
offline after the window (acknowledgement, checkpoint, proof).

The floor does only the cryptography a submission cannot avoid, with the same keys:
verify the officer's envelope against the certificate, sign an acknowledgement with the
gateway's token key and a checkpoint note with the audit key. No database, no log, no
network. Both run at each concurrency level (threads sharing one client channel; the
floor's threads share the signers).

    .venv/bin/python bench/fm1.py [--messages 200] [--levels 1,8]

Prints one row per level: submissions/s, floor/s and their ratio. No figure is asserted
anywhere (tests/bench/test_fm1_bench.py checks the run and the table's shape only).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROVIDER_PHONE = "+77019870001"


class ServerThread:
    """``server.app.run_server`` in its own event loop thread."""

    def __init__(self, config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.config = config
        self._cm: Any = None

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

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


def messages(n: int, tag: str) -> list[dict[str, Any]]:
    from server.reporting.samples import sample
    from siogw import demo

    kinds = ("suspicious_before", "threshold", "refusal_operation", "freeze")
    return [sample(kinds[i % len(kinds)], provider_bin=demo.DEMO_PROVIDER_BIN,
                   message_id=f"BENCH-{tag}-{i}") for i in range(n)]


def timed(fn: Any, items: list[Any], threads: int) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    if threads == 1:
        out = [fn(x) for x in items]
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            out = list(pool.map(fn, items))
    return time.perf_counter() - start, out


def run(n: int, levels: list[int]) -> int:
    from server.admin import execute
    from server.config import load_config
    from server.store import Store
    from siogw import demo
    from siogw_api.v1 import admin_pb2

    home = Path(tempfile.mkdtemp(prefix="siogw-fm1-bench-"))
    world = demo.build_world(home, people=(
        *demo.DEFAULT_PEOPLE, ("kora", "Kora Officer", "compliance_officer", PROVIDER_PHONE)))
    demo.write_gateway_config(world, 0)
    overrides: dict[str, Any] = {"limits": {
        "logins_per_peer_per_minute": 100_000, "logins_per_user_per_minute": 100_000}}
    if os.environ.get("SIOGW_DATABASE_URL"):
        overrides["server"] = {"database_url": os.environ["SIOGW_DATABASE_URL"]}
    config = load_config(home, env={}, overrides=overrides)
    op = world.people["operator"]
    store = Store(config.effective_database_url).open()
    try:
        execute(None, store, admin_pb2.AdminCommand(enroll_user=admin_pb2.EnrollUser(
            user_id=op.user_id, full_name=op.full_name, role=op.role, phone=op.phone,
            certificate_der=demo._der(op.certificate()))))
    finally:
        store.close()
    server = ServerThread(config)
    port = server.start()
    try:
        demo.bootstrap_users(world, port)
        return _measure(world, port, n, levels)
    finally:
        server.stop()


def _measure(world: Any, port: int, n: int, levels: list[int]) -> int:
    from cryptography import x509

    from clients.fm1 import sign_fm1, verify_fm1_receipt
    from signing import dsse, load_signer
    from signing.trust import CertificateVerifier, TrustStore
    from signing.wire import envelope_from_proto
    from siogw import demo

    officer = world.people["kora"]
    officer_signer = officer.signer()
    gateway_signer = load_signer(world.gateway_key_uri, certificate=str(world.gateway_cert))
    audit_signer = load_signer(world.audit_key_uri)
    anchor = x509.load_pem_x509_certificate(world.ca_file.read_bytes())
    trust = TrustStore([anchor], [])
    cert = officer.certificate()
    print(f"FM-1 bench: {n} messages per level, levels {levels}, gateway in-process "
          f"(SQLite unless SIOGW_DATABASE_URL), SoftHSM tokens", flush=True)
    print(" threads | submissions/s | floor/s | full/floor")
    with world.client(port) as client:
        demo.login(world, client, officer)
        for level in levels:
            requests = [sign_fm1(m, officer_signer) for m in messages(n, f"L{level}")]
            elapsed, answers = timed(lambda r: client._stubs[client_service()].Submit(
                r, metadata=client._metadata(auth=True), timeout=60), requests, level)
            for req, resp in zip(requests, answers, strict=True):
                verify_fm1_receipt(resp, client._verifier, sent=req)

            def floor(req: Any) -> bytes:
                env = envelope_from_proto(req.envelope)
                dsse.verify_envelope(env, CertificateVerifier(trust, [cert]),
                                     payload_types=[dsse.PAYLOAD_FM1])
                ack = json.dumps({"message": env.payload[:64].hex()}).encode()
                dsse.sign_envelope(dsse.PAYLOAD_FM1_RECEIPT, ack, gateway_signer)
                return bytes(audit_signer.sign(b"bench\n1\n" + env.payload[:32]))

            floor_elapsed, _ = timed(floor, requests, level)
            full, fl = n / elapsed, n / floor_elapsed
            print(f" {level:7d} | {full:13.1f} | {fl:7.1f} | {full / fl:10.2f}", flush=True)
    return 0


def client_service() -> Any:
    from clients._core import Service

    return Service.REPORTING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--levels", default="1,8")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if args.messages < 1 or not levels or min(levels) < 1:
        parser.error("--messages and every level must be at least 1")
    return run(args.messages, levels)


if __name__ == "__main__":
    sys.exit(main())
