"""The gateway's log lines (issue 17, point 2): text, or JSON with the call's ids.

``siogw serve --log-format json`` (``[logging] format = "json"``, env
``SIOGW_LOG_FORMAT``) writes one JSON object per line to standard error::

    {"time": "2026-12-05T01:02:03.456+00:00", "level": "INFO", "logger": "siogw.server",
     "message": "refused /siogw.v1.QueryService/Query (request id ...): ...",
     "request_id": "9f3c...", "user_id": "analyst", "process": "siogw"}

``request_id`` (the call id the client gets in ``x-request-id``) and ``user_id`` (the
authenticated user, once known) are on every line logged while a call is served, in the
call's task or in a thread it handed work to (:func:`server.interceptors.active_call`: a
context variable, which ``asyncio.to_thread`` carries over). An exception's traceback is
the ``exception`` field.

What is never logged, in either format: PINs, bearer tokens, SMS codes, key material.
The gateway's own log calls name users, methods, reasons and ids only;
``tests/siogw/test_log_secrets.py`` runs the whole demo with JSON logs at DEBUG and
searches every log for the secrets it used.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any

from server.config import LoggingSettings
from server.interceptors import active_call

TEXT_FORMAT = "%(asctime)s {process}%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def __init__(self, process: str = "siogw") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call = active_call()
        if call is not None:
            obj["request_id"] = call.request_id
            if call.user_id is not None:
                obj["user_id"] = call.user_id
        obj["process"] = self.process
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exception"] = record.exc_text
        if record.stack_info:
            obj["stack"] = self.formatStack(record.stack_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


class CallFilter(logging.Filter):
    """Text lines: appends `` [request_id user]`` during a call."""

    def filter(self, record: logging.LogRecord) -> bool:
        call = active_call()
        record.call = (f" [{call.request_id}{' ' + call.user_id if call.user_id else ''}]"
                       if call is not None else "")
        return True


def configure_logging(settings: LoggingSettings, *, level: int | None = None,
                      process: str = "siogw") -> None:
    """Point the root logger at standard error in ``settings.format``.

    ``settings.level`` wins when set; else ``level`` (the current root level by
    default)."""
    root = logging.getLogger()
    if settings.level:
        level = logging.getLevelName(settings.level)
    elif level is None:
        level = root.getEffectiveLevel()
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        prefix = "" if process == "siogw" else process + " "
        handler.setFormatter(logging.Formatter(
            TEXT_FORMAT.format(process=prefix) + "%(call)s"))
        handler.addFilter(CallFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level is not None else logging.WARNING)
