"""Anthropic's Messages API objects, built from a chat answer: the ``message``, its content
blocks, its ``usage``; and its errors' shape."""

from __future__ import annotations

from typing import Any

import orjson

from llmrelay.errors import LLMRelayError
from llmrelay.protocol.ids import random_text

#: chat finish reasons as the Messages API's stop reasons
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
#: the Messages API's error type of each status
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def new_id(prefix: str = "msg_") -> str:
    return prefix + random_text(24)


def message_object(completion: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A chat completion's first choice as a Messages API ``message``."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if text := message.get("content") or message.get("refusal"):
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            tool_use_block(call.get("id") or new_id("toolu_"), function.get("name", ""))
            | {"input": tool_input(function.get("arguments") or "")}
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": completion.get("model", ""),
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "", "end_turn"),
        "stop_sequence": None,
        "usage": usage_object(completion.get("usage")),
    }


def tool_use_block(call_id: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": {}}


def tool_input(arguments: str) -> Any:
    """A tool call's arguments as the input object (what is no JSON object kept as its text)."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def usage_object(usage: object) -> dict[str, Any]:
    """Chat Completions' usage as the Messages API counts it: its ``input_tokens`` leave out
    the prompt tokens read from the cache."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    cached = _count((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
    return {
        "input_tokens": max(0, prompt - cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion,
    }


def error_body(error: LLMRelayError | dict[str, Any]) -> dict[str, Any]:
    """An error in the Messages API's shape (from llmrelay's error, or OpenAI's body of one)."""
    if isinstance(error, LLMRelayError):
        kind = ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "")
        return {
            "type": "error",
            "error": {"type": kind or "invalid_request_error", "message": error.message},
        }
    detail = error.get("error") or {}
    return {
        "type": "error",
        "error": {"type": "api_error", "message": detail.get("message") or "The request failed."},
    }


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0
