"""Feeding gateway audit records to the operations domain's rules.

:func:`observe_audit_record` turns a gateway ``audit.AuditRecord`` into the dict the rule
engine reads. (Nothing is mirrored between the gateway and the operations domain: users,
certificates and maintenance windows have one table each, see :mod:`server.store`.)
Nothing here is imported by the other ops modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.ops import Operations


def observe_audit_record(ops: Operations, record: Any) -> list[Any]:
    """Feed one gateway ``AuditRecord`` (actor, event, outcome, details) to the rules."""
    return list(ops.rules.observe({
        "event_type": str(record.event), "actor": record.actor, "outcome": str(record.outcome),
        "details": dict(record.details),
    }))
