"""PIN sources: where a token PIN comes from, never from stored configuration.

A PIN source is one of:

* ``env:VAR`` — the value of environment variable ``VAR``;
* ``file:/path`` (or ``file:///path``) — the first line of a file that must not be
  readable by group or others (it is refused otherwise);
* a :data:`PinCallback` — a function given a description of what is being unlocked
  (``"token 'x'"``) that returns the PIN (a secrets manager, a prompt);
* a :class:`PinSource` object.

RFC 7512's ``pin-source`` query attribute takes the first two forms. Error messages name
the source (variable or path), never the PIN.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote

from signing.errors import PinError

#: A secrets callback: given what is being unlocked, return its PIN.
PinCallback = Callable[[str], str]


@runtime_checkable
class PinSource(Protocol):
    """Something that produces a PIN on demand."""

    def get_pin(self, description: str) -> str: ...


@dataclass(frozen=True)
class EnvPin:
    """``env:VAR``."""

    variable: str

    def get_pin(self, description: str) -> str:
        value = os.environ.get(self.variable)
        if value is None:
            raise PinError(f"PIN for {description}: environment variable {self.variable} is unset")
        if value == "":
            raise PinError(f"PIN for {description}: environment variable {self.variable} is empty")
        return value

    def __str__(self) -> str:
        return f"env:{self.variable}"


@dataclass(frozen=True)
class FilePin:
    """``file:/path``: the first line of a file private to its owner."""

    path: Path

    def get_pin(self, description: str) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise PinError(
                f"PIN for {description}: cannot open PIN file {self.path}", detail=exc.strerror
            ) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise PinError(f"PIN for {description}: {self.path} is not a regular file")
            if info.st_mode & 0o077:
                raise PinError(
                    f"PIN for {description}: PIN file {self.path} is readable by group or "
                    f"others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(4096)
        finally:
            os.close(fd)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PinError(f"PIN for {description}: {self.path} is not UTF-8") from None
        pin = text.splitlines()[0] if text else ""
        if pin == "":
            raise PinError(f"PIN for {description}: PIN file {self.path} is empty")
        return pin

    def __str__(self) -> str:
        return f"file:{self.path}"


@dataclass(frozen=True)
class CallbackPin:
    """Adapts a :data:`PinCallback`."""

    callback: PinCallback

    def get_pin(self, description: str) -> str:
        pin = self.callback(description)
        if not isinstance(pin, str) or pin == "":
            raise PinError(f"PIN for {description}: the PIN callback returned no PIN")
        return pin

    def __str__(self) -> str:
        return "callback"


def parse_pin_source(spec: str) -> PinSource:
    """Parse ``env:VAR`` or ``file:/path`` (``file:///path`` and ``%XX`` accepted)."""
    if not isinstance(spec, str):
        raise PinError("a PIN source must be a string")
    scheme, colon, rest = spec.partition(":")
    if not colon:
        raise PinError(
            "a PIN source must be env:VAR or file:/path",
            detail="a bare value looks like a PIN itself and is refused",
        )
    scheme = scheme.lower()
    if scheme == "env":
        if not rest or not rest.replace("_", "a").isalnum() or rest[0].isdigit():
            raise PinError("env: PIN source needs a variable name", detail=repr(rest[:64]))
        return EnvPin(rest)
    if scheme == "file":
        path = unquote(rest)
        if path.startswith("//"):
            authority, slash, tail = path[2:].partition("/")
            if authority not in ("", "localhost"):
                raise PinError("file: PIN source must be local", detail=authority)
            path = slash + tail
        if not path:
            raise PinError("file: PIN source needs a path")
        return FilePin(Path(path))
    raise PinError(f"unknown PIN source scheme {scheme!r}", detail="expected env: or file:")


PinSpec = str | PinSource | PinCallback


def as_pin_source(spec: PinSpec) -> PinSource:
    """Normalise a string, :class:`PinSource` or callback to a :class:`PinSource`."""
    if isinstance(spec, str):
        return parse_pin_source(spec)
    if isinstance(spec, PinSource):
        return spec
    if callable(spec):
        return CallbackPin(spec)
    raise PinError(f"unsupported PIN source type {type(spec).__name__}")


def resolve_pin(spec: PinSpec, description: str) -> str:
    """The PIN from ``spec``, for ``description`` (e.g. ``"token 'x'"``)."""
    return as_pin_source(spec).get_pin(description)
