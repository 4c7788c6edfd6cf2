"""``AnthropicProvider``: relays to Anthropic's Messages API, in OpenAI's wire format both ways."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiohttp
import orjson

from llmrelay.config import AnthropicModelConfig
from llmrelay.outcome import Outcome
from llmrelay.protocol.request import ChatRequest
from llmrelay.protocol.response import ResponseHeader
from llmrelay.providers.anthropic_messages import (
    StreamTranslator,
    completion,
    messages_body,
    usage_of,
)
from llmrelay.providers.base import Chunk, ChunkStream, Provider
from llmrelay.providers.http import UpstreamHTTP

API_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    """One Anthropic deployment."""

    owned_by = "anthropic"

    def __init__(self, config: AnthropicModelConfig, *, secrets: Sequence[str] = ()) -> None:
        """``secrets``: what to keep out of the upstream's error messages."""
        self.model_name = config.name
        self._config = config
        self.max_output_tokens = config.max_tokens
        self.output_cap = config.max_output_tokens
        headers = {"anthropic-version": API_VERSION}
        if config.api_key:
            headers["x-api-key"] = str(config.api_key)
        self._http = UpstreamHTTP(
            name=config.name,
            url=f"{config.base_url}/v1/messages",
            headers=headers,
            timeouts=config.timeouts,
            secrets=secrets,
        )

    async def complete(self, request: ChatRequest, outcome: Outcome) -> dict[str, Any]:
        response = await self._http.post(self._body(request))
        message = await self._http.json(response)
        outcome.served_by(message.get("model"))
        outcome.usage = usage_of(message.get("usage"))
        return completion(message, self._header(message.get("model")))

    async def stream(self, request: ChatRequest, outcome: Outcome) -> ChunkStream:
        response = await self._http.post(self._body(request))
        return self._chunks(response, outcome)

    async def _chunks(
        self, response: aiohttp.ClientResponse, outcome: Outcome
    ) -> AsyncGenerator[Chunk, None]:
        translator: StreamTranslator | None = None
        async for event in self._http.data_lines(response):
            if event.get("type") == "error":
                raise self._http.error_from_body(502, event)
            if translator is None:
                model = event.get("message", {}).get("model")
                outcome.served_by(model)
                translator = StreamTranslator(self._header(model))
            chunks = translator.chunks(event)
            if translator.finished:
                outcome.usage = translator.usage
            for chunk in chunks:
                yield chunk
            if translator.finished:
                return
        raise self._http.broken()

    def _body(self, request: ChatRequest) -> bytes:
        max_tokens = self.output_tokens(request.completion_limit)
        return orjson.dumps(messages_body(request, self._config.model, max_tokens))

    def _header(self, model: str | None) -> ResponseHeader:
        return ResponseHeader(model=model or self._config.model, system_fingerprint="")

    async def aclose(self) -> None:
        await self._http.aclose()
