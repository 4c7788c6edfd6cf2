"""The gateway pipeline: who calls, then which backend answers. Read it top to bottom."""

from __future__ import annotations

from typing import Any

from llmrelay.gateway.auth import KeyChecker
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import ChunkStream
from llmrelay.router.router import Router
from llmrelay.store.keys import KeyRecord


class Gateway:
    """Authenticates a request and hands it to the router."""

    def __init__(self, keys: KeyChecker, router: Router) -> None:
        self.keys = keys
        self.router = router

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The caller's stored key (None: a key from the config), or a 401."""
        return self.keys.authenticate(authorization)

    def authorize(self, caller: KeyRecord | None, model: str) -> None:
        """A 403 unless the caller may use ``model``."""
        self.keys.authorize(caller, model)

    def models_for(self, caller: KeyRecord | None) -> list[str]:
        return [m for m in self.router.model_names() if self.keys.may_use(caller, m)]

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        return await self.router.complete(request)

    async def stream(self, request: ChatRequest) -> ChunkStream:
        return await self.router.stream(request)
