"""Where sio-gateway keeps local state: ``$SIOGW_HOME``, default ``./var``.

The command line (``--home``), the test CA and the SoftHSM token store of tests and
development (``$SIOGW_HOME/softhsm``) all start from :func:`default_home`.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the home directory.
ENV_HOME = "SIOGW_HOME"


def default_home() -> Path:
    """``$SIOGW_HOME`` or ``./var``."""
    return Path(os.environ.get(ENV_HOME) or "var")
