"""Where sio-gateway keeps a user's local state: ``$SIOGW_HOME``, else per user.

The default is the user's own state directory -- ``$XDG_STATE_HOME/siogw`` when that is
an absolute path, else ``~/.local/state/siogw`` -- never a directory under the current
one (``./var`` was: anyone who could write the current directory could plant the CLI's
session directory; issue 13, defect 15). ``$SIOGW_HOME`` still overrides (the demo and
the tests set it).

The client command line's session and settings (``clients.session``), the test CA and the
SoftHSM token store of tests and development (``<home>/softhsm``) all start from
:func:`default_home`. The gateway's own home is its configuration's (``server.config``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: Environment variable naming the home directory.
ENV_HOME = "SIOGW_HOME"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$SIOGW_HOME``, else ``$XDG_STATE_HOME/siogw``, else ``~/.local/state/siogw``."""
    env = os.environ if env is None else env
    if env.get(ENV_HOME):
        return Path(env[ENV_HOME])
    state = env.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "siogw"
