"""Usage for answers whose upstream reported none, counted with the built-in tokenizer: an
estimate, recorded as ``counted`` (not ``reported``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from llmrelay.protocol.completions import CompletionsRequest
from llmrelay.protocol.embeddings import EmbeddingsRequest
from llmrelay.protocol.request import ChatRequest

#: a request whose prompt can be counted
Prompted = ChatRequest | CompletionsRequest | EmbeddingsRequest | None


async def counted_usage(request: Prompted, answers: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``answers``: the messages of a completion, or the deltas of a stream; the prompt is
    ``request``'s (none without one: a request passed through natively)."""
    from llmrelay.engine.tokens import count_tokens  # llama.cpp: loaded on the first count

    prompt = msgspec.to_builtins(_prompt(request))
    prompt_tokens, completion_tokens = await count_tokens(
        "\n".join(_strings(prompt)), "".join(said(answer) for answer in answers)
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _prompt(request: Prompted) -> Any:
    if isinstance(request, ChatRequest):
        return [request.messages, request.tools or []]
    if isinstance(request, CompletionsRequest):
        return request.prompt
    return request.input if request else []  # token arrays count nothing: an estimate


def chunk_deltas(chunks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deltas of stream chunks (a legacy completion's text as content), every choice's,
    in order."""
    return [
        choice.get("delta") or {"content": choice.get("text")}
        for c in chunks
        for choice in c.get("choices") or ()
    ]


def said(message: dict[str, Any]) -> str:
    """The generated text of a message or delta: content, refusal, tool names and arguments."""
    texts = [message[k] for k in ("content", "refusal") if isinstance(message.get(k), str)]
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        texts += [v for v in (function.get("name"), function.get("arguments")) if v]
    return "".join(texts)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
