"""``MessageEvents``: a chat stream as the Messages API's events, as Anthropic sends them.

``message_start`` (the message, with its usage so far) opens it, then ``content_block_start``,
``ping``; text comes in a ``text`` block's ``text_delta``s, each tool call in a ``tool_use``
block's ``input_json_delta``s, each block closed by ``content_block_stop``; ``message_delta``
(the stop reason, and the usage: output tokens and, as a chat backend tells them only at the
end, the input tokens) and ``message_stop`` close it. A failure after the start is an ``error``
event. Each event is framed with its ``event:`` line.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmrelay.protocol.anthropic.objects import (
    STOP_REASONS,
    error_body,
    new_id,
    tool_use_block,
    usage_object,
)
from llmrelay.protocol.codec import StreamItem
from llmrelay.protocol.events import decoded


def event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_PING = event({"type": "ping"})


class MessageEvents:
    """The encoder of one message's stream."""

    def __init__(self, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        self._started = False
        self._pinged = False
        self._blocks = 0  # begun so far
        self._open: str | int | None = None  # "text", or the chat index of the open tool call
        self._calls: dict[int, int] = {}  # chat tool call index -> block index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def item(self, item: StreamItem) -> bytes | None:
        chunks = [item] if isinstance(item, dict) else decoded(item)
        out: list[bytes] = []
        for chunk in chunks:
            if not self._started:
                self._start(chunk, out)
            self._chunk(chunk, out)
        return b"".join(out) or None

    def end(self) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start({}, out)
        self._close(out)
        if not self._pinged:
            out.append(_PING)
        usage = usage_object(self._usage)
        delta: dict[str, Any] = {"stop_reason": STOP_REASONS.get(self._finish or "", "end_turn")}
        out.append(
            event(
                {"type": "message_delta", "delta": delta | {"stop_sequence": None}, "usage": usage}
            )
        )
        out.append(event({"type": "message_stop"}))
        return b"".join(out)

    def failed(self, error: dict[str, Any]) -> bytes:
        return event(error_body(error))

    def _start(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self._started = True
        model = chunk.get("model")
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) else self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage_object(None), "output_tokens": 1},
        }
        out.append(event({"type": "message_start", "message": message}))

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:  # the Messages API has one answer
                continue
            delta = choice.get("delta") or {}
            if text := delta.get("content") or delta.get("refusal"):
                if self._open != "text":
                    self._begin({"type": "text", "text": ""}, "text", out)
                out.append(self._delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or ():
                self._add_call(call, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _add_call(self, call: dict[str, Any], out: list[bytes]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self._calls:
            block = tool_use_block(call.get("id") or new_id("toolu_"), function.get("name") or "")
            self._begin(block, index, out)
            self._calls[index] = self._blocks - 1
        if fragment := function.get("arguments"):
            out.append(
                self._delta(
                    {"type": "input_json_delta", "partial_json": fragment},
                    self._calls[index],
                )
            )

    def _begin(self, block: dict[str, Any], kind: str | int, out: list[bytes]) -> None:
        self._close(out)
        out.append(
            event({"type": "content_block_start", "index": self._blocks, "content_block": block})
        )
        if not self._pinged:
            out.append(_PING)
            self._pinged = True
        self._open = kind
        self._blocks += 1

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(event({"type": "content_block_stop", "index": self._blocks - 1}))
            self._open = None

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._blocks - 1 if index is None else index
        return event({"type": "content_block_delta", "index": at, "delta": delta})
