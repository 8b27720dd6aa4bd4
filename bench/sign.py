"""Signing throughput: PKCS#11 (SoftHSM via p11-kit) with 1 and N threads vs software keys,
then the three PKCS#11 implementations side by side.

Creates its own temporary token store (SOFTHSM2_CONF is set before PKCS#11 loads), one
EC P-256 and one RSA-2048 key on a token and the same key types in software, then prints
signs/s per backend and thread count, verifies/s, and ratios. Then, for SoftHSM (via
p11-kit-proxy), tpm2-pkcs11 on a fresh swtpm TPM 2.0 emulator and openCryptoki's software
token (see softhsm/tpm2.py, softhsm/ock.py and ADR 0001, "Implementations"),
signatures/s and ms each per key type at 1 and N threads ("-": the implementation cannot
sign it; "absent": not installed, run `make system-deps`). No assertions on timing.

    .venv/bin/python bench/sign.py [--seconds 2] [--threads 8] [--sessions N]
                                   [--impl-seconds 1] [--impls softhsm,tpm2,opencryptoki]

``--sessions`` bounds the PKCS#11 session pool per token (``Pkcs11Signer(sessions=...)``,
as the server's ``[signer] sessions``; default: the CPU count); ``--sessions 1``
reproduces the one-shared-session design.
"""

from __future__ import annotations

import argparse
import json
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

ROOT = Path(__file__).resolve().parent.parent


def rate(fn: Callable[[int], None], seconds: float, threads: int) -> float:
    """Operations per second of ``fn(i)`` run by ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        barrier.wait()
        stop = time.monotonic() + seconds  # after the start, however slow it was
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
    parser.add_argument("--impl-seconds", type=float, default=1.0,
                        help="seconds per cell of the implementations table")
    parser.add_argument("--impls", default="softhsm,tpm2,opencryptoki",
                        help="implementations to compare (comma-separated)")
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
        impls = [name.strip() for name in args.impls.split(",") if name.strip()]
        compare_implementations(impls, label, home, args.impl_seconds, args.threads)
        close_all_sessions()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


IMPL_CASES = (
    ("EC P-256", "ec", "ecdsa-p256-sha256"),
    ("RSA-2048 PSS", "rsa", "rsa-pss-sha256"),
    ("RSA-2048 PKCS1", "rsa", "rsa-pkcs1v15-sha256"),
)


def _open_implementations(
    names: list[str], softhsm_label: str, home: Path
) -> tuple[dict[str, Any], list[Callable[[], None]]]:
    """name -> (token label, module path or None, PIN env) for each one that runs here."""
    from softhsm import ock
    from softhsm.tpm2 import init_token, start_swtpm, tpm2_library

    found: dict[str, Any] = {}
    cleanups: list[Callable[[], None]] = []
    for name in names:
        try:
            if name == "softhsm":
                found[name] = (softhsm_label, None, "env:SIOGW_BENCH_PIN")
            elif name == "tpm2":
                library = tpm2_library()
                if library is None or shutil.which("swtpm") is None:
                    raise RuntimeError("absent")
                base = home / "swtpm"
                base.mkdir()
                tpm = start_swtpm(base)
                cleanups.append(tpm.stop)
                os.environ.update(tpm.env())
                pin = secrets.token_urlsafe(12)
                os.environ["SIOGW_BENCH_TPM_PIN"] = pin
                init_token(library, "bench-tpm", secrets.token_urlsafe(12), pin)
                found[name] = ("bench-tpm", library, "env:SIOGW_BENCH_TPM_PIN")
            elif name == "opencryptoki":
                library = ock.ock_library()
                if library is None or not Path(
                    shutil.which("pkcsslotd") or "/usr/sbin/pkcsslotd"
                ).exists():
                    raise RuntimeError("absent")
                ock.ensure_pkcsslotd()
                import subprocess

                proc = subprocess.run(
                    [sys.executable, "-m", "softhsm.ock", "ock-init", "--module", library],
                    input=json.dumps({"label": ock.OCK_LABEL, "so_pin": ock.OCK_SO_PIN,
                                      "user_pin": ock.OCK_USER_PIN}),
                    capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                )
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr.strip()[-200:])
                os.environ["SIOGW_BENCH_OCK_PIN"] = ock.OCK_USER_PIN
                found[name] = (ock.OCK_LABEL, library, "env:SIOGW_BENCH_OCK_PIN")
            else:
                raise RuntimeError("unknown implementation")
        except Exception as exc:
            found[name] = f"{exc}"[:40] or type(exc).__name__
    return found, cleanups


def compare_implementations(
    names: list[str], softhsm_label: str, home: Path, seconds: float, threads: int
) -> None:
    """Print signatures/s and ms each per implementation, side by side."""
    from signing import Algorithm, verify_signature
    from signing.pkcs11_session import shared_session
    from signing.pkcs11_signer import Pkcs11Signer
    from signing.pkcs11_token import Pkcs11Token
    from siogw_api.errors import SigningError

    found, cleanups = _open_implementations(names, softhsm_label, home)
    payload = b"x" * 256
    cells: dict[tuple[str, str], str] = {}
    try:
        for name in names:
            spec = found[name]
            for title, key_type, alg_name in IMPL_CASES:
                for n in (1, threads):
                    row = f"{title} x{n}"
                    if isinstance(spec, str):
                        cells[(row, name)] = spec
                        continue
                    label, module, pin = spec
                    token = Pkcs11Token(label, pin_source=pin, module_path=module)
                    key_label = f"ct-bench-{key_type}"
                    try:
                        if not any(k.label == key_label for k in token.list_keys()):
                            token.generate_keypair(key_type, key_label)
                        uri = token.uri(label=key_label)
                        if module:
                            uri += f"&module-path={module}"
                        signer = Pkcs11Signer(uri, algorithm=Algorithm(alg_name))
                        sig = signer.sign(payload)
                        verify_signature(signer.public_key, signer.algorithm, payload, sig)
                    except SigningError:
                        cells[(row, name)] = "-"
                        continue
                    def sign_once(_n: int, s: Any = signer) -> None:
                        s.sign(payload)

                    ops = rate(sign_once, seconds, n)
                    cells[(row, name)] = f"{ops:,.0f}/s {1000 / ops:.2f} ms"
                    # a bare TPM holds one loaded key per login: log out between keys
                    shared_session(label, module).close()
            if not isinstance(spec, str) and name == "opencryptoki":
                label, module, pin = spec
                token = Pkcs11Token(label, pin_source=pin, module_path=module)
                for key in token.list_keys():
                    if key.label.startswith("ct-bench-"):
                        token.delete(label=key.label)
    finally:
        for cleanup in cleanups:
            cleanup()
    print()
    print(f"PKCS#11 implementations side by side (signatures/s and ms each; {seconds:g} s "
          "per cell; ms each = 1/rate, at N threads the time per signature of the whole)")
    width = 22
    print(f"{'key':<20}" + "".join(f"{name:>{width}}" for name in names))
    for title, _key_type, _alg in IMPL_CASES:
        for n in (1, threads):
            row = f"{title} x{n}"
            print(f"{row:<20}" + "".join(f"{cells[(row, name)]:>{width}}" for name in names))


if __name__ == "__main__":
    sys.exit(main())
