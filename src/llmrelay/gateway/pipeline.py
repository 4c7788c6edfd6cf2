"""The gateway pipeline: who calls, may they, then which backend answers, and what it cost.

Read it top to bottom: ``authenticate`` (401), ``authorize`` (403), then ``complete`` or
``stream``, which meter the request into the ledger however it ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llmrelay.gateway.auth import KeyChecker
from llmrelay.gateway.metering import Meter, MeteredStream
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import ChunkStream
from llmrelay.router.router import Router
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger


class Gateway:
    def __init__(self, keys: KeyChecker, router: Router, ledger: Ledger) -> None:
        self.keys = keys
        self.router = router
        self.ledger = ledger

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The caller's stored key (None: a key from the config), or a 401."""
        return self.keys.authenticate(authorization)

    def authorize(self, caller: KeyRecord | None, model: str) -> None:
        """A 403 unless the caller may use ``model``."""
        self.keys.authorize(caller, model)

    def models_for(self, caller: KeyRecord | None) -> list[str]:
        return [m for m in self.router.model_names() if self.keys.may_use(caller, m)]

    async def complete(
        self, caller: KeyRecord | None, request: ChatRequest, request_id: str
    ) -> dict[str, Any]:
        meter = self._meter(caller, request, request_id)
        try:
            result = await self.router.complete(request)
        except asyncio.CancelledError:  # the client went away
            await meter.finish(disconnected=True)
            raise
        except Exception as exc:
            await meter.finish(failure=exc)
            raise
        await meter.finish(usage=result.get("usage"), model=result.get("model"))
        return result

    async def stream(
        self, caller: KeyRecord | None, request: ChatRequest, request_id: str
    ) -> ChunkStream:
        meter = self._meter(caller, request, request_id)
        try:
            chunks = await self.router.stream(request)
        except Exception as exc:
            await meter.finish(failure=exc)
            raise
        return MeteredStream(chunks, meter)

    def _meter(self, caller: KeyRecord | None, request: ChatRequest, request_id: str) -> Meter:
        key_id = caller.id if caller else None
        return Meter(self.ledger, request, key_id=key_id, request_id=request_id)
