"""Project-local SoftHSM token store (config, token init without PINs on argv).

Test and development tooling: production signing finds its PKCS#11 module through
:mod:`signing.modules` and never imports this package.
"""

from softhsm.store import (
    SoftHSMError,
    TokenInfo,
    TokenStore,
    find_softhsm_library,
)

__all__ = [
    "SoftHSMError",
    "TokenInfo",
    "TokenStore",
    "find_softhsm_library",
]
