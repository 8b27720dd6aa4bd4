"""A latency *model* of a slow token for ``bench/gateway.py --hsm-latency-ms N`` (issue 18).

Not a real device: the gateway's SoftHSM signer is wrapped so that every signature first
holds one of ``sessions`` slots (a token serves that many signatures at once) for an
added ``N`` ms (``time.sleep``: the GIL is free meanwhile, as while a thread waits for a
network HSM or a USB device), then signs on SoftHSM. Only the gateway's result key is
wrapped (``server.assembly.load_gateway_signer``); the audit key and the analyst's token
are not.

Installed into the gateway's processes (and the crypto floor's) by a ``sitecustomize``
module that the bench writes to a temporary directory and puts first on ``PYTHONPATH``,
so spawned worker processes (ADR 0007) are wrapped too. Nothing of this is in the
gateway's own code.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: Environment variables the ``sitecustomize`` reads.
LATENCY_ENV = "SIOGW_BENCH_HSM_LATENCY_MS"
SESSIONS_ENV = "SIOGW_BENCH_HSM_SESSIONS"

SITECUSTOMIZE = """\
import os as _os
if _os.environ.get({latency!r}):
    import importlib.util as _ilu
    import sys as _sys
    if {root!r} not in _sys.path:
        _sys.path.insert(0, {root!r})
    _spec = _ilu.spec_from_file_location("_siogw_hsm_model", {module!r})
    _hsm_model = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(_hsm_model)
    _hsm_model.install(float(_os.environ[{latency!r}]), int(_os.environ.get({sessions!r}, "2")))
"""


def sitecustomize_source(root: str) -> str:
    """The ``sitecustomize`` module: loads this file by its path (the bench directory is
    never put on ``sys.path``: its ``audit.py`` would shadow the ``audit`` package)."""
    return SITECUSTOMIZE.format(latency=LATENCY_ENV, sessions=SESSIONS_ENV, root=root,
                                module=__file__)


def install(latency_ms: float, sessions: int) -> None:
    """Wrap ``server.assembly.load_gateway_signer``'s signer with the model."""
    from server import assembly
    from signing.api import Signer

    class ModelledToken(Signer):
        """The real signer, each signature delayed by the model."""

        def __init__(self, inner: Signer) -> None:
            self._inner = inner
            self._slots = threading.BoundedSemaphore(max(1, sessions))

        @property
        def algorithm(self) -> Any:
            return self._inner.algorithm

        @property
        def public_key(self) -> Any:
            return self._inner.public_key

        @property
        def key_id(self) -> str:
            return self._inner.key_id

        @property
        def certificate(self) -> Any:
            return self._inner.certificate

        def sign(self, payload: bytes) -> bytes:
            with self._slots:
                time.sleep(latency_ms / 1000.0)
                return self._inner.sign(payload)

    real = assembly.load_gateway_signer

    def load_gateway_signer(config: Any) -> Signer:
        return ModelledToken(real(config))

    assembly.load_gateway_signer = load_gateway_signer
