"""No secret in any log (issue 17, point 2): the whole demo (``python -m siogw.demo``) runs
with the gateway's JSON logs at DEBUG on two processes (``SIOGW_LOG_FORMAT=json``,
``SIOGW_LOG_LEVEL=DEBUG``, ``SIOGW_WORKERS=2``); then every log file under its home and
every stream the demo wrote are searched for the secrets it used: the tokens' PINs
(``secrets/*.pin``), the SMS codes (the SMS stand-in's outbox) and every bearer token the
client library sent (recorded by a wrapper around ``signing.wire.bearer_metadata`` in the
demo's process). The JSON lines are checked too: one object per line with time, level,
logger and message, and the request id and user id on the lines of a call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs the demo with every bearer token the client library sends appended to a file.
RUN_DEMO = """
import runpy, sys
import clients._core as core
seen = open(sys.argv[1], "a", encoding="utf-8")
original = core.bearer_metadata
def recording(token):
    seen.write(token + "\\n"); seen.flush()
    return original(token)
core.bearer_metadata = recording
sys.argv = ["siogw.demo"]
runpy.run_module("siogw.demo", run_name="__main__")
"""


def secrets_used(home: Path, tokens_file: Path) -> dict[str, str]:
    """Secret -> what it is."""
    found: dict[str, str] = {}
    for pin in (home / "secrets").glob("*.pin"):
        found[pin.read_text().strip()] = f"PIN {pin.name}"
    outbox = home / "sms-outbox.jsonl"
    for line in outbox.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        for code in re.findall(r"code: (\d{4,8})", text):
            found[code] = "SMS code"
    for token in tokens_file.read_text(encoding="utf-8").split():
        found[token] = "bearer token"
    return found


@pytest.mark.slow
def test_the_demo_logs_no_secret_and_json_lines_carry_the_call(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    tokens_file = tmp_path / "tokens.txt"
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    env.update(SIOGW_HOME=str(home), SIOGW_LOG_FORMAT="json", SIOGW_LOG_LEVEL="DEBUG",
               SIOGW_WORKERS="2")
    proc = subprocess.run([sys.executable, "-c", RUN_DEMO, str(tokens_file)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo OK" in proc.stdout

    secrets = secrets_used(home, tokens_file)
    kinds = set(secrets.values())
    assert "SMS code" in kinds and "bearer token" in kinds
    assert any(k.startswith("PIN") for k in kinds)
    logs = {p: p.read_text(encoding="utf-8", errors="replace") for p in home.rglob("*.log")}
    assert logs, "the demo left no log"
    streams = {**{str(p): text for p, text in logs.items()},
               "demo stderr": proc.stderr, "demo stdout": proc.stdout}
    for where, text in streams.items():
        for secret, what in secrets.items():
            assert secret not in text, f"{what} in {where}"

    # the gateway's log: JSON, one object per line
    lines = [json.loads(line) for text in logs.values() for line in text.splitlines()
             if line.startswith("{")]
    assert lines
    text_format = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
    for text in logs.values():
        for line in text.splitlines():
            # Python's logging is JSON; a native library (p11-kit's modules, e.g.
            # tpm2-pkcs11's TCTI) may write plain text to fd 2 itself
            assert not text_format.match(line), line
            if line.startswith("{"):
                obj = json.loads(line)
                assert {"time", "level", "logger", "message"} <= set(obj), obj
    # the lines of a call carry its request id, and the user once authenticated: the
    # tampered query refused to the analyst
    refused = [obj for obj in lines if obj["logger"] == "siogw.server"
               and obj["message"].startswith("refused /siogw.v1.QueryService/Query")]
    assert refused
    for obj in refused:
        assert obj["request_id"] in obj["message"]
    assert any(obj.get("user_id") == "analyst" for obj in refused)
    # both processes logged (the worker too)
    assert {obj.get("process") for obj in lines} >= {"siogw", "siogw-worker-1"}
