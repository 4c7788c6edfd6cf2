"""Reading tool calls out of the model's text as it streams, into OpenAI deltas.

The grammar (``grammar.py``) makes a call ``{"name":"NAME","arguments":ARGS}``, wrapped in
``<tool_call>`` tags when the model chose to call on its own (tool choice "auto"). The reader
emits the call's id and name once, then the argument text in fragments as it arrives.
"""

from __future__ import annotations

import re
from typing import Any

from llmrelay.engine.prompt import TOOL_CLOSE, TOOL_OPEN
from llmrelay.protocol.response import random_id

_HEAD = re.compile(r'^\s*(?:<tool_call>\s*)?\{"name":"(?P<name>[^"]+)","arguments":')
_TAIL = re.compile(r"\}\s*(?:</tool_call>)?\s*$")
_TAIL_LEN = len("}\n" + TOOL_CLOSE + "\n")

Delta = dict[str, Any]


class ToolCallReader:
    """Splits one choice's text into content deltas or one tool call's deltas.

    ``mode`` is "text" (no tools), "call" (the output is a call) or "auto" (either).
    """

    def __init__(self, mode: str) -> None:
        self._mode = mode
        self._buffer = ""
        self._state = {"text": "content", "call": "head", "auto": "undecided"}[mode]
        self.called = False

    def feed(self, text: str) -> list[Delta]:
        if self._state == "content":
            return [{"content": text}] if text else []
        self._buffer += text
        if self._state == "undecided":
            stripped = self._buffer.lstrip()
            if TOOL_OPEN.startswith(stripped):
                return []
            if not stripped.startswith(TOOL_OPEN):
                self._state = "content"
                text, self._buffer = self._buffer, ""
                return [{"content": text}]
            self._state = "head"
        if self._state == "head":
            match = _HEAD.match(self._buffer)
            if not match:
                return []
            self._state, self.called = "arguments", True
            self._buffer = self._buffer[match.end() :]
            head = {
                "index": 0,
                "id": random_id("call_"),
                "type": "function",
                "function": {"name": match.group("name"), "arguments": ""},
            }
            return [{"tool_calls": [head]}, *self._arguments(hold=_TAIL_LEN)]
        return self._arguments(hold=_TAIL_LEN)

    def finish(self) -> list[Delta]:
        """What is left once the choice has ended."""
        if self._state == "arguments":
            return self._arguments(hold=0, final=True)
        rest, self._buffer = self._buffer, ""
        return [{"content": rest}] if rest and self._state != "head" else []

    def _arguments(self, hold: int, final: bool = False) -> list[Delta]:
        text = self._buffer
        if final:
            text = _TAIL.sub("", text)
            self._buffer = ""
        else:
            cut = max(0, len(text) - hold)
            text, self._buffer = text[:cut], text[cut:]
        if not text:
            return []
        return [{"tool_calls": [{"index": 0, "function": {"arguments": text}}]}]
