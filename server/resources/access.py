"""Access rights applied on the server before any answer leaves it (SPEC R2).

A truncated resource declares an *allowlist* (:attr:`Resource.kept_fields`): every key
anywhere in the nested answer that is not on it is removed, together with its value. An
allowlist rather than a denylist, so that an upstream that adds a field (``sum``,
``total``, ``amount_usd`` ...) cannot leak it: an unknown key is dropped by default.
"""

from __future__ import annotations

from typing import Any

from server.resources.catalogue import Resource

__all__ = ["apply_access_right"]


def _keep(value: Any, allowed: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _keep(v, allowed) for k, v in value.items() if k in allowed}
    if isinstance(value, list | tuple):
        return [_keep(v, allowed) for v in value]
    return value


def apply_access_right(resource: Resource, data: dict[str, Any]) -> dict[str, Any]:
    """The part of ``data`` the agency may receive for ``resource``.

    Full-access resources get ``data`` back unchanged. For a truncated one a new, filtered
    structure is returned (``data`` is not modified).
    """
    if not resource.truncated:
        return data
    kept: dict[str, Any] = _keep(data, resource.kept_fields)
    return kept
