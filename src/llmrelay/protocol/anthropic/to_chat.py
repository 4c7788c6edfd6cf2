"""From Anthropic's Messages API request to the Chat Completions request every backend answers.

``system`` becomes a system message; a user turn's ``text`` blocks its text, ``image`` blocks
image parts (for backends that take them), ``document`` blocks (PDF) file parts, and its
``tool_result`` blocks tool messages, before the rest of the turn; an assistant turn's
``tool_use`` blocks its tool calls. ``thinking`` blocks and ``cache_control`` marks are left out
(they are the Anthropic API's own), as are ``thinking`` and ``top_k``. Custom tools become
functions (``input_schema`` their parameters); ``tool_choice`` ``auto``, ``any``, ``tool`` and
``none`` map to ``auto``, ``required``, a named function and ``none``, and
``disable_parallel_tool_use`` to ``parallel_tool_calls: false``. Anthropic's server tools (web
search, code execution, ...) make the request untranslatable: only an Anthropic deployment can
answer it.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.anthropic.request import CountTokensRequest, MessagesRequest
from llmrelay.protocol.translated import Translated, Untranslatable, add_options, translate

NATIVE = "a `provider: anthropic` deployment"
#: chat parameters named otherwise here: a pattern of the name's start, and its replacement
PARAMS = {
    r"tools\[(\d+)\]\.function\.parameters": r"tools[\1].input_schema",
    r"tools\[(\d+)\]\.function": r"tools[\1]",
    r"stop": "stop_sequences",
}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_chat(request: MessagesRequest | CountTokensRequest) -> Translated:
    return translate(lambda sources: _chat_body(request, sources), PARAMS)


def _chat_body(request: MessagesRequest | CountTokensRequest, sources: list[str]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": _text_of(request.system, "system")})
        sources.append("system")
    for i, message in enumerate(request.messages):
        place = f"messages[{i}]"
        if message["role"] == "assistant":
            messages.append(_assistant(message["content"], place))
        else:
            messages += _user(message["content"], place)
        sources += [place] * (len(messages) - len(sources))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if isinstance(request, MessagesRequest):
        optional = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": request.stop_sequences or None,
            "user": (request.metadata or {}).get("user_id"),
        }
        add_options(body, optional, stream=request.stream)
    if request.tools:
        body["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(request.tools)]
        if request.tool_choice is not None:
            body.update(_tool_choice(request.tool_choice))
    return body


def _user(content: str | list[Any], place: str) -> list[dict[str, Any]]:
    """A user turn: its tool results as tool messages, then the rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"{place}.content[{j}]"
        kind = _kind(block, where)
        if kind == "tool_result":
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(block, "tool_use_id", where),
                    "content": _result_text(block.get("content", ""), where),
                }
            )
        elif kind == "text":
            parts.append({"type": "text", "text": _string(block, "text", where)})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _source_url(block, where)}})
        elif kind == "document":
            parts.append({"type": "file", "file": {"file_data": _source_url(block, where)}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise Untranslatable(where, f"a content block of type '{kind}'", NATIVE)
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: str | list[Any], place: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts, calls = [], []
    for j, block in enumerate(content):
        where = f"{place}.content[{j}]"
        kind = _kind(block, where)
        if kind == "text":
            texts.append(_string(block, "text", where))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input", {})).decode()
            function = {"name": _string(block, "name", where), "arguments": arguments}
            calls.append(
                {"id": _string(block, "id", where), "type": "function", "function": function}
            )
        elif kind not in ("thinking", "redacted_thinking"):
            raise Untranslatable(where, f"a content block of type '{kind}'", NATIVE)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, place: str) -> dict[str, Any]:
    kind = tool.get("type", "custom") if isinstance(tool, dict) else None
    if kind != "custom":
        raise Untranslatable(place, f"the server tool '{kind}'", NATIVE)
    function = {"name": _string(tool, "name", place)}
    if tool.get("description"):
        function["description"] = tool["description"]
    if "input_schema" in tool:
        function["parameters"] = tool["input_schema"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    mapped: dict[str, Any] = {}
    if kind == "tool":
        mapped["tool_choice"] = {
            "type": "function",
            "function": {"name": _string(choice, "name", "tool_choice")},
        }
    elif kind in _TOOL_CHOICES:
        mapped["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise InvalidRequestError(
            f"tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none', not {kind!r}",
            param="tool_choice.type",
        )
    if choice.get("disable_parallel_tool_use") and kind != "none":
        mapped["parallel_tool_calls"] = False
    return mapped


def _text_of(content: str | list[Any], place: str) -> str:
    """The text of a string or of text blocks (``system``, a tool result)."""
    if isinstance(content, str):
        return content
    texts = []
    for j, block in enumerate(content):
        where = f"{place}[{j}]" if place == "system" else f"{place}.content[{j}]"
        if _kind(block, where) != "text":
            raise Untranslatable(where, "a block that is not text here", NATIVE)
        texts.append(_string(block, "text", where))
    return "\n\n".join(texts) if place == "system" else "".join(texts)


def _result_text(content: Any, place: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{place}.content: a string or a list of blocks is required", param=f"{place}.content"
        )
    return _text_of(content, place)


def _source_url(block: dict[str, Any], place: str) -> str:
    """An image's or document's source as a URL (base64 data as a data: URL)."""
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        return f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
    if isinstance(source, dict) and source.get("type") == "url":
        return _string(source, "url", f"{place}.source")
    raise Untranslatable(f"{place}.source", "a source of this type", NATIVE)


def _kind(block: Any, place: str) -> str:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise InvalidRequestError(f"{place}.type: Field required", param=f"{place}.type")
    return kind


def _string(item: dict[str, Any], field: str, place: str) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{place}.{field}: a string is required", param=f"{place}.{field}"
        )
    return value
