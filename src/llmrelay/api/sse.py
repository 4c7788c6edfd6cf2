"""``EventStream``: a stream sent as server-sent events, in the client's API's format.

A plain ASGI response rather than Starlette's ``StreamingResponse``: that one watches for the
client's disconnect in an anyio task group per request, which costs more than relaying a whole
answer from a fast upstream. Here the request's ``DisconnectWatch`` (started by the route before
the stream opened) cancels the sending; either way the stream is closed at the end, which ends
the upstream call or the local generation and frees the deployment's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from starlette.types import Receive, Scope, Send

from llmrelay.api.disconnect import DisconnectWatch
from llmrelay.errors import LLMRelayError
from llmrelay.gateway.pipeline import MeteredStream, stopping
from llmrelay.protocol.codec import StreamEncoder

log = logging.getLogger(__name__)
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """Sends each item as the ``encoder`` writes it, as it arrives; a failure after the start as
    the encoder's error event. Shows the stream's meter every item, and tells it how the stream
    ended: sent whole (recorded before the last event goes out), failed, cut short by the
    client's leaving, or by the server stopping (the client is told). Stops the ``watch``."""

    def __init__(
        self,
        stream: MeteredStream,
        encoder: StreamEncoder,
        watch: DisconnectWatch,
        *,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._stream = stream
        self._encoder = encoder
        self._watch = watch
        self._request_id = request_id
        self._headers = _HEADERS + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self._stream
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            await self._send_events(send)
        except asyncio.CancelledError:
            if self._watch.took_back():
                log.info("stream %s: the client went away", self._request_id)
            else:  # the server is stopping: the stream is recorded, and its client told
                failure = stopping()
                await stream.ended(failure)
                await _try(send, self._encoder.failed(failure.body()))
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()  # the response is whole: nothing left to cancel
        finally:
            self._watch.stop()
            await stream.chunks.aclose()
            await stream.ended()

    async def _send_events(self, send: Send) -> None:
        """Sends the stream to its end, or to the failure that ended it early."""
        stream, encoder = self._stream, self._encoder
        failure: Exception | None = None
        try:
            async for item in stream.chunks:
                stream.saw(item)
                body = encoder.item(item)
                if body is not None:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except LLMRelayError as exc:
            log.warning("stream %s failed: %s", self._request_id, exc.message)
            failure, last = exc, encoder.failed(exc.body())
        except Exception as exc:
            log.exception("stream %s failed", self._request_id)
            failure, last = exc, encoder.failed(internal_error_body(self._request_id))
        else:
            last = encoder.end()
        self._watch.finishing = True
        await stream.ended(failure)  # on record before the client has its last event
        await send({"type": "http.response.body", "body": last, "more_body": False})


async def _try(send: Send, body: bytes) -> None:
    """Send the last event if the connection still takes it."""
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": body, "more_body": False})


def internal_error_body(request_id: str) -> dict[str, object]:
    return {
        "error": {
            "message": "The server had an error while processing your request. Sorry about "
            f"that! Quote request id {request_id} when reporting it.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
