"""``OpenAIProvider``: relays to any OpenAI-compatible upstream.

Requests pass through as the client sent them (only ``model`` becomes the upstream's name,
streams ask for usage, and the deployment's ``params`` rules drop, rename or set fields);
answers and stream chunks come back as the upstream sent them, chunk by chunk.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp
import msgspec
import orjson

from llmrelay.config import OpenAIModelConfig
from llmrelay.errors import UpstreamError
from llmrelay.outcome import Outcome, Usage, response_usage
from llmrelay.protocol.events import DONE, data_payloads, frame
from llmrelay.protocol.request import ChatRequest, StreamOptions
from llmrelay.protocol.response import random_id
from llmrelay.providers.base import Call, Chunk, ChunkStream, Provider, StreamItem
from llmrelay.providers.counting import Prompted, chunk_deltas, counted_usage
from llmrelay.providers.http import UpstreamHTTP

#: the upstream's path of each API it is asked in that API, and the field that asks for output
_NATIVE: dict[str, tuple[str, str | None]] = {
    "responses": ("/responses", "max_output_tokens"),
    "completions": ("/completions", "max_tokens"),
    "embeddings": ("/embeddings", None),
}


class OpenAIProvider(Provider):
    """One OpenAI-compatible deployment.

    >>> OpenAIProvider(OpenAIModelConfig(name="gpt-4o", base_url="https://api.openai.com/v1",
    ...                                  model="gpt-4o", api_key=Secret("sk-...")))
    """

    owned_by = "upstream"

    def __init__(self, config: OpenAIModelConfig, *, secrets: Sequence[str] = ()) -> None:
        """``secrets``: what to keep out of the upstream's error messages."""
        self.model_name = config.name
        self._config = config
        self.output_cap = config.max_output_tokens
        native = {"embeddings", "completions"}
        self.native_apis = frozenset(
            native | {"responses"} if config.responses == "native" else native
        )
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = UpstreamHTTP(
            name=config.name,
            url=f"{config.base_url}/chat/completions",
            headers=headers,
            timeouts=config.timeouts,
            secrets=secrets,
        )

    async def complete(self, request: ChatRequest, outcome: Outcome) -> dict[str, Any]:
        response = await self._http.post(self._body(request, stream=False))
        answer = await self._http.json(response)
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream of {self.model_name} sent no valid answer.")
        choices = answer.get("choices") or []
        for choice in choices:
            # fields the spec requires that vLLM, llama.cpp and others leave out
            choice.setdefault("logprobs", None)
            if isinstance(choice.get("message"), dict):
                choice["message"].setdefault("refusal", None)
        outcome.served_by(answer.get("model"))
        outcome.usage = Usage.of(answer.get("usage"))
        if outcome.usage is None:
            messages = [choice.get("message") or {} for choice in choices]
            answer["usage"] = await counted_usage(request, messages)
            outcome.usage = Usage.of(answer["usage"], source="counted")
        return answer

    async def stream(self, request: ChatRequest, outcome: Outcome) -> ChunkStream:
        response = await self._http.post(self._body(request, stream=True))
        return self._chunks(request, response, outcome)

    async def _chunks(
        self, request: Prompted, response: aiohttp.ClientResponse, outcome: Outcome
    ) -> AsyncGenerator[StreamItem, None]:
        """The upstream's chunks (chat or legacy completions) as it framed them, each read
        passed on in one piece; only a chunk that carries usage or an error is decoded and
        passed on as an object."""
        plain_so_far: list[bytes] = []  # to count the usage from, if the upstream sends none
        has_usage = False
        async for payloads in self._http.data_blocks(response):
            plain: list[bytes] = []
            for data in payloads:
                if data == DONE:
                    if plain:
                        yield _framed(plain)
                    if not has_usage:
                        counted = await self._counted_usage_chunk(request, plain_so_far)
                        self._record(outcome, counted, "counted")
                        yield counted
                    return
                notable = b'"usage"' in data or b'"error"' in data
                chunk = self._http.loads(data) if notable else None
                if chunk is None or not (chunk.get("usage") or "error" in chunk):
                    plain.append(data)
                    if not has_usage:
                        plain_so_far.append(data)
                    continue
                if plain:
                    yield _framed(plain)
                    plain = []
                if "error" in chunk:
                    raise self._http.error_from_body(502, chunk)
                has_usage = True
                self._record(outcome, chunk, "reported")
                yield chunk
            if plain:
                yield _framed(plain)
        raise self._http.broken()

    async def relay(self, call: Call, outcome: Outcome) -> dict[str, Any] | ChunkStream:
        """A request of an API the upstream speaks (embeddings, legacy completions, the
        Responses API with ``responses: native``) as the client sent it: ``model`` the
        upstream's, the output asked for lowered to the deployment's cap, a completions stream
        asked for usage; its answer, or its stream as it comes."""
        path, cap_field = _NATIVE[call.api]
        body = orjson.loads(call.body)
        body["model"] = self._config.model
        asked = body.get(cap_field) if cap_field else None
        if self.output_cap is not None and isinstance(asked, int) and asked > self.output_cap:
            body[cap_field] = self.output_cap
        if call.api == "completions" and call.stream and self._config.stream_usage:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        response = await self._http.post(orjson.dumps(body), f"{self._config.base_url}{path}")
        if call.stream:
            if call.api == "responses":
                return self._native_events(response, outcome)
            return self._chunks(call.request, response, outcome)
        answer = await self._http.json(response)
        if not isinstance(answer, dict):
            raise UpstreamError(f"The upstream of {self.model_name} sent no valid answer.")
        if call.api == "responses":
            _record_response(outcome, answer)
            return answer
        outcome.served_by(answer.get("model"))
        outcome.usage = Usage.of(answer.get("usage"))
        if outcome.usage is None:
            texts = [{"content": c.get("text")} for c in answer.get("choices") or ()]
            answer["usage"] = await counted_usage(call.request, texts)
            outcome.usage = Usage.of(answer["usage"], source="counted")
        return answer

    async def _native_events(
        self, response: aiohttp.ClientResponse, outcome: Outcome
    ) -> AsyncGenerator[StreamItem, None]:
        """The upstream's events as they arrive; the one that ends the response (with usage)
        is also read, for the outcome."""
        rest = b""
        async for block in self._http.raw_blocks(response):
            *lines, rest = (rest + block).split(b"\n")
            for data in data_payloads(lines):
                if b'"usage"' in data and b'"response"' in data:
                    event = self._http.loads(data)
                    if isinstance(event, dict) and isinstance(event.get("response"), dict):
                        _record_response(outcome, event["response"])
            yield block

    async def relay_request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        return await self._http.relay(method, f"{self._config.base_url}{path}", body, headers)

    @staticmethod
    def _record(outcome: Outcome, chunk: Chunk, source: str) -> None:
        outcome.served_by(chunk.get("model"))
        outcome.usage = Usage.of(chunk.get("usage"), source)

    async def _counted_usage_chunk(self, request: Prompted, payloads: list[bytes]) -> Chunk:
        chunks = [self._http.loads(data) for data in payloads]
        first = chunks[0] if chunks else {}
        return {
            "id": first.get("id") or random_id("chatcmpl-"),
            "object": first.get("object") or "chat.completion.chunk",
            "created": first.get("created") or int(time.time()),
            "model": first.get("model") or self._config.model,
            "choices": [],
            "usage": await counted_usage(request, chunk_deltas(chunks)),
        }

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        # encoded straight from the validated struct: no intermediate dict on the hot path
        changes: dict[str, Any] = {"model": self._config.model}
        cap = self.output_cap
        if cap is not None:  # what the client asked for, lowered to what this deployment takes
            for field in ("max_tokens", "max_completion_tokens"):
                if (asked := getattr(request, field)) is not None and asked > cap:
                    changes[field] = cap
        if stream and self._config.stream_usage:
            options = request.stream_options or StreamOptions()
            changes["stream_options"] = msgspec.structs.replace(options, include_usage=True)
        request = msgspec.structs.replace(request, **changes)
        if self._config.params:
            return orjson.dumps(self._config.params.apply(msgspec.to_builtins(request)))
        return msgspec.json.encode(request)

    async def aclose(self) -> None:
        await self._http.aclose()


def _record_response(outcome: Outcome, response: dict[str, Any]) -> None:
    """What a Responses API response says of its model and usage."""
    outcome.served_by(response.get("model"))
    if (used := response_usage(response.get("usage"))) is not None:
        outcome.usage = used


def _framed(payloads: list[bytes]) -> bytes:
    return b"".join(map(frame, payloads))
