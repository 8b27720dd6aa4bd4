"""Project-local SoftHSM token store (config, token init without PINs on argv)."""

from softhsm.store import (
    SoftHSMError,
    TokenInfo,
    TokenStore,
    default_home,
    find_pkcs11_module,
    find_softhsm_library,
)

__all__ = [
    "SoftHSMError",
    "TokenInfo",
    "TokenStore",
    "default_home",
    "find_pkcs11_module",
    "find_softhsm_library",
]
