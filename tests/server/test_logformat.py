"""``--log-format json`` (issue 17, point 2): one JSON object per line, with the request id
and the user id on the lines logged during a call (server.logformat)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from server.cli import _config
from server.config import LoggingSettings
from server.interceptors import _CALL, CallInfo
from server.logformat import CallFilter, JsonFormatter, configure_logging
from siogw.cli import build_parser


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord("siogw.server", logging.INFO, __file__, 1, message, args,
                             (type(exc), exc, exc.__traceback__) if exc else None)


def test_json_lines_carry_the_call_while_it_is_served() -> None:
    fmt = JsonFormatter()
    outside = json.loads(fmt.format(record("started on %d", 8443)))
    assert outside["message"] == "started on 8443" and outside["level"] == "INFO"
    assert outside["logger"] == "siogw.server" and "T" in outside["time"]
    assert "request_id" not in outside and "user_id" not in outside
    info = CallInfo(request_id="abc123", method="/siogw.v1.QueryService/Query")
    token = _CALL.set(info)
    try:
        before_login = json.loads(fmt.format(record("checking")))
        info.user_id = "analyst"
        after = json.loads(fmt.format(record("refused")))
    finally:
        _CALL.reset(token)
    assert before_login["request_id"] == "abc123" and "user_id" not in before_login
    assert (after["request_id"], after["user_id"]) == ("abc123", "analyst")


def test_a_traceback_stays_inside_its_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        line = JsonFormatter().format(record("failed", exc=exc))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_lines_name_the_call() -> None:
    rec = record("refused")
    info = CallInfo(request_id="r1", method="m", user_id="u1")
    token = _CALL.set(info)
    try:
        CallFilter().filter(rec)
    finally:
        _CALL.reset(token)
    assert rec.call == " [r1 u1]"  # type: ignore[attr-defined]


def test_serve_takes_log_format_and_configure_logging_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["serve", "--home", str(tmp_path), "--log-format",
                                      "json"])
    assert _config(args).logging.format == "json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--log-format", "xml"])
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(LoggingSettings(format="json", level="INFO"))
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("siogw.test").info("hello %s", "world")
        logging.getLogger("siogw.test").debug("not at INFO")
        (line,) = stream.getvalue().splitlines()
        assert json.loads(line)["message"] == "hello world"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
