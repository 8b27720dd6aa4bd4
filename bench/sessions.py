"""The gateway's memory with 10,000 live sessions in one process (issue 18, point 4).

One gateway process (``siogw serve``, ``--workers 1``, SQLite in a temporary home unless
``SIOGW_DATABASE_URL`` names another database), the demo's users enrolled, the analyst
logged in for real (token signature + SMS code) and the consent signed. Then ``N``
further sessions of the analyst (same user and certificate) are written **directly into
the gateway's sessions table** by this process, in one transaction: a real login is a
token signature and an SMS round trip per session, far too slow for 10,000. Each session
then makes one signed query (the full path: session read and checks, lookup, the
gateway's token signature, the audit record; envelopes signed beforehand) over TLS, so
that whatever the gateway keeps per session or per query is in memory when RSS is read.

Prints the gateway's VmRSS (from ``/proc/<pid>/status``) after start-up and a warm-up,
after the sessions were written, and after one query on each, the peak (VmHWM), the
per-session cost ((after - before) / N) and the verdict against the target: <= 300 MiB
for one process. No figure is asserted (tests/bench/test_sessions_bench.py checks the
run and the figures' presence only).

    .venv/bin/python bench/sessions.py [--sessions 10000] [--concurrency 32] [--one-session]

``--one-session`` is the control: the same number of queries over the analyst's one real
session, no sessions written; the difference between the two runs is the sessions' cost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as _dt
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Issue 18, point 4: one gateway process with 10,000 live sessions.
TARGET_MIB = 300.0
MIB = 1024.0 * 1024.0


def status_kib(pid: int, field: str) -> int:
    """``field`` (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from ``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def rss_mib(pid: int) -> float:
    """VmRSS of the gateway: its process and any it started (there is one: --workers 1)."""
    return sum(status_kib(p, "VmRSS") for p in process_tree(pid)) / 1024.0


def new_token() -> str:
    """A session token shaped like the gateway's (``server.auth``: 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def write_sessions(home: Path, like_token: str, n: int) -> list[str]:
    """``n`` live sessions copying the user, certificate and factor of ``like_token``'s
    session, inserted into the gateway's database in one transaction; their tokens."""
    import sqlalchemy as sa

    from server.config import load_config
    from server.context import token_hash
    from server.store.schema import sessions
    from siogw_api.timeutil import now_utc

    config = load_config(home)
    engine = sa.create_engine(config.effective_database_url)
    try:
        with engine.begin() as conn:
            model = conn.execute(
                sa.select(sessions).where(sessions.c.token_hash == token_hash(like_token))
            ).one()
            now = now_utc()
            expires = now + _dt.timedelta(seconds=config.limits.session_ttl_seconds)
            tokens = [new_token() for _ in range(n)]
            conn.execute(
                sessions.insert(),
                [
                    {
                        "token_hash": token_hash(t),
                        "user_id": model.user_id,
                        "cert_fingerprint": model.cert_fingerprint,
                        "factor": model.factor,
                        "created_at": now,
                        "expires_at": expires,
                    }
                    for t in tokens
                ],
            )
    finally:
        engine.dispose()
    return tokens


def subject_iins(home: Path, limit: int) -> list[str]:
    """IINs of the synthetic dataset the gateway seeded (each query asks about another)."""
    import sqlalchemy as sa

    from server.config import load_config
    from server.resources.dataset import res_person

    engine = sa.create_engine(load_config(home).effective_database_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(
                sa.select(res_person.c.iin).order_by("iin").limit(limit))]
    finally:
        engine.dispose()


async def query_each(world: Any, port: int, tokens: list[str], concurrency: int) -> int:
    """One signed query (resource 1, a person of the dataset) on each session token,
    ``concurrency`` at once; the answers verified (gateway signature, binding)."""
    import grpc
    from grpc import aio

    from clients import _common as c
    from signing.wire import bearer_metadata
    from siogw import demo
    from siogw_api.v1 import query_pb2_grpc

    signer = world.people["analyst"].signer()
    iins = subject_iins(world.home, 1000) or [demo.demo_parameters(1)["iin"]]
    queries = [
        c.build_query(1, {"iin": iins[i % len(iins)]}, demo.BASIS, "BENCH-MEM",
                      "memory measurement")
        for i in range(len(tokens))
    ]
    # Signed before the calls, in worker threads (the analyst's token signs).
    prepared = await asyncio.gather(
        *(asyncio.to_thread(c.prepare_query, q, signer) for q in queries))
    verifier = c.PinnedGatewayVerifier(c.load_certificates(world.gateway_cert))
    creds = grpc.ssl_channel_credentials(root_certificates=world.ca_file.read_bytes())
    channel = aio.secure_channel(
        f"127.0.0.1:{port}", creds, options=c.channel_options(demo.TLS_NAME)
    )
    stub = query_pb2_grpc.QueryServiceStub(channel)  # type: ignore[no-untyped-call]
    it = iter(zip(tokens, prepared, strict=True))
    answered = 0

    async def worker() -> None:
        nonlocal answered
        for token, p in it:
            resp = await stub.Query(p.request(), metadata=bearer_metadata(token), timeout=60)
            c.verify_result(resp, p, verifier)
            answered += 1

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        await channel.close()
    return answered


async def real_login(world: Any, port: int) -> str:
    """The analyst's real login (token signature + SMS) and consent; the session token."""
    from clients import AsyncGatewayClient
    from siogw import demo

    analyst = world.people["analyst"]
    client = AsyncGatewayClient(
        f"127.0.0.1:{port}",
        ca_file=world.ca_file,
        gateway_certificate=world.gateway_cert,
        server_name=demo.TLS_NAME,
    )
    try:
        await client.login(
            analyst.user_id,
            analyst.signer(),
            factor="sms",
            sms_code_provider=demo.sms_reader(world, analyst.user_id),
        )
        await client.sign_consent()
        assert client.session_token is not None
        return client.session_token
    finally:
        await client.close()


def run(home: Path, n: int, concurrency: int, *, one_session: bool = False) -> int:
    from siogw import demo

    os.environ["SIOGW_WORKERS"] = "1"
    t0 = time.perf_counter()
    world = demo.build_world(home)
    demo.write_gateway_config(world, 0)
    demo.bootstrap_operator(world, world.people["operator"])
    procs: list[Any] = []
    with demo.gateway_process(world, started=procs) as port:
        pid = procs[0].pid
        demo.bootstrap_users(world, port)
        token = asyncio.run(real_login(world, port))
        # warm-up: the analyst's real session makes a few queries (caches, statements)
        asyncio.run(query_each(world, port, [token] * 50, 4))
        before = rss_mib(pid)
        print(
            f"setup {time.perf_counter() - t0:.1f}s: gateway pid {pid}, "
            f"{len(process_tree(pid))} process(es), database "
            f"{demo_database(home)}; the analyst logged in for real and signed the consent",
            flush=True,
        )
        print(f"gateway VmRSS after start-up and warm-up: {before:.1f} MiB", flush=True)
        t1 = time.perf_counter()
        if one_session:
            tokens = [token] * n
            print(f"CONTROL (--one-session): no sessions written; the {n} queries all go "
                  "over the analyst's one real session", flush=True)
        else:
            tokens = write_sessions(home, token, n)
            written = rss_mib(pid)
            print(
                f"{n} sessions written directly into the gateway's sessions table by the "
                f"bench (one transaction, {time.perf_counter() - t1:.1f}s; NOT {n} real "
                "logins: the analyst's user and certificate, as a real login would write "
                "them)",
                flush=True,
            )
            print(f"gateway VmRSS with {n} sessions in its database: {written:.1f} MiB",
                  flush=True)
        t2 = time.perf_counter()
        answered = asyncio.run(query_each(world, port, tokens, concurrency))
        elapsed = time.perf_counter() - t2
        after = rss_mib(pid)
        peak = status_kib(pid, "VmHWM") / 1024.0
    print(
        f"one signed query {'each over one session' if one_session else 'on each session'} "
        "(the full path: session read, checks, lookup, "
        f"signed answer, audit record): {answered} of {n} answered and verified in "
        f"{elapsed:.1f}s ({answered / elapsed if elapsed else 0:.0f} q/s, concurrency "
        f"{concurrency}, envelopes signed beforehand)"
    )
    per_session_kib = (after - before) * 1024.0 / n if n else float("nan")
    verdict = "met" if after <= TARGET_MIB else "NOT met"
    print()
    print(f"gateway VmRSS before: {before:.1f} MiB")
    if one_session:
        print(f"gateway VmRSS after {n} queries over one session (CONTROL): {after:.1f} MiB "
              f"(peak VmHWM {peak:.1f} MiB)")
        print(f"per-query cost: {per_session_kib:.2f} KiB ((after - before) / {n})")
    else:
        print(f"gateway VmRSS after {n} live sessions, one query each: {after:.1f} MiB "
              f"(peak VmHWM {peak:.1f} MiB)")
        print(f"per-session cost: {per_session_kib:.2f} KiB ((after - before) / {n}; a "
              "session and its one query)")
    print(f"target: <= {TARGET_MIB:.0f} MiB for one process: {verdict} ({after:.1f} MiB)")
    print("(RSS of the gateway's one process from /proc/<pid>/status; a shared, busy "
          "machine: expect noise)")
    return 0 if answered == n else 1


def demo_database(home: Path) -> str:
    from server.config import load_config

    return load_config(home).effective_database_url.split("?")[0].split("@")[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="live sessions to hold (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="queries in flight while each session makes its query")
    parser.add_argument(
        "--one-session", action="store_true",
        help="control: the same number of queries over one session (what the queries "
        "alone cost)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    home = Path(tempfile.mkdtemp(prefix="siogw-bench-"))
    try:
        return run(home, args.sessions, args.concurrency, one_session=args.one_session)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
