"""``EventStream``: a chunk stream sent as server-sent events, as OpenAI sends it.

A plain ASGI response rather than Starlette's ``StreamingResponse``: that one watches for the
client's disconnect in an anyio task group per request, which costs more than relaying a whole
answer from a fast upstream. Here a ``DisconnectWatch`` cancels the sending; either way the chunk
stream is closed at the end, which ends the upstream call or the local generation and frees the
deployment's place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import orjson
from starlette.types import Receive, Scope, Send

from llmrelay.api.disconnect import DisconnectWatch
from llmrelay.errors import LLMRelayError
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
    asked; a failure as an event."""

    def __init__(
        self,
        chunks: ChunkStream,
        *,
        include_usage: bool,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._chunks = chunks
        self._include_usage = include_usage
        self._request_id = request_id
        self._headers = _HEADERS + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = DisconnectWatch(receive)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            await self._send_events(send, watch)
        except asyncio.CancelledError:
            if not watch.took_back():
                raise
            log.info("stream %s: the client went away", self._request_id)
        finally:
            watch.stop()
            await self._chunks.aclose()

    async def _send_events(self, send: Send, watch: DisconnectWatch) -> None:
        try:
            async for item in self._chunks:
                if isinstance(item, bytes):
                    body = item
                elif item["choices"] or "usage" not in item or self._include_usage:
                    body = frame(item)
                else:
                    continue
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except LLMRelayError as exc:
            log.warning("stream %s failed: %s", self._request_id, exc.message)
            last = frame(exc.body())
        except Exception:
            log.exception("stream %s failed", self._request_id)
            last = frame(internal_error_body(self._request_id))
        else:
            last = _DONE_EVENT
        watch.finishing = True
        await send({"type": "http.response.body", "body": last, "more_body": False})


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
