"""What an inbound API's codec gives the HTTP edge: its answers from the internal (chat)
answer, and its streams' bytes from the internal stream's items. Chat Completions' own here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol import events

StreamItem = dict[str, Any] | bytes
_DONE_EVENT = events.frame(events.DONE)


class StreamEncoder(Protocol):
    """Turns one stream's items (chat chunks, or a native backend's events) into the bytes of
    the client's API, item by item."""

    def item(self, item: StreamItem) -> bytes | None:
        """What to send for an item (None: nothing)."""

    def end(self) -> bytes:
        """What ends a stream that ran to its end."""

    def failed(self, error: dict[str, Any]) -> bytes:
        """What ends a stream that failed after it began (``error``: the OpenAI error body)."""


class ChatEncoder:
    """Chat Completions' stream: each chunk as it came (framed if it is not yet), the usage
    chunk only if the client asked for it, then ``[DONE]``; a failure as an ``error`` event."""

    __slots__ = ("_include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage

    def item(self, item: StreamItem) -> bytes | None:
        if isinstance(item, bytes):
            return item
        if item["choices"] or "usage" not in item or self._include_usage:
            return frame(item)
        return None

    def end(self) -> bytes:
        return _DONE_EVENT

    def failed(self, error: dict[str, Any]) -> bytes:
        return frame(error)


def frame(payload: object) -> bytes:
    return events.frame(orjson.dumps(payload))


class Codec(Protocol):
    """One inbound API: the ``endpoint`` the ledger records, its answer from the internal
    answer (``native``: already in this API, from a backend that speaks it), its stream's
    encoder."""

    endpoint: str

    def answer(self, body: dict[str, Any], native: bool) -> dict[str, Any]: ...

    def encoder(self, native: bool) -> StreamEncoder: ...

    def rename(self, error: InvalidRequestError) -> None:
        """Name a backend's 400's parameter as this API's request names it."""


class ChatCodec:
    """Chat Completions: the internal format itself. Also the APIs that only backends that
    speak them answer (embeddings, legacy completions: ``endpoint``): their answers as they
    came, their streams framed as chat's are (the usage chunk only if asked for, then
    ``[DONE]``)."""

    def __init__(self, include_usage: bool, endpoint: str = "chat") -> None:
        self.endpoint = endpoint
        self._include_usage = include_usage

    def answer(self, body: dict[str, Any], native: bool) -> dict[str, Any]:
        return body

    def encoder(self, native: bool) -> StreamEncoder:
        return ChatEncoder(self._include_usage)

    def rename(self, error: InvalidRequestError) -> None:
        pass  # the backend's request is this API's


class Passthrough:
    """A stream from a backend that speaks the client's API: passed on as it came; a failure
    after it began as an event that ``failed`` makes."""

    __slots__ = ("_failed",)

    def __init__(self, failed: Callable[[dict[str, Any]], bytes]) -> None:
        self._failed = failed

    def item(self, item: StreamItem) -> bytes | None:
        return item if isinstance(item, bytes) else frame(item)

    def end(self) -> bytes:
        return b""

    def failed(self, error: dict[str, Any]) -> bytes:
        return self._failed(error)
