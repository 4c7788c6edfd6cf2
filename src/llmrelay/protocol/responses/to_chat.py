"""From a Responses API request to the Chat Completions request every backend answers.

``instructions`` become a system message; input items become messages: ``message`` items with
their text parts (images and files as chat parts, for backends that take them),
``function_call`` items an assistant message's tool calls, ``function_call_output`` items tool
messages; ``reasoning`` items are left out (a chat backend cannot take them back). Function
tools, ``tool_choice``, ``parallel_tool_calls``, ``text.format``, ``max_output_tokens``,
``temperature``, ``top_p`` and ``user`` are mapped; ``reasoning`` and ``truncation`` are
accepted and left out. What the chat format cannot say (OpenAI's built-in tools, stored prompts,
item references) makes the request untranslatable: only a backend that speaks the Responses API
itself can answer it, any other refuses it with a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.responses.objects import input_items
from llmrelay.protocol.responses.request import ResponsesRequest
from llmrelay.protocol.translated import Translated, Untranslatable, add_options, translate

#: Responses content parts and the chat part each becomes
_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")
#: include values llmrelay fills (the rest are accepted and left empty)
LOGPROBS = "message.output_text.logprobs"


#: chat parameters named otherwise here: a pattern of the name's start, and its replacement
PARAMS = {
    r"response_format(\.json_schema)?": "text.format",
    r"max_tokens": "max_output_tokens",
    r"tools\[(\d+)\]\.function": r"tools[\1]",
}
NATIVE = "`responses: native`"


def to_chat(request: ResponsesRequest, context: list[dict[str, Any]]) -> Translated:
    """The chat request for a Responses request whose conversation so far is ``context`` (the
    items of the responses it follows)."""
    return translate(lambda sources: _chat_body(request, context, sources), PARAMS)


def _chat_body(
    request: ResponsesRequest, context: list[dict[str, Any]], sources: list[str]
) -> dict[str, Any]:
    if request.prompt is not None:
        raise Untranslatable("prompt", "a stored prompt", NATIVE)
    if request.conversation is not None:
        raise Untranslatable("conversation", "a stored conversation", NATIVE)
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
        sources.append("instructions")
    own = input_items(request)
    places = ["previous_response_id"] * len(context) + [f"input[{i}]" for i in range(len(own))]
    for item, place in zip([*context, *own], places, strict=True):
        _add_item(messages, item, place)
        sources += [place] * (len(messages) - len(sources))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    optional = {
        "max_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
        "parallel_tool_calls": request.parallel_tool_calls,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
    }
    add_options(body, optional, stream=request.stream)
    if request.tools:
        body["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    text_format = request.text.format if request.text is not None else None
    if text_format is not None and (response_format := _format(text_format)) is not None:
        body["response_format"] = response_format
    if LOGPROBS in (request.include or ()):
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs or 0
    return body


def _add_item(messages: list[dict[str, Any]], item: Any, place: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRequestError(
            f"Invalid value for '{place}': an item is an object.", param=place
        )
    kind = item.get("type", "message")
    if kind == "message":
        messages.append(_message(item, place))
    elif kind == "function_call":
        call = {
            "id": _text(item, "call_id", place),
            "type": "function",
            "function": {
                "name": _text(item, "name", place),
                "arguments": _text(item, "arguments", place),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        elif last is not None and last["role"] == "assistant":
            last["tool_calls"] = [call]
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        content = output if isinstance(output, str) else _joined_text(output, f"{place}.output")
        messages.append(
            {"role": "tool", "tool_call_id": _text(item, "call_id", place), "content": content}
        )
    elif kind != "reasoning":  # a chat backend cannot take reasoning back: left out
        raise Untranslatable(f"{place}.type", f"an input item of type '{kind}'", NATIVE)


def _message(item: dict[str, Any], place: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise InvalidRequestError(
            f"Invalid value for '{place}.role': one of user, system, developer, assistant.",
            param=f"{place}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"Invalid value for '{place}.content': a string or a list of parts.",
            param=f"{place}.content",
        )
    if role == "assistant":
        return {"role": role, "content": _joined_text(content, f"{place}.content")}
    return {
        "role": role,
        "content": [_part(p, f"{place}.content[{j}]") for j, p in enumerate(content)],
    }


def _part(part: Any, place: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _text(part, "text", place)}
    if kind == "input_image":
        if not part.get("image_url"):
            raise Untranslatable(place, "an image by file id", NATIVE)
        image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_id", "file_data", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    raise InvalidRequestError(f"Invalid value for '{place}.type': {kind!r}.", param=f"{place}.type")


def _joined_text(parts: Any, place: str) -> str:
    """The text of a list of parts (an assistant's words, a tool's output)."""
    if not isinstance(parts, list):
        raise InvalidRequestError(
            f"Invalid value for '{place}': a string or a list of parts.", param=place
        )
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            texts.append(_text(part, "text", f"{place}[{j}]"))
        elif kind == "refusal":
            texts.append(_text(part, "refusal", f"{place}[{j}]"))
        else:
            raise Untranslatable(f"{place}[{j}]", f"a part of type {kind!r} here", NATIVE)
    return "".join(texts)


def _tool(tool: Any, place: str) -> dict[str, Any]:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind == "function":
        function = {"name": _text(tool, "name", place)}
        for field in ("description", "parameters", "strict"):
            if tool.get(field) is not None:
                function[field] = tool[field]
        return {"type": "function", "function": function}
    if kind == "custom":
        custom = {k: tool[k] for k in ("name", "description", "format") if k in tool}
        return {"type": "custom", "custom": custom}
    raise Untranslatable(place, f"the built-in tool '{kind}'", NATIVE)


def _tool_choice(choice: str | dict[str, Any]) -> Any:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequestError(
                f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice"
            )
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": _text(choice, "name", "tool_choice")}}
    if kind == "custom":
        return {"type": "custom", "custom": {"name": _text(choice, "name", "tool_choice")}}
    if kind == "allowed_tools":
        tools = [_tool(t, f"tool_choice.tools[{i}]") for i, t in enumerate(choice.get("tools", []))]
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode"), "tools": tools},
        }
    raise Untranslatable("tool_choice", f"choosing the built-in tool '{kind}'", NATIVE)


def _format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(
        f"Invalid value for 'text.format.type': {kind!r}.", param="text.format.type"
    )


def _text(item: dict[str, Any], field: str, place: str) -> str:
    value = item.get(field)
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"Invalid value for '{place}.{field}': a string is required.", param=f"{place}.{field}"
        )
    return value
