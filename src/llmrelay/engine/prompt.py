"""The prompt: the request's messages rendered with the chat template stored in the GGUF.

Templates that know nothing of tools (SmolLM2's is plain ChatML) get the tools described in
the system message, earlier tool calls written as ``<tool_call>`` blocks and tool results as
``<tool_response>`` blocks, in the widely used Hermes style.
"""

from __future__ import annotations

from typing import Any

import jinja2
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmrelay.protocol.messages import (
    AssistantMessage,
    FunctionMessage,
    Message,
    ToolMessage,
    role_of,
    text_of,
)
from llmrelay.protocol.request import FunctionDef

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"


class ChatTemplate:
    """A GGUF's Jinja chat template, compiled once."""

    def __init__(self, source: str, bos: str, eos: str) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        self._template = env.from_string(source)
        self._native_tools = "tools" in source
        self._bos, self._eos = bos, eos

    def render(self, messages: list[Message], tools: list[FunctionDef]) -> str:
        plain = [_plain(m) for m in messages]
        extra: dict[str, Any] = {}
        if tools and self._native_tools:
            extra["tools"] = [{"type": "function", "function": _tool_json(t)} for t in tools]
        elif tools:
            plain = _with_tool_instructions(plain, tools)
        return self._template.render(
            messages=plain,
            add_generation_prompt=True,
            bos_token=self._bos,
            eos_token=self._eos,
            **extra,
        )


def _plain(message: Message) -> dict[str, str]:
    if isinstance(message, AssistantMessage):
        calls = [call.function for call in message.tool_calls or ()]
        if message.function_call:
            calls.append(message.function_call)
        text = text_of(message.content)
        for function in calls:
            payload = f'{{"name": "{function.name}", "arguments": {function.arguments or "{}"}}}'
            text += f"{TOOL_OPEN}\n{payload}\n{TOOL_CLOSE}"
        return {"role": "assistant", "content": text}
    if isinstance(message, (ToolMessage, FunctionMessage)):
        return {
            "role": "user",
            "content": f"<tool_response>\n{text_of(message.content)}\n</tool_response>",
        }
    role = role_of(message)
    role = "system" if role == "developer" else role
    return {"role": role, "content": text_of(message.content)}


def _tool_json(tool: FunctionDef) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description or "",
        "parameters": tool.parameters or {"type": "object", "properties": {}},
    }


def _with_tool_instructions(
    messages: list[dict[str, str]], tools: list[FunctionDef]
) -> list[dict[str, str]]:
    listing = "\n".join(orjson.dumps(_tool_json(t)).decode() for t in tools)
    instructions = (
        "You may call one or more functions to assist with the user query.\n"
        f"You are provided with function signatures within <tools></tools> tags:\n"
        f"<tools>\n{listing}\n</tools>\n"
        "To call a function, answer with a JSON object with its name and arguments within "
        f'{TOOL_OPEN}{TOOL_CLOSE} tags:\n{TOOL_OPEN}\n{{"name": <function-name>, '
        f'"arguments": <args-json-object>}}\n{TOOL_CLOSE}'
    )
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{instructions}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instructions}, *messages]


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)
