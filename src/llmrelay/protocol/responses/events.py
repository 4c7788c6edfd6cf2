"""``ResponseEvents``: a chat stream as the Responses API's typed events, in their order.

``response.created`` and ``response.in_progress`` open it; generated text comes as a ``message``
item (``output_item.added``, ``content_part.added``, ``output_text.delta`` ... ``.done``,
``content_part.done``, ``output_item.done``), each tool call as a ``function_call`` item
(``output_item.added``, ``function_call_arguments.delta`` ... ``.done``, ``output_item.done``);
``response.completed`` (or ``response.incomplete`` for a length stop) closes it with the whole
response and its usage, or ``response.failed`` a stream that broke. Every event is framed with
its ``event:`` line and carries a ``sequence_number`` that only grows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llmrelay.protocol.codec import StreamItem
from llmrelay.protocol.events import decoded
from llmrelay.protocol.responses.objects import (
    INCOMPLETE,
    function_call_item,
    logprobs_of,
    message_item,
    new_id,
    response_object,
    text_part,
    usage_object,
)
from llmrelay.protocol.responses.request import ResponsesRequest

#: error codes a failed response may carry (``ResponseErrorCode``), by llmrelay's error code
_FAILED_CODES = {"rate_limit_exceeded": "rate_limit_exceeded", "invalid_prompt": "invalid_prompt"}


def event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class _Call:
    """A function call being streamed: its item and the arguments so far."""

    __slots__ = ("arguments", "call_id", "item_id", "name", "output_index")

    def __init__(self, output_index: int, call_id: str, name: str) -> None:
        self.output_index = output_index
        self.item_id = new_id("fc_")
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


class ResponseEvents:
    """The encoder of one response's stream; ``on_done`` gets the final response object."""

    def __init__(
        self,
        request: ResponsesRequest,
        response_id: str,
        created_at: int,
        on_done: Callable[[dict[str, Any]], None],
    ) -> None:
        self._request = request
        self._id = response_id
        self._created_at = created_at
        self._on_done = on_done
        self._sequence = 0
        self._model = request.model
        self._started = False
        self._output: list[dict[str, Any]] = []  # the items done
        self._text: list[str] | None = None  # the open message's text so far
        self._logprobs: list[dict[str, Any]] = []
        self._message_id = ""
        self._message_index = 0
        self._calls: dict[int, _Call] = {}  # by the chat tool call's index
        self._open_call: _Call | None = None
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def item(self, item: StreamItem) -> bytes | None:
        chunks = [item] if isinstance(item, dict) else decoded(item)
        out = [] if self._started else self._start()
        for chunk in chunks:
            self._chunk(chunk, out)
        return b"".join(out) or None

    def end(self) -> bytes:
        out = [] if self._started else self._start()
        self._close_all(out)
        reason = INCOMPLETE.get(self._finish or "")
        status = "incomplete" if reason else "completed"
        response = self._response(status, self._output, incomplete_reason=reason)
        self._on_done(response)
        out.append(self._event({"type": f"response.{status}", "response": response}))
        return b"".join(out)

    def failed(self, error: dict[str, Any]) -> bytes:
        out = [] if self._started else self._start()
        detail = error.get("error") or {}
        failure = {
            "code": _FAILED_CODES.get(detail.get("code") or "", "server_error"),
            "message": detail.get("message") or "The response failed.",
        }
        response = self._response("failed", self._output, error=failure)
        self._on_done(response)
        out.append(self._event({"type": "response.failed", "response": response}))
        return b"".join(out)

    def _start(self) -> list[bytes]:
        self._started = True
        opening = self._response("in_progress", [])
        return [
            self._event({"type": "response.created", "response": opening}),
            self._event({"type": "response.in_progress", "response": opening}),
        ]

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if isinstance(model := chunk.get("model"), str):
            self._model = model
        if chunk.get("usage"):
            self._usage = usage_object(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:  # the Responses API has one answer
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                self._add_text(text, (choice.get("logprobs") or {}).get("content"), out)
            for call in delta.get("tool_calls") or ():
                self._add_call(call, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def _add_text(self, text: str, logprobs: list[dict[str, Any]] | None, out: list[bytes]) -> None:
        if self._text is None:
            self._close_call(out)
            self._text, self._message_id = [], new_id("msg_")
            self._message_index = len(self._output)
            item = {**message_item(self._message_id, "", "in_progress"), "content": []}
            out.append(self._item_event("added", self._message_index, item))
            out.append(self._part_event("added", text_part("")))
        self._text.append(text)
        entries = logprobs_of(logprobs)
        self._logprobs += entries
        out.append(
            self._event(
                self._text_event("response.output_text.delta", delta=text, logprobs=entries)
            )
        )

    def _add_call(self, delta: dict[str, Any], out: list[bytes]) -> None:
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            self._close_text(out)
            self._close_call(out)
            call = _Call(
                len(self._output), delta.get("id") or new_id("call_"), function.get("name") or ""
            )
            self._calls[index] = self._open_call = call
            item = function_call_item(call.item_id, call.call_id, call.name, "", "in_progress")
            out.append(self._item_event("added", call.output_index, item))
        if fragment := function.get("arguments"):
            call.arguments.append(fragment)
            out.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": call.item_id,
                        "output_index": call.output_index,
                        "delta": fragment,
                    }
                )
            )

    def _close_all(self, out: list[bytes]) -> None:
        self._close_text(out)
        self._close_call(out)

    def _close_text(self, out: list[bytes]) -> None:
        if self._text is None:
            return
        text = "".join(self._text)
        out.append(
            self._event(
                self._text_event("response.output_text.done", text=text, logprobs=self._logprobs)
            )
        )
        out.append(self._part_event("done", text_part(text, self._logprobs)))
        item = message_item(self._message_id, text, "completed", self._logprobs)
        out.append(self._item_event("done", self._message_index, item))
        self._output.append(item)
        self._text, self._logprobs = None, []

    def _close_call(self, out: list[bytes]) -> None:
        call, self._open_call = self._open_call, None
        if call is None:
            return
        arguments = "".join(call.arguments)
        out.append(
            self._event(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": call.item_id,
                    "name": call.name,
                    "output_index": call.output_index,
                    "arguments": arguments,
                }
            )
        )
        item = function_call_item(call.item_id, call.call_id, call.name, arguments, "completed")
        out.append(self._item_event("done", call.output_index, item))
        self._output.append(item)

    def _response(self, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        usage = self._usage if status != "in_progress" else None
        return response_object(
            self._request,
            response_id=self._id,
            created_at=self._created_at,
            model=self._model,
            status=status,
            output=output,
            usage=usage,
            **extra,
        )

    def _item_event(self, when: str, output_index: int, item: dict[str, Any]) -> bytes:
        return self._event(
            {"type": f"response.output_item.{when}", "output_index": output_index, "item": item}
        )

    def _part_event(self, when: str, part: dict[str, Any]) -> bytes:
        return self._event(
            {
                "type": f"response.content_part.{when}",
                "item_id": self._message_id,
                "output_index": self._message_index,
                "content_index": 0,
                "part": part,
            }
        )

    def _text_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "item_id": self._message_id,
            "output_index": self._message_index,
            "content_index": 0,
            **fields,
        }

    def _event(self, payload: dict[str, Any]) -> bytes:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        return event(payload)
