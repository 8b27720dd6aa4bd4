"""Client library for sio-gateway: log in with MFA, sign queries on a token, verify answers.

:class:`GatewayClient` (blocking) and :class:`AsyncGatewayClient` (asyncio) have the same
surface. Every query is signed with the user's :class:`signing.api.Signer` and every
result is verified against the pinned gateway certificate before it is returned.
"""

from __future__ import annotations

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
    ResourceInfo,
    ServiceStatusInfo,
    build_query,
    verify_receipt,
)
from clients.aio import AsyncGatewayClient
from clients.biometric import BiometricMismatch, DeviceAssertion, SoftwareDeviceKey
from clients.errors import ClientError, ClientUsageError, ResultVerificationError
from clients.sync import GatewayClient

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
    "ResourceInfo",
    "ResultVerificationError",
    "ServiceStatusInfo",
    "SoftwareDeviceKey",
    "build_query",
    "verify_receipt",
]
