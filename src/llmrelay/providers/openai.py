"""``OpenAIProvider``: relays to any OpenAI-compatible upstream.

Requests pass through as the client sent them (only ``model`` becomes the upstream's name, and
streams ask for usage); answers and stream chunks come back as the upstream sent them, chunk by
chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from llmrelay.config import OpenAIModelConfig
from llmrelay.protocol.request import ChatRequest, StreamOptions
from llmrelay.providers.base import Chunk, Provider
from llmrelay.providers.http import UpstreamHTTP, error_from_body


class OpenAIProvider(Provider):
    """One OpenAI-compatible deployment.

    >>> OpenAIProvider(OpenAIModelConfig(name="gpt-4o", base_url="https://api.openai.com/v1",
    ...                                  model="gpt-4o", api_key=Secret("sk-...")))
    """

    owned_by = "upstream"

    def __init__(self, config: OpenAIModelConfig) -> None:
        self.model_name = config.name
        self._config = config
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = UpstreamHTTP(
            name=config.name,
            url=f"{config.base_url}/chat/completions",
            headers=headers,
            timeouts=config.timeouts,
        )

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        response = await self._http.post(self._body(request, stream=False))
        return await self._http.json(response)  # type: ignore[no-any-return]

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self._http.post(self._body(request, stream=True))
        return self._chunks(response)

    async def _chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        async for chunk in self._http.data_lines(response):
            if chunk == "[DONE]":
                return
            if "error" in chunk:
                raise error_from_body(502, chunk, {})
            yield chunk
        raise self._http.broken()

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        # encoded straight from the validated struct: no intermediate dict on the hot path
        changes: dict[str, Any] = {"model": self._config.model}
        if stream and self._config.stream_usage:
            options = request.stream_options or StreamOptions()
            changes["stream_options"] = msgspec.structs.replace(options, include_usage=True)
        return msgspec.json.encode(msgspec.structs.replace(request, **changes))

    async def aclose(self) -> None:
        await self._http.aclose()
