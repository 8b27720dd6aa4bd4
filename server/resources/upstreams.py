"""``[upstreams]`` of ``siogw.toml``: which resources a remote upstream answers, and how.

One table per resource number (issue 14, finding 2)::

    [upstreams.11]
    url = "https://pension.bus.example.kz/siogw/11"   # https only (see allow_plain_http)
    timeout = 5.0              # total seconds per call, retries and backoff included
    attempts = 3               # tries per call (at least 1)
    idempotent = false         # true: the upstream honours Idempotency-Key (retries allowed
                               # after the request reached it)
    auth_header_file = "secrets/pension.auth"   # the Authorization value; mode 0600
    ca_file = "tls/bus-ca.pem" # trust these CAs for this upstream (default: the system's)
    max_response_bytes = 8388608
    max_depth = 32             # deepest JSON nesting accepted in an answer
    failure_threshold = 5      # circuit breaker: consecutive failures before it opens
    reset_timeout = 30.0       # seconds open before one trial call is let through
    allow_plain_http = false   # true: http:// accepted (tests, a local stand-in only)

The parse is strict like the rest of the configuration (:mod:`server.config`): an unknown
resource, an unknown key, a URL that is not ``https://host[:port]/path`` (credentials,
a query string or a fragment in the URL included), a value out of its bounds -- each is one
:class:`~siogw_api.errors.ConfigError` naming the setting. The secret itself (the
Authorization value) is not read here: :func:`server.resources.dispatch.Dispatcher.from_config`
reads it when the gateway is built, through the same checks as a PIN file (a regular file,
no symlink, not readable by group or others), and refuses to start when it cannot.

This module is deliberately light (stdlib and the catalogue): :mod:`server.config` imports it.
"""

from __future__ import annotations

import difflib
import math
import os
import ssl
import stat
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from server.resources.catalogue import CATALOGUE
from siogw_api.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "UPSTREAMS_SECTION",
    "UpstreamConfig",
    "check_upstream_keys",
    "parse_upstreams",
    "read_auth_header",
    "tls_context",
]

#: The section of ``siogw.toml`` this module reads.
UPSTREAMS_SECTION = "upstreams"

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 32

#: Bounds of each numeric setting (inclusive; ``timeout``/``reset_timeout`` exclusive of 0).
MAX_TIMEOUT = 300.0
MAX_ATTEMPTS = 10
MAX_RESPONSE_BYTES_LIMIT = 64 * 1024 * 1024
#: ``google.protobuf.Struct`` is parsed with a recursion limit of 100; an answer deeper
#: than that could not even be carried in a ``QueryResult``.
MAX_DEPTH_LIMIT = 64
MAX_FAILURE_THRESHOLD = 1000
MAX_RESET_TIMEOUT = 3600.0


@dataclass(frozen=True)
class UpstreamConfig:
    """One ``[upstreams.N]`` table (see the module docstring)."""

    url: str
    timeout: float = 5.0
    attempts: int = 3
    idempotent: bool = False
    auth_header_file: Path | None = None
    ca_file: Path | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    failure_threshold: int = 5
    reset_timeout: float = 30.0
    allow_plain_http: bool = False


_KEYS = frozenset(f.name for f in fields(UpstreamConfig))


def _nearest(word: str) -> str:
    close = difflib.get_close_matches(word, sorted(_KEYS), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _resource_number(name: Any, source: str) -> int:
    text = str(name)
    if not (text.isascii() and text.isdigit()) or len(text) > 3 or text != str(int(text)):
        raise ConfigError(f"[upstreams.{text[:40]}] in {source}: the table name must be a "
                          "resource number (1..52)")
    number = int(text)
    if number not in CATALOGUE:
        raise ConfigError(f"[upstreams.{number}] in {source}: no resource {number} in the "
                          "catalogue (1..52)")
    return number


def check_upstream_keys(value: Any, source: str) -> None:
    """:class:`ConfigError` unless ``value`` is ``{resource number: {known key: ...}}``."""
    if not isinstance(value, dict):
        raise ConfigError(f"[upstreams] must be a table of resource tables in {source}")
    for name, table in value.items():
        number = _resource_number(name, source)
        if not isinstance(table, dict):
            raise ConfigError(f"upstreams.{number} must be a table ([upstreams.{number}]) "
                              f"in {source}")
        for key in table:
            if key not in _KEYS:
                raise ConfigError(f"unknown key upstreams.{number}.{str(key)[:40]}"
                                  f"{_nearest(str(key))} in {source}")


def check_url(url: Any, where: str, *, allow_plain_http: bool) -> str:
    """``url`` if it is an absolute ``https://`` URL (``http://`` only when allowed) with a
    host and no credentials, query or fragment; :class:`ConfigError` otherwise."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: url must be a non-empty string")
    if len(url) > 2048 or not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError(f"{where}: url must be at most 2048 printable ASCII characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{where}: url is not a valid URL", detail=str(exc)) from None
    if parts.scheme == "http" and not allow_plain_http:
        raise ConfigError(f"{where}: url must be https:// (the Authorization header and the "
                          "personal data of a query cross the network); allow_plain_http = "
                          "true accepts http:// for tests and local stand-ins only")
    if parts.scheme not in ("https", "http"):
        raise ConfigError(f"{where}: url must be https://, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError(f"{where}: url has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{where}: url must not carry credentials (use auth_header_file)")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError(f"{where}: url must not have a query string or fragment")
    if port == 0:
        raise ConfigError(f"{where}: url has port 0")
    return url


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where} must be between {low} and {high}: {value}")
    return value


def _seconds(value: Any, where: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected seconds (a number), got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= high:
        raise ConfigError(f"{where} must be in (0, {high:g}] seconds: {value}")
    return seconds


def _file(home: Path, value: Any, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a path string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else home / path


def parse_upstream(home: Path, number: int, raw: Mapping[str, Any]) -> UpstreamConfig:
    """One ``[upstreams.N]`` table, checked (module docstring)."""
    where = f"upstreams.{number}"
    if "url" not in raw:
        raise ConfigError(f"{where}: url is required")
    plain = _bool(raw.get("allow_plain_http", False), f"{where}.allow_plain_http")
    defaults = UpstreamConfig(url="")
    return UpstreamConfig(
        url=check_url(raw["url"], where, allow_plain_http=plain),
        timeout=_seconds(raw.get("timeout", defaults.timeout), f"{where}.timeout", MAX_TIMEOUT),
        attempts=_int(raw.get("attempts", defaults.attempts), f"{where}.attempts",
                      1, MAX_ATTEMPTS),
        idempotent=_bool(raw.get("idempotent", False), f"{where}.idempotent"),
        auth_header_file=_file(home, raw.get("auth_header_file"), f"{where}.auth_header_file"),
        ca_file=_file(home, raw.get("ca_file"), f"{where}.ca_file"),
        max_response_bytes=_int(raw.get("max_response_bytes", defaults.max_response_bytes),
                                f"{where}.max_response_bytes", 2, MAX_RESPONSE_BYTES_LIMIT),
        max_depth=_int(raw.get("max_depth", defaults.max_depth), f"{where}.max_depth",
                       1, MAX_DEPTH_LIMIT),
        failure_threshold=_int(raw.get("failure_threshold", defaults.failure_threshold),
                               f"{where}.failure_threshold", 1, MAX_FAILURE_THRESHOLD),
        reset_timeout=_seconds(raw.get("reset_timeout", defaults.reset_timeout),
                               f"{where}.reset_timeout", MAX_RESET_TIMEOUT),
        allow_plain_http=plain,
    )


def parse_upstreams(home: Path, raw: Any, source: str = "the configuration") -> dict[
        int, UpstreamConfig]:
    """``[upstreams]`` as ``{resource number: UpstreamConfig}`` (empty when absent)."""
    if raw is None:
        return {}
    check_upstream_keys(raw, source)
    return {
        number: parse_upstream(home, number, table)
        for number, table in sorted((_resource_number(k, source), v) for k, v in raw.items())
    }


#: Longest Authorization value read from ``auth_header_file``.
MAX_AUTH_HEADER_BYTES = 8192


def read_auth_header(path: Path, where: str) -> str:
    """The first line of ``auth_header_file``: the ``Authorization`` value sent upstream.

    The file is a secret, checked like a PIN file (``signing.pins``): a regular file opened
    without following a symbolic link, not readable by group or others; a value of printable
    ASCII (no line breaks: it goes into an HTTP header). :class:`ConfigError` otherwise.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot open auth_header_file {path}",
                          detail=exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{where}: auth_header_file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"{where}: auth_header_file {path} is readable by group or "
                              f"others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it")
        data = os.read(fd, MAX_AUTH_HEADER_BYTES + 1)
    finally:
        os.close(fd)
    lines = data.splitlines()
    value = lines[0].strip() if lines else b""
    if len(data) > MAX_AUTH_HEADER_BYTES or not value:
        raise ConfigError(f"{where}: auth_header_file {path} must hold one value of 1 to "
                          f"{MAX_AUTH_HEADER_BYTES} bytes")
    if not all(0x20 <= b < 0x7F for b in value):
        raise ConfigError(f"{where}: auth_header_file {path} must hold printable ASCII only")
    return value.decode("ascii")


def tls_context(ca_file: Path | None, where: str) -> ssl.SSLContext:
    """Certificate verification for an https upstream: the system's CAs, or ``ca_file``'s
    only when set; :class:`ConfigError` when ``ca_file`` cannot be loaded."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}: cannot load ca_file {ca_file}",
                          detail=str(exc)[:200]) from None
