"""Availability (R10): maintenance windows, the service status, and gRPC health.

Windows live in the control-plane DB (published by an operator through AdminService or
``siogw admin maintenance``). During a window every Query is refused with
``UNAVAILABLE`` naming the window's end in Astana time, and the health status of
``siogw.v1.QueryService`` is ``NOT_SERVING``. The health status is re-evaluated by a
background task every ``limits.health_poll_seconds`` and right after a window is
published, so a window that starts or ends on its own is reflected within one poll.

The same poll reports ``NOT_SERVING`` when the gateway could not serve a login or a
signed call safely: a configured CRL past its nextUpdate (``trust_check``:
:meth:`server.certcheck.TrustMaterial.check_crls_current`; every certificate check then
fails closed with ``STALE_CRL`` until the CA publishes a fresh CRL, which is picked up
from the file without a restart) or, on a worker, a lost link to the log host
(``audit_check``).

Each resource answered by a remote upstream (``[upstreams.N]``) has a health service of
its own, ``siogw.upstream.<N>`` (``upstream_check``:
:meth:`server.resources.Dispatcher.upstream_health`): ``NOT_SERVING`` while that
upstream's circuit breaker (in this process) is open, ``SERVING`` otherwise (closed, or
half-open: a trial call goes through). It does not change the gateway's own status: the
other resources are still served.

Likewise each issuer whose CRL is fetched from its distribution point has a health
service ``siogw.crl.<issuer DN>`` (:meth:`server.certcheck.TrustMaterial.crl_health`,
merged into the same check by :mod:`server.assembly`): ``NOT_SERVING`` while that
issuer's CRL is past nextUpdate + ``[crl] grace`` (its certificates are refused with
``CRL_UNAVAILABLE``), the gateway's own status unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from grpc import aio
from grpc_health.v1 import health_pb2

from server.errors import UnderMaintenance
from server.store import Store
from server.store.maintenance import WindowRow
from server.store.sessions import SessionContext
from siogw_api.timeutil import astana_iso, now_utc
from siogw_api.v1 import common_pb2, query_pb2

log = logging.getLogger("siogw.server")

#: Service names whose health the gateway reports.
QUERY_SERVICE = "siogw.v1.QueryService"
ALL_SERVICES = (
    "siogw.v1.AuthService",
    QUERY_SERVICE,
    "siogw.v1.AuditService",
    "siogw.v1.AdminService",
    "siogw.v1.ReportingService",
    "siogw.v1.ScreeningService",
)


def window_proto(window: WindowRow) -> common_pb2.MaintenanceWindow:
    return common_pb2.MaintenanceWindow(
        id=window.id,
        starts_at=astana_iso(window.starts_at),
        ends_at=astana_iso(window.ends_at),
        description=window.description,
        urgent=window.urgent,
    )


def check_not_in_maintenance(store: Store, *, context: SessionContext | None = None) -> None:
    """:class:`UnderMaintenance` (``UNAVAILABLE``) while a published window is open.

    ``context``: the window was read with the session in this call (no second read).
    """
    window = context.window if context is not None else store.current_window(now_utc())
    if window is not None:
        raise UnderMaintenance(
            f"the gateway is unavailable until {astana_iso(window.ends_at)} "
            f"(maintenance: {window.description or window.id})"
        )


def service_status(store: Store) -> query_pb2.ServiceStatus:
    now = now_utc()
    windows = store.windows(not_ended_before=now)
    current = next((w for w in windows if w.covers(now)), None)
    status = query_pb2.ServiceStatus(
        serving=current is None,
        now=astana_iso(now),
        windows=[window_proto(w) for w in windows],
    )
    if current is not None:
        status.current.CopyFrom(window_proto(current))
        status.reason = (
            f"planned maintenance until {astana_iso(current.ends_at)}: {current.description}"
        )
    return status


class HealthUpdater:
    """Keeps the gRPC health service in step with the maintenance windows."""

    def __init__(
        self,
        store: Store,
        health: object,
        poll_seconds: float,
        *,
        audit_check: Callable[[], None] | None = None,
        trust_check: Callable[[], None] | None = None,
        upstream_check: Callable[[], Mapping[str, bool]] | None = None,
    ) -> None:
        self.store = store
        self.health = health
        self.poll_seconds = poll_seconds
        #: Raises when records cannot be logged (a worker's link to the log host, ADR
        #: 0007): queries would fail closed, so the process reports NOT_SERVING.
        self.audit_check = audit_check
        #: Raises when certificates cannot be checked (a stale CRL): logins would fail
        #: closed, so the process reports NOT_SERVING.
        self.trust_check = trust_check
        #: ``{health service name: serving}`` of each remote upstream (its breaker).
        self.upstream_check = upstream_check
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Set the statuses now; returns whether queries are being served."""
        try:
            serving = await asyncio.to_thread(self.store.current_window, now_utc()) is None
        except Exception as exc:  # database down: not serving
            log.warning("health check cannot read maintenance windows: %s", exc)
            serving = False
        if serving and self.audit_check is not None:
            try:
                self.audit_check()
            except Exception as exc:
                log.warning("health check: the audit log is unavailable: %s", exc)
                serving = False
        if serving and self.trust_check is not None:
            try:
                await asyncio.to_thread(self.trust_check)
            except Exception as exc:
                log.warning("health check: certificates cannot be checked: %s", exc)
                serving = False
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(QUERY_SERVICE, status)  # type: ignore[attr-defined]
        await self.health.set("", status)  # type: ignore[attr-defined]
        if self.upstream_check is not None:
            for name, up in self.upstream_check().items():
                await self.health.set(name, health_pb2.HealthCheckResponse.SERVING  # type: ignore[attr-defined]
                                      if up else health_pb2.HealthCheckResponse.NOT_SERVING)
        return serving

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="siogw-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.health.enter_graceful_shutdown()  # type: ignore[attr-defined]


async def get_service_status(
    store: Store, request: query_pb2.GetServiceStatusRequest, context: aio.ServicerContext
) -> query_pb2.ServiceStatus:
    return await asyncio.to_thread(service_status, store)
