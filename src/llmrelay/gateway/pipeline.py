"""The gateway pipeline: who calls, then which backend answers. Read it top to bottom."""

from __future__ import annotations

from typing import Any

from llmrelay.gateway.auth import KeyChecker
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import ChunkStream
from llmrelay.router.router import Router


class Gateway:
    """Authenticates a request and hands it to the router."""

    def __init__(self, keys: KeyChecker, router: Router) -> None:
        self.keys = keys
        self.router = router

    def authenticate(self, authorization: str | None) -> str:
        return self.keys.authenticate(authorization)

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        return await self.router.complete(request)

    async def stream(self, request: ChatRequest) -> ChunkStream:
        return await self.router.stream(request)
