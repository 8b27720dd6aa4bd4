"""Client library for sio-gateway: log in with MFA, sign queries on a token, verify answers.

:class:`GatewayClient` (blocking) and :class:`AsyncGatewayClient` (asyncio) have the same
surface. Every query is signed with the user's :class:`signing.api.Signer` and every
result is verified against the pinned gateway certificate before it is returned.

Both execute the same I/O-free description of each call (:mod:`clients._core`).

Names are imported on first use, so ``import clients.cli`` (the ``siogw client`` and
``siogw-client`` commands) stays light: gRPC and the generated stubs load only when a
client is made. ``clients/pyproject.toml`` makes this package, with :mod:`signing` and
:mod:`siogw_api`, a distribution of its own that installs without the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clients._common import (
        AdminOutcome,
        CheckpointInfo,
        Consent,
        ConsentSigned,
        ConsistencyProofInfo,
        InclusionProofInfo,
        LoginResult,
        MaintenanceInfo,
        PinnedGatewayVerifier,
        PreparedQuery,
        QueryOutcome,
        Receipt,
        RefusalDocument,
        ResourceInfo,
        ServiceStatusInfo,
        build_query,
        message_dict,
        verify_receipt,
    )
    from clients._reports import (
        CsvExportInfo,
        QueryRow,
        QueryRowPage,
        ReportFilter,
        Resolution,
    )
    from clients.aio import AsyncGatewayClient
    from clients.biometric import BiometricMismatch, DeviceAssertion, SoftwareDeviceKey
    from clients.errors import ClientError, ClientUsageError, ResultVerificationError
    from clients.sync import GatewayClient

_WHERE: dict[str, str] = {
    "AdminOutcome": "clients._common",
    "CheckpointInfo": "clients._common",
    "Consent": "clients._common",
    "ConsentSigned": "clients._common",
    "ConsistencyProofInfo": "clients._common",
    "InclusionProofInfo": "clients._common",
    "LoginResult": "clients._common",
    "MaintenanceInfo": "clients._common",
    "PinnedGatewayVerifier": "clients._common",
    "PreparedQuery": "clients._common",
    "QueryOutcome": "clients._common",
    "Receipt": "clients._common",
    "RefusalDocument": "clients._common",
    "ResourceInfo": "clients._common",
    "message_dict": "clients._common",
    "ServiceStatusInfo": "clients._common",
    "build_query": "clients._common",
    "verify_receipt": "clients._common",
    "AsyncGatewayClient": "clients.aio",
    "BiometricMismatch": "clients.biometric",
    "DeviceAssertion": "clients.biometric",
    "SoftwareDeviceKey": "clients.biometric",
    "ClientError": "clients.errors",
    "ClientUsageError": "clients.errors",
    "ResultVerificationError": "clients.errors",
    "GatewayClient": "clients.sync",
    # Reports (§21) and the prosecutor's supervision (§22), issue 15
    "CsvExportInfo": "clients._reports",
    "QueryRow": "clients._reports",
    "QueryRowPage": "clients._reports",
    "ReportFilter": "clients._reports",
    "Resolution": "clients._reports",
}

__all__ = [
    "AdminOutcome",
    "AsyncGatewayClient",
    "BiometricMismatch",
    "CheckpointInfo",
    "ClientError",
    "ClientUsageError",
    "Consent",
    "ConsentSigned",
    "ConsistencyProofInfo",
    "DeviceAssertion",
    "GatewayClient",
    "InclusionProofInfo",
    "LoginResult",
    "MaintenanceInfo",
    "PinnedGatewayVerifier",
    "PreparedQuery",
    "QueryOutcome",
    "Receipt",
    "RefusalDocument",
    "ResourceInfo",
    "ResultVerificationError",
    "ServiceStatusInfo",
    "SoftwareDeviceKey",
    "build_query",
    "message_dict",
    "verify_receipt",
]
# Reports (§21) and the prosecutor's supervision (§22), issue 15
__all__ += ["CsvExportInfo", "QueryRow", "QueryRowPage", "ReportFilter", "Resolution"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'clients' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
