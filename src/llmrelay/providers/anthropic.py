"""``AnthropicProvider``: relays to Anthropic's Messages API: a chat request in OpenAI's wire
format both ways, or a Messages API request as the client sent it (``relay``), so that prompt
caching, thinking and betas work as they do at Anthropic."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from llmrelay.config import AnthropicModelConfig
from llmrelay.errors import UpstreamError
from llmrelay.outcome import Outcome
from llmrelay.protocol.events import data_payloads
from llmrelay.protocol.request import ChatRequest
from llmrelay.protocol.response import ResponseHeader
from llmrelay.providers.anthropic_messages import (
    StreamTranslator,
    completion,
    messages_body,
    usage_of,
)
from llmrelay.providers.base import Call, Chunk, ChunkStream, Provider, StreamItem
from llmrelay.providers.http import UpstreamHTTP

API_VERSION = "2023-06-01"
#: the client's headers a request passed through takes along
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")


class AnthropicProvider(Provider):
    """One Anthropic deployment."""

    owned_by = "anthropic"
    native_apis = frozenset({"messages"})

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

    async def relay(self, call: Call, outcome: Outcome) -> dict[str, Any] | ChunkStream:
        """A Messages API request as the client sent it (``model`` the upstream's, its
        ``max_tokens`` lowered to the deployment's cap), with its ``anthropic-*`` headers."""
        body = orjson.loads(call.body)
        body["model"] = self._config.model
        body["max_tokens"] = self.output_tokens(body.get("max_tokens"))
        headers = {h: call.headers[h] for h in PASSED_HEADERS if h in call.headers}
        response = await self._http.post(orjson.dumps(body), headers=headers)
        if not call.stream:
            message = await self._http.json(response)
            if not isinstance(message, dict):
                raise UpstreamError(f"The upstream of {self.model_name} sent no valid answer.")
            outcome.served_by(message.get("model"))
            outcome.usage = usage_of(message.get("usage"))
            return message
        return self._native_events(response, outcome)

    async def _native_events(
        self, response: aiohttp.ClientResponse, outcome: Outcome
    ) -> AsyncGenerator[StreamItem, None]:
        """The upstream's events as they arrive; those with usage are also read, for the
        outcome."""
        spent: dict[str, Any] = {}
        rest = b""
        async for block in self._http.raw_blocks(response):
            *lines, rest = (rest + block).split(b"\n")
            for data in data_payloads(lines):
                if b'"usage"' in data:
                    event = self._http.loads(data)
                    if isinstance(event, dict):
                        message = event.get("message")
                        usage = message.get("usage") if isinstance(message, dict) else None
                        spent.update(usage or event.get("usage") or {})
                        outcome.served_by(
                            message.get("model") if isinstance(message, dict) else None
                        )
                        outcome.usage = usage_of(spent)
            yield block

    async def relay_request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        if body is not None:  # counting tokens: of the upstream's model
            payload = orjson.loads(body)
            payload["model"] = self._config.model
            body = orjson.dumps(payload)
        passed = {h: headers[h] for h in PASSED_HEADERS if h in headers}
        return await self._http.relay(method, f"{self._config.base_url}{path}", body, passed)

    def _body(self, request: ChatRequest) -> bytes:
        max_tokens = self.output_tokens(request.completion_limit)
        return orjson.dumps(messages_body(request, self._config.model, max_tokens))

    def _header(self, model: str | None) -> ResponseHeader:
        return ResponseHeader(model=model or self._config.model, system_fingerprint="")

    async def aclose(self) -> None:
        await self._http.aclose()
