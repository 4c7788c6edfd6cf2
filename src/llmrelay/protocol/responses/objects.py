"""The Responses API's objects, built from a chat answer: the ``response``, its output items
(``message`` with ``output_text`` parts, ``function_call``), its ``usage``."""

from __future__ import annotations

import time
from typing import Any

from llmrelay.protocol.ids import random_hex
from llmrelay.protocol.responses.request import ResponsesRequest

#: chat finish reasons that leave a response incomplete, and the reason it then gives
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id as OpenAI's look: ``resp_``, ``msg_``, ``fc_`` and 48 hex digits, the first eight
    the time in seconds: time-ordered, so that a stored response's id lands at the end of the
    store's index, not all over it."""
    return f"{prefix}{int(time.time()):08x}{random_hex(40)}"


def response_object(
    request: ResponsesRequest,
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object: what was asked, echoed as OpenAI echoes it, and what came of it."""
    text = request.text
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.prompt_cache_key,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": request.safety_identifier,
        "service_tier": "default",
        "store": request.stored,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": {
            "format": (text.format if text and text.format else None) or {"type": "text"},
            "verbosity": (text.verbosity if text else None) or "medium",
        },
        "tool_choice": "auto" if request.tool_choice is None else request.tool_choice,
        "tools": request.tools or [],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": request.truncation or "disabled",
        # (null where the schema says object or string: left out, as the SDKs take it)
        **({"usage": usage} if usage is not None else {}),
        **({"user": request.user} if request.user is not None else {}),
        "metadata": request.metadata or {},
    }


def usage_object(usage: object) -> dict[str, Any] | None:
    """Chat Completions' usage as the Responses API counts it."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _count(prompt_details.get("cached_tokens")),
            "cache_write_tokens": _count(prompt_details.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _count(completion_details.get("reasoning_tokens"))
        },
        "total_tokens": prompt + completion,
    }


def message_item(
    item_id: str, text: str, status: str, logprobs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": [text_part(text, logprobs)],
        "role": "assistant",
    }


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": logprobs or [], "text": text}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def output_of(completion: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    """A chat completion's first choice as output items; the response's status, and why it is
    incomplete (if it is)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    output = []
    text = message.get("content") or message.get("refusal") or ""
    logprobs = (choice.get("logprobs") or {}).get("content")
    if text or not message.get("tool_calls"):
        output.append(message_item(new_id("msg_"), text, "completed", logprobs_of(logprobs)))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc_"),
                call.get("id") or new_id("call_"),
                function.get("name", ""),
                function.get("arguments", ""),
                "completed",
            )
        )
    reason = INCOMPLETE.get(choice.get("finish_reason") or "")
    return output, "incomplete" if reason else "completed", reason


def logprobs_of(chat_logprobs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Chat Completions' token logprobs in the Responses API's shape (the same fields)."""
    return [
        {
            "token": entry.get("token", ""),
            "logprob": entry.get("logprob", 0.0),
            "bytes": entry.get("bytes") or [],
            "top_logprobs": [
                {
                    "token": t.get("token", ""),
                    "logprob": t.get("logprob", 0.0),
                    "bytes": t.get("bytes") or [],
                }
                for t in entry.get("top_logprobs") or ()
            ],
        }
        for entry in chat_logprobs or ()
    ]


def input_items(request: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's own input as items (a string is one user message)."""
    if isinstance(request.input, str):
        return (
            [{"type": "message", "role": "user", "content": request.input}] if request.input else []
        )
    return list(request.input)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def stored_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as the API lists them back (``input_items``): each with an id and a status,
    a message's text as parts."""
    stored = []
    for item in items:
        kind = item.get("type", "message")
        prefix = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_"}
        entry = {**item, "type": kind, "id": item.get("id") or new_id(prefix.get(kind, "item_"))}
        if kind == "message" and isinstance(item.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            entry["content"] = [{"type": part, "text": item["content"]}]
        if kind in prefix:
            entry.setdefault("status", "completed")
        stored.append(entry)
    return stored
