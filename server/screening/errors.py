"""Errors of the List and the Lists (issue 16, point 6)."""

from __future__ import annotations

from siogw_api.errors import InputError


class InvalidListFile(InputError):
    """A list file that does not follow the documented CSV or XML format
    (``INVALID_ARGUMENT``); the message names the line or element and the field."""


class UnknownList(InputError):
    """A list name that is none of ``terrorist``, ``ft_extremism``, ``proliferation``."""


class InvalidSubject(InputError):
    """A screening subject without an IIN/BIN or a name, or with a malformed field."""
