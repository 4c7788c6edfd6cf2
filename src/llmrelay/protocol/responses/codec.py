"""``ResponsesCodec``: the Responses API's answers and streams, from a chat backend's (built and
translated here) or from a backend that speaks the API itself (passed on as they are)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.codec import StreamEncoder, StreamItem
from llmrelay.protocol.responses.events import ResponseEvents, event
from llmrelay.protocol.responses.objects import new_id, output_of, response_object, usage_object
from llmrelay.protocol.responses.request import ResponsesRequest
from llmrelay.protocol.translated import Translated

#: a native stream's sequence numbers, to number an error event after the last
_SEQUENCE = re.compile(rb'"sequence_number":\s*(\d+)')
_CREATED = b'"type":"response.created"'


class ResponsesCodec:
    """``on_done``: gets each response built here, whole (to store it); ``on_native``: the id
    of a response a backend made itself (to record whose it is)."""

    endpoint = "responses"

    def __init__(
        self,
        request: ResponsesRequest,
        translated: Translated,
        *,
        on_done: Callable[[dict[str, Any]], None],
        on_native: Callable[[str], None],
    ) -> None:
        self._request = request
        self._translated = translated
        self._on_done = on_done
        self._on_native = on_native
        self.response_id = new_id("resp_")
        self.created_at = int(time.time())

    def answer(self, body: dict[str, Any], native: bool) -> dict[str, Any]:
        if native:
            if isinstance(body.get("id"), str):
                self._on_native(body["id"])
            return body
        output, status, reason = output_of(body)
        response = response_object(
            self._request,
            response_id=self.response_id,
            created_at=self.created_at,
            model=body.get("model") or self._request.model,
            status=status,
            output=output,
            usage=usage_object(body.get("usage")),
            incomplete_reason=reason,
        )
        self._on_done(response)
        return response

    def encoder(self, native: bool) -> StreamEncoder:
        if native:
            return NativeEvents(self._on_native)
        return ResponseEvents(self._request, self.response_id, self.created_at, self._on_done)

    def rename(self, error: InvalidRequestError) -> None:
        self._translated.rename(error)


class NativeEvents:
    """A Responses stream from a backend that speaks the API: passed on as it came; its
    response's id is recorded from ``response.created``."""

    __slots__ = ("_last", "_on_native", "_partial")

    def __init__(self, on_native: Callable[[str], None]) -> None:
        self._on_native = on_native
        self._partial: bytes | None = b""  # a line begun, until the id is found; then None
        self._last = -1

    def item(self, item: StreamItem) -> bytes | None:
        data = item if isinstance(item, bytes) else event(item)
        if self._partial is not None:
            *lines, self._partial = (self._partial + data).split(b"\n")
            self._record(lines)
        for number in _SEQUENCE.findall(data):
            self._last = max(self._last, int(number))
        return data

    def end(self) -> bytes:
        return b""

    def failed(self, error: dict[str, Any]) -> bytes:
        detail = error.get("error") or {}
        return event(
            {
                "type": "error",
                "code": detail.get("code"),
                "message": detail.get("message") or "The response failed.",
                "param": detail.get("param"),
                "sequence_number": self._last + 1,
            }
        )

    def _record(self, lines: list[bytes]) -> None:
        """Record the id of ``response.created``, among whole lines."""
        for line in lines:
            if line.startswith(b"data:") and _CREATED in line:
                try:
                    response = orjson.loads(line[5:]).get("response") or {}
                except orjson.JSONDecodeError:
                    continue
                if isinstance(response.get("id"), str):
                    self._on_native(response["id"])
                    self._partial = None
                    return
