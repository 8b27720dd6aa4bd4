"""The ``[audit]`` section: defaults, file values, refusals (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import load_config
from siogw_api.errors import ConfigError


def test_audit_defaults_and_file_values(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    assert cfg.audit.checkpoint_interval == 1.0 and cfg.audit.seal_max_age == 3600.0
    assert cfg.audit.witness_dir is None and cfg.audit.immutable_seals is False
    (tmp_path / "siogw.toml").write_text(
        '[audit]\ncheckpoint_interval = 0.5\nseal_max_age = 60\n'
        'witness_dir = "witness"\nimmutable_seals = true\n')
    cfg = load_config(tmp_path, env={})
    assert cfg.audit.checkpoint_interval == 0.5 and cfg.audit.seal_max_age == 60.0
    assert cfg.audit.witness_dir == tmp_path.resolve() / "witness"
    assert cfg.audit.immutable_seals is True


@pytest.mark.parametrize("bad", [{"checkpoint_interval": 0}, {"seal_max_age": -1},
                                 {"seal_max_age": "soon"}, {"witness": "typo"}])
def test_audit_bad_settings_refused(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={}, overrides={"audit": bad})
