"""``EventStream``: a chunk stream sent as server-sent events, as OpenAI sends it.

A plain ASGI response rather than Starlette's ``StreamingResponse``: that one watches for the
client's disconnect in an anyio task group per request, which costs more than relaying a whole
answer from a fast upstream. Here the request's ``DisconnectWatch`` (started by the route before
the stream opened) cancels the sending; either way the chunk stream is closed at the end, which
ends the upstream call or the local generation and frees the deployment's place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import orjson
from starlette.types import Receive, Scope, Send

from llmrelay.api.disconnect import DisconnectWatch
from llmrelay.errors import LLMRelayError
from llmrelay.gateway.metering import Meter
from llmrelay.protocol import events
from llmrelay.providers.base import ChunkStream

log = logging.getLogger(__name__)
_DONE_EVENT = events.frame(events.DONE)
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def frame(payload: object) -> bytes:
    return events.frame(orjson.dumps(payload))


class EventStream:
    """Sends each chunk as it arrives (framing those not framed yet); the usage chunk only if
    asked; a failure as an event. Shows the ``meter`` every chunk, and tells it how the stream
    ended: sent whole, failed, or cut short by the client's leaving. Stops the ``watch``."""

    def __init__(
        self,
        chunks: ChunkStream,
        meter: Meter | None,
        watch: DisconnectWatch,
        *,
        include_usage: bool,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._chunks = chunks
        self._meter = meter
        self._watch = watch
        self._include_usage = include_usage
        self._request_id = request_id
        self._headers = _HEADERS + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self._watch
        failure: Exception | None = None
        sent = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            failure = await self._send_events(send)
            sent = True
        except asyncio.CancelledError:
            if not watch.took_back():
                raise
            log.info("stream %s: the client went away", self._request_id)
        finally:
            watch.stop()
            await self._chunks.aclose()
            if self._meter is not None:
                await self._meter.stream_ended(failure, disconnected=not sent)

    async def _send_events(self, send: Send) -> Exception | None:
        """Sends the stream to its end; returns the failure that ended it early, if one did."""
        meter = self._meter
        failure: Exception | None = None
        try:
            async for item in self._chunks:
                if meter is not None:
                    meter.saw(item)
                if isinstance(item, bytes):
                    body = item
                elif item["choices"] or "usage" not in item or self._include_usage:
                    body = frame(item)
                else:
                    continue
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except LLMRelayError as exc:
            log.warning("stream %s failed: %s", self._request_id, exc.message)
            failure, last = exc, frame(exc.body())
        except Exception as exc:
            log.exception("stream %s failed", self._request_id)
            failure, last = exc, frame(internal_error_body(self._request_id))
        else:
            last = _DONE_EVENT
        self._watch.finishing = True
        await send({"type": "http.response.body", "body": last, "more_body": False})
        return failure


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
