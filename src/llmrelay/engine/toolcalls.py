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

    ``mode`` is "text" (no tools), "call" (the output is a call) or "auto" (either);
    ``functions``: the names the call may have (to name a call cut short within its name).
    """

    def __init__(self, mode: str, functions: tuple[str, ...] = ()) -> None:
        self._mode = mode
        self._functions = functions
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
            self._buffer = self._buffer[match.end() :]
            return [self._head(match.group("name")), *self._arguments(hold=_TAIL_LEN)]
        return self._arguments(hold=_TAIL_LEN)

    def finish(self, reason: str = "stop") -> list[Delta]:
        """What is left once the choice has ended for ``reason``. A call cut short (``length``)
        is returned as far as it got: its arguments as made, and a call cut within its name
        named for the function it was becoming (an empty answer would leave a client that forced
        the call with nothing)."""
        cut_short = reason == "length"
        if self._state == "arguments":
            return self._arguments(hold=0, final=True, whole=not cut_short)
        rest, self._buffer = self._buffer, ""
        if self._state == "head" and cut_short and (name := self._becoming(rest)):
            return [self._head(name)]
        return [{"content": rest}] if rest and self._state != "head" else []

    def _head(self, name: str) -> Delta:
        self._state, self.called = "arguments", True
        call = {
            "index": 0,
            "id": random_id("call_"),
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return {"tool_calls": [call]}

    def _becoming(self, head: str) -> str | None:
        """The first function whose name the beginning of a call's head could be."""
        head = head.lstrip().removeprefix(TOOL_OPEN).lstrip()
        opening = '{"name":"'
        start = head[len(opening) :].partition('"')[0] if head.startswith(opening) else ""
        return next((name for name in self._functions if name.startswith(start)), None)

    def _arguments(self, hold: int, final: bool = False, whole: bool = True) -> list[Delta]:
        """The arguments made so far, but the last ``hold`` characters (which may be the call's
        end); ``final``: all of them, less the call's end if it is ``whole``."""
        text = self._buffer
        if final:
            text = _TAIL.sub("", text) if whole else text
            self._buffer = ""
        else:
            cut = max(0, len(text) - hold)
            text, self._buffer = text[:cut], text[cut:]
        if not text:
            return []
        return [{"tool_calls": [{"index": 0, "function": {"arguments": text}}]}]
