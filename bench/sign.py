"""Signing throughput: PKCS#11 (SoftHSM via p11-kit) with 1 and N threads vs software keys.

Creates its own temporary token store (SOFTHSM2_CONF is set before PKCS#11 loads), one
EC P-256 and one RSA-2048 key on a token and the same key types in software, then prints
signs/s per backend and thread count, verifies/s, and ratios. No assertions on timing.

    .venv/bin/python bench/sign.py [--seconds 2] [--threads 8] [--sessions N]

``--sessions`` bounds the PKCS#11 session pool per token (``Pkcs11Signer(sessions=...)``,
as the server's ``[signer] sessions``; default: the CPU count); ``--sessions 1``
reproduces the one-shared-session design.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from softhsm.store import TokenStore


def rate(fn: Callable[[int], None], seconds: float, threads: int) -> float:
    """Operations per second of ``fn(i)`` run by ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        barrier.wait()
        n = 0
        while time.monotonic() < stop:
            fn(n)
            n += 1
        counts[index] = n

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in pool:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def report(
    title: str, hsm: Any, soft: Any, verify: Callable[..., None], seconds: float, threads: int
) -> None:
    """Print one key type's rows: software and PKCS#11 signing at 1 and N threads, verify."""
    payload = b"x" * 256
    soft_1 = rate(lambda _n: soft.sign(payload), seconds, 1)
    soft_n = rate(lambda _n: soft.sign(payload), seconds, threads)
    hsm_1 = rate(lambda _n: hsm.sign(payload), seconds, 1)
    hsm_n = rate(lambda _n: hsm.sign(payload), seconds, threads)
    sig = hsm.sign(payload)
    ver = rate(lambda _n: verify(hsm.public_key, hsm.algorithm, payload, sig), seconds, 1)
    rows = [
        ("software sign x1", soft_1, "1.00x"),
        (f"software sign x{threads}", soft_n, f"{soft_n / soft_1:.2f}x of x1"),
        ("pkcs11 sign x1", hsm_1, f"{hsm_1 / soft_1:.2f}x of sw"),
        (f"pkcs11 sign x{threads}", hsm_n, f"{hsm_n / soft_n:.2f}x of sw"),
        ("verify x1", ver, f"{ver / hsm_1:.1f}x of pkcs11"),
    ]
    for name, value, ratio in rows:
        print(f"{title:<14}{name:<20}{value:>10.0f}  {ratio}")
    print(f"{title:<14}{'pkcs11 scaling':<20}{hsm_n / hsm_1:>10.2f}x ({threads} vs 1 thread)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=None,
                        help="PKCS#11 sessions per token (default: the CPU count)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="siogw-bench-"))
    try:
        store = TokenStore(home)
        store.activate()
        from signing import Algorithm, SoftwareSigner, generate_software_key, verify_signature
        from signing.pkcs11_session import (
            close_all_sessions,
            default_pool_size,
            shared_session,
        )
        from signing.pkcs11_signer import Pkcs11Signer
        from signing.pkcs11_token import Pkcs11Token

        label = f"bench-{secrets.token_hex(3)}"
        pin = secrets.token_urlsafe(12)
        os.environ["SIOGW_BENCH_PIN"] = pin
        store.init_token(label, secrets.token_urlsafe(12), pin)
        token = Pkcs11Token(label, pin_source="env:SIOGW_BENCH_PIN")
        cases = [
            ("EC P-256", "ec", Algorithm.ECDSA_P256_SHA256),
            ("RSA-2048 PSS", "rsa", Algorithm.RSA_PSS_SHA256),
        ]
        pool = shared_session(label)
        bound = args.sessions if args.sessions is not None else default_pool_size()
        print(f"PKCS#11 sessions per token: at most {bound}; CPUs: {os.cpu_count()}")
        print(f"{'key':<14}{'operation':<20}{'ops/s':>10}  ratio")
        for title, key_type, alg in cases:
            key_id = token.generate_keypair(key_type, f"{key_type}-bench")
            hsm = Pkcs11Signer(token.uri(key_id=key_id), algorithm=alg, sessions=args.sessions)
            soft = SoftwareSigner(generate_software_key(alg), alg)
            report(title, hsm, soft, verify_signature, args.seconds, args.threads)
        print(f"PKCS#11 sessions in use at once (peak): {pool.stats().peak_in_use}")
        close_all_sessions()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
