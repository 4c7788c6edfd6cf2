"""``LocalProvider``: the built-in llama.cpp engine as a provider like any other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from llmrelay.engine.events import Finished, TextDelta
from llmrelay.engine.local import EngineError, LocalEngine
from llmrelay.engine.toolcalls import ToolCallReader
from llmrelay.errors import LLMRelayError
from llmrelay.outcome import Outcome, Usage
from llmrelay.protocol.accumulate import MessageBuilder
from llmrelay.protocol.completions import CompletionHeader
from llmrelay.protocol.request import ChatRequest
from llmrelay.protocol.response import ResponseHeader, chunk_choice, usage
from llmrelay.providers.base import Call, Chunk, ChunkStream, Provider
from llmrelay.providers.local_completions import (
    TextCompletion,
    complete_text,
    plan_completion,
    stream_text,
)
from llmrelay.providers.local_request import EnginePlan, count_prompt, plan_request


class LocalProvider(Provider):
    """Answers from a GGUF loaded into this process.

    >>> provider = LocalProvider("smollm2-135m-instruct", LocalEngine(builtin_model_path()))
    """

    owned_by = "llmrelay-local"
    native_apis = frozenset({"completions"})  # legacy completions: a raw prompt

    def __init__(
        self, model_name: str, engine: LocalEngine, *, max_output_tokens: int = 1024
    ) -> None:
        self.model_name = model_name
        self.engine = engine
        self.max_output_tokens = max_output_tokens

    def _header(self) -> ResponseHeader:
        return ResponseHeader(
            model=self.model_name, system_fingerprint=self.engine.loaded.fingerprint
        )

    async def complete(self, request: ChatRequest, outcome: Outcome) -> dict[str, Any]:
        plan = plan_request(request, self.engine, self.model_name, self.max_output_tokens)
        header = self._header()
        readers = [ToolCallReader(plan.tool_mode, plan.tool_names) for _ in range(plan.n)]
        builders = [MessageBuilder() for _ in range(plan.n)]
        finish: dict[int, str] = {}
        generated = [0] * plan.n  # tokens, per choice
        cached = 0
        try:
            async for event in self._events(plan):
                if isinstance(event, TextDelta):
                    for delta in readers[event.index].feed(event.text):
                        builders[event.index].add(delta)
                    if event.logprobs is not None:
                        builders[event.index].add({}, event.logprobs)
                    generated[event.index] = event.tokens
                elif isinstance(event, Finished):
                    for delta in readers[event.index].finish(event.reason):
                        builders[event.index].add(delta)
                    finish[event.index] = _finish_reason(event, readers[event.index])
                    generated[event.index] = event.completion_tokens
                    cached = event.cached_tokens
        except asyncio.CancelledError:
            self._cut_short(plan, generated, outcome)
            raise
        choices = [
            {
                "index": i,
                "message": builders[i].message(),
                "logprobs": _logprobs(plan, builders[i].logprobs),
                "finish_reason": finish[i],
            }
            for i in range(plan.n)
        ]
        self._answered(outcome, Usage(len(plan.prompt), sum(generated), cached_tokens=cached))
        return header.completion(choices, usage(len(plan.prompt), sum(generated), cached))

    async def stream(self, request: ChatRequest, outcome: Outcome) -> ChunkStream:
        plan = plan_request(request, self.engine, self.model_name, self.max_output_tokens)
        return self._chunks(plan, self._header(), outcome)

    async def _chunks(
        self, plan: EnginePlan, header: ResponseHeader, outcome: Outcome
    ) -> AsyncGenerator[Chunk, None]:
        readers = [ToolCallReader(plan.tool_mode, plan.tool_names) for _ in range(plan.n)]
        content = None if plan.tool_mode == "call" else ""
        first = {"role": "assistant", "content": content, "refusal": None}
        yield header.chunk(
            [chunk_choice(i, first, None, _first_logprobs(plan)) for i in range(plan.n)]
        )
        generated = [0] * plan.n  # tokens, per choice
        cached = 0
        try:
            async for event in self._events(plan):
                if isinstance(event, TextDelta):
                    generated[event.index] = event.tokens
                    deltas = readers[event.index].feed(event.text)
                    logprobs = event.logprobs
                    for delta in deltas:
                        yield header.chunk([chunk_choice(event.index, delta, None, logprobs)])
                        logprobs = None
                elif isinstance(event, Finished):
                    generated[event.index] = event.completion_tokens
                    for delta in readers[event.index].finish(event.reason):
                        yield header.chunk([chunk_choice(event.index, delta)])
                    reason = _finish_reason(event, readers[event.index])
                    yield header.chunk([chunk_choice(event.index, {}, reason)])
                    cached = event.cached_tokens
        except (GeneratorExit, asyncio.CancelledError):  # closed or cancelled: the client left
            self._cut_short(plan, generated, outcome)
            raise
        self._answered(outcome, Usage(len(plan.prompt), sum(generated), cached_tokens=cached))
        yield header.chunk([], usage=usage(len(plan.prompt), sum(generated), cached))

    async def relay(self, call: Call, outcome: Outcome) -> dict[str, Any] | ChunkStream:
        """A legacy completion (``/v1/completions``): the prompt as it is, no chat template."""
        plan = plan_completion(call.request, self.engine, self.model_name)
        header = CompletionHeader(self.model_name, self.engine.loaded.fingerprint)
        completion = TextCompletion(self.engine, plan, header)
        if call.stream:
            return stream_text(completion, outcome)
        return await complete_text(completion, outcome)

    async def _events(self, plan: EnginePlan) -> AsyncIterator[TextDelta | Finished]:
        try:
            async for event in self.engine.generate(plan.prompt, plan.n, plan.params):
                yield event  # type: ignore[misc]
        except EngineError as exc:
            raise LLMRelayError(str(exc)) from exc

    async def prompt_tokens(self, request: ChatRequest) -> int:
        return count_prompt(request, self.engine, self.model_name)

    def _answered(self, outcome: Outcome, used: Usage) -> None:
        outcome.served_by(self.model_name)
        outcome.usage = used

    def _cut_short(self, plan: EnginePlan, generated: list[int], outcome: Outcome) -> None:
        """An answer whose client left is billed for the prompt read and the tokens made so
        far; nothing for one still waiting for a slot, whose prompt was not read."""
        if any(generated):
            self._answered(outcome, Usage(len(plan.prompt), sum(generated)))

    def status(self) -> dict[str, Any]:
        return {"sequences": self.engine.load()}

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.close)


def _finish_reason(event: Finished, reader: ToolCallReader) -> str:
    return "tool_calls" if reader.called and event.reason == "stop" else event.reason


def _logprobs(plan: EnginePlan, content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not plan.params.logprobs:
        return None
    return {"content": content or [], "refusal": None}


def _first_logprobs(plan: EnginePlan) -> list[dict[str, Any]] | None:
    return [] if plan.params.logprobs else None
