"""Which PKCS#11 module (shared library) production signing loads.

Order (see docs/adr/0001-pkcs11-through-p11-kit.md):

1. an explicit path: the configuration, or the key URI's ``module-path``;
2. ``SIOGW_PKCS11_MODULE`` (a vendor HSM module, or the SoftHSM library in
   single-threaded tools); a path that does not exist is an error, never skipped;
3. the well-known paths, first existing file wins: p11-kit's proxy first (it initialises
   the modules it loads with OS locking, so SoftHSM behind it is thread-safe; ADR 0001),
   then SoftHSM v2, OpenSC and openCryptoki.

Nothing here loads the library; :mod:`signing.pkcs11_session` does that. The SoftHSM
token store of tests and development (:mod:`softhsm`) uses :data:`SOFTHSM_CANDIDATES`;
signing never imports :mod:`softhsm`.
"""

from __future__ import annotations

import os
from pathlib import Path

from signing.errors import TokenError

#: Environment variable naming the PKCS#11 module (overrides the well-known paths).
ENV_MODULE = "SIOGW_PKCS11_MODULE"

#: p11-kit's proxy module on Debian/Ubuntu x86-64, Fedora/RHEL and others.
P11_KIT_PROXY_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
    "/usr/lib64/p11-kit-proxy.so",
    "/usr/lib/p11-kit-proxy.so",
)
#: The SoftHSM v2 library on common distributions.
SOFTHSM_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
#: OpenSC's PKCS#11 module (smart cards and USB tokens).
OPENSC_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib64/pkcs11/opensc-pkcs11.so",
)
#: openCryptoki's PKCS#11 library (IBM crypto adapters, software token). Debian 12
#: ships only ``libopencryptoki.so.0`` in its own directory, and a ``pkcs11/`` link.
OPENCRYPTOKI_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so",
    "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0",
    "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so",
    "/usr/lib64/opencryptoki/libopencryptoki.so",
    "/usr/lib/opencryptoki/libopencryptoki.so",
)
#: tpm2-pkcs11 (a TPM 2.0 as a token). Not in the well-known list: it disables its own
#: locking when initialised without arguments (python-pkcs11 does that), so it is used
#: behind p11-kit-proxy, where Debian's package registers it (ADR 0001).
TPM2_PKCS11_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
    "/usr/lib64/pkcs11/libtpm2_pkcs11.so",
    "/usr/lib/pkcs11/libtpm2_pkcs11.so",
)
#: Every well-known path, in the order they are tried.
WELL_KNOWN_MODULES: tuple[str, ...] = (
    *P11_KIT_PROXY_CANDIDATES,
    *SOFTHSM_CANDIDATES,
    *OPENSC_CANDIDATES,
    *OPENCRYPTOKI_CANDIDATES,
)


def first_existing(candidates: tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` that exists, or ``None``."""
    for candidate in candidates:
        if Path(candidate).exists():
            return Path(candidate)
    return None


def find_pkcs11_module(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The PKCS#11 module to load: ``explicit``, ``$SIOGW_PKCS11_MODULE``, well-known paths.

    ``explicit`` (configuration or URI ``module-path``) is returned as given: loading it
    reports a missing file. Raises :class:`~signing.errors.TokenError` when
    ``SIOGW_PKCS11_MODULE`` names a missing file or no well-known module is installed.
    """
    if explicit:
        return Path(explicit)
    override = os.environ.get(ENV_MODULE)
    if override:
        if not Path(override).exists():
            raise TokenError(f"{ENV_MODULE} names a missing file", detail=override)
        return Path(override)
    found = first_existing(WELL_KNOWN_MODULES)
    if found is None:
        raise TokenError(
            "no PKCS#11 module found",
            detail="install p11-kit (and the token's module) or set " + ENV_MODULE,
        )
    return found
