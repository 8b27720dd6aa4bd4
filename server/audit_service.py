"""AuditService: signed checkpoints and Merkle proofs of the audit log (R11, R12).

Backed by ``audit.AuditLog``. Only authenticated callers (a live session, re-checked like
every other call) may ask; the proofs reveal hashes only, never records. Without an
``AuditLog`` (the JSONL development sink) the calls are ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio

from server.auth import Gateway
from server.errors import NotFound, NotImplementedYet
from server.gen.siogw.v1 import audit_pb2, audit_pb2_grpc
from siogw.errors import AuditError, InputError


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """See the module docstring."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def _log(self, context: aio.ServicerContext) -> Any:
        await self.gw.authenticate(context)
        if self.gw.audit_log is None:
            raise NotImplementedYet("this gateway's audit sink has no Merkle log")
        return self.gw.audit_log

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: aio.ServicerContext
    ) -> audit_pb2.Checkpoint:
        log = await self._log(context)
        signed = await asyncio.to_thread(log.checkpoint)
        key_id = ""
        for line in signed.checkpoint.extensions:
            if line.startswith("key "):
                key_id = line[4:]
        return audit_pb2.Checkpoint(
            signed_checkpoint=signed.note,
            tree_size=signed.checkpoint.size,
            root_hash=signed.checkpoint.root_hash,
            key_id=key_id,
        )

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: aio.ServicerContext
    ) -> audit_pb2.InclusionProof:
        log = await self._log(context)
        size = request.tree_size or log.tree_size
        if request.seq >= size:
            raise NotFound(f"no record {request.seq} in a tree of size {size}")
        try:
            proof = log.inclusion_proof(request.seq, size)
            leaf = log.leaf_hash(request.seq)
        except AuditError as exc:
            raise InputError(exc.diagnostics()) from exc
        return audit_pb2.InclusionProof(
            leaf_index=proof.first, tree_size=proof.tree_size, leaf_hash=leaf,
            hashes=list(proof.hashes),
        )

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: aio.ServicerContext
    ) -> audit_pb2.ConsistencyProof:
        log = await self._log(context)
        second = request.second or log.tree_size
        if request.first > second:
            raise InputError(f"first ({request.first}) is beyond second ({second})")
        try:
            proof = log.consistency_proof(request.first, second)
        except AuditError as exc:
            raise InputError(exc.diagnostics()) from exc
        return audit_pb2.ConsistencyProof(
            first=proof.first, second=proof.tree_size, hashes=list(proof.hashes)
        )
