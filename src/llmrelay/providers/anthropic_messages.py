"""Translating between OpenAI's Chat Completions and Anthropic's Messages API.

Requests: system and developer messages become ``system``; tool calls become ``tool_use`` blocks and
tool results ``tool_result`` blocks of a user turn; consecutive turns of one role are merged, as the
Messages API wants them alternating; ``tools``, ``tool_choice``, ``stop``, ``max_tokens``,
``temperature``, ``top_p`` are mapped. Answers and stream events come back as OpenAI objects.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmrelay.errors import UnsupportedParameterError
from llmrelay.outcome import Usage
from llmrelay.protocol.messages import (
    AssistantMessage,
    DeveloperMessage,
    FunctionMessage,
    SystemMessage,
    ToolMessage,
    text_of,
)
from llmrelay.protocol.request import ChatRequest, FunctionTool, JsonSchemaFormat, NamedToolChoice
from llmrelay.protocol.response import ResponseHeader, chunk_choice, usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def messages_body(request: ChatRequest, model: str, max_tokens: int) -> dict[str, Any]:
    """The Messages API body for a chat request, answering at most ``max_tokens``; what it
    cannot say is refused with a 400."""
    _refuse(request)
    system = [
        text_of(m.content)
        for m in request.messages
        if isinstance(m, (SystemMessage, DeveloperMessage))
    ]
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if isinstance(message, (SystemMessage, DeveloperMessage)):
            continue
        role, blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": max_tokens,
    }
    if system:
        body["system"] = "\n\n".join(system)
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop_sequences": request.stop_list or None,
        "stream": request.stream or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    _add_tools(request, body)
    return body


def _refuse(request: ChatRequest) -> None:
    unsupported = {
        "n": (request.n or 1) > 1,
        "logprobs": bool(request.logprobs),
        "response_format": isinstance(request.response_format, JsonSchemaFormat),
        "logit_bias": bool(request.logit_bias),
    }
    for param, used in unsupported.items():
        if used:
            raise UnsupportedParameterError(
                f"Unsupported parameter: '{param}' is not supported by this model's upstream "
                "(Anthropic Messages API).",
                param=param,
            )


def _blocks(message: Any) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, (ToolMessage, FunctionMessage)):
        tool_id = getattr(message, "tool_call_id", None) or getattr(message, "name", "")
        result = {
            "type": "tool_result",
            "tool_use_id": tool_id,
            "content": text_of(message.content),
        }
        return "user", [result]
    blocks: list[dict[str, Any]] = []
    if text := text_of(message.content):
        blocks.append({"type": "text", "text": text})
    if isinstance(message, AssistantMessage):
        for call in message.tool_calls or ():
            arguments = orjson.loads(call.function.arguments or "{}")
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
            )
        return "assistant", blocks
    return "user", blocks


def _add_tools(request: ChatRequest, body: dict[str, Any]) -> None:
    functions = [t.function for t in request.tools or () if isinstance(t, FunctionTool)]
    if not functions:
        return
    body["tools"] = [
        {
            "name": f.name,
            "description": f.description or "",
            "input_schema": f.parameters or {"type": "object", "properties": {}},
        }
        for f in functions
    ]
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        mapped: dict[str, Any] = {"type": "tool", "name": choice.function.name}
    else:
        mapped = {"type": {"required": "any", "none": "none"}.get(str(choice), "auto")}
    if request.parallel_tool_calls is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    body["tool_choice"] = mapped


def completion(message: dict[str, Any], header: ResponseHeader) -> dict[str, Any]:
    """A Messages API answer as a ``chat.completion``."""
    text = "".join(b["text"] for b in message["content"] if b["type"] == "text")
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()},
        }
        for b in message["content"]
        if b["type"] == "tool_use"
    ]
    answer: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if calls else ""),
        "refusal": None,
        "annotations": [],
    }
    if calls:
        answer["tool_calls"] = calls
    finish = FINISH_REASONS.get(message.get("stop_reason") or "", "stop")
    choice = {"index": 0, "message": answer, "logprobs": None, "finish_reason": finish}
    return header.completion([choice], chat_usage(usage_of(message.get("usage"))))


def usage_of(spent: object) -> Usage:
    """The Messages API's usage: its ``input_tokens`` leave out the prompt tokens read from
    or written to the cache, which Chat Completions counts in ``prompt_tokens``."""
    spent = spent if isinstance(spent, dict) else {}
    read, written = (
        _count(spent.get("cache_read_input_tokens")),
        _count(spent.get("cache_creation_input_tokens")),
    )
    return Usage(
        _count(spent.get("input_tokens")) + read + written,
        _count(spent.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=written,
    )


def chat_usage(used: Usage) -> dict[str, Any]:
    return usage(used.prompt_tokens, used.completion_tokens, used.cached_tokens)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


class StreamTranslator:
    """Turns Messages API stream events into ``chat.completion.chunk`` objects, one by one."""

    def __init__(self, header: ResponseHeader) -> None:
        self._header = header
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._spent: dict[str, Any] = {}  # the usage so far: message_start's, message_delta's
        self.finished = False

    @property
    def usage(self) -> Usage:
        return usage_of(self._spent)

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            self._spent.update(event["message"].get("usage") or {})
            first = {"role": "assistant", "content": "", "refusal": None}
            return [self._header.chunk([chunk_choice(0, first)])]
        if kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            index = self._tool_index.setdefault(event["index"], len(self._tool_index))
            call = {
                "index": index,
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": ""},
            }
            return [self._delta({"tool_calls": [call]})]
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                return [self._delta({"content": delta["text"]})]
            if delta["type"] == "input_json_delta" and delta["partial_json"]:
                index = self._tool_index[event["index"]]
                fragment = {"index": index, "function": {"arguments": delta["partial_json"]}}
                return [self._delta({"tool_calls": [fragment]})]
        if kind == "message_delta":
            self._spent.update(event.get("usage") or {})
            finish = FINISH_REASONS.get(event["delta"].get("stop_reason") or "", "stop")
            return [self._header.chunk([chunk_choice(0, {}, finish)])]
        if kind == "message_stop":
            self.finished = True
            return [self._header.chunk([], usage=chat_usage(self.usage))]
        return []

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return self._header.chunk([chunk_choice(0, delta)])
