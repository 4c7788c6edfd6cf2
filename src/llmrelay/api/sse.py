"""Server-sent events framing of a chunk stream, as OpenAI sends it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson

from llmrelay.errors import LLMRelayError
from llmrelay.providers.base import Chunk

log = logging.getLogger(__name__)
DONE = b"data: [DONE]\n\n"


def frame(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def sse_events(
    chunks: AsyncIterator[Chunk], *, include_usage: bool, request_id: str
) -> AsyncIterator[bytes]:
    """Frame each chunk as it arrives; the usage chunk only if asked; errors as an event."""
    try:
        async for chunk in chunks:
            if not chunk["choices"] and "usage" in chunk and not include_usage:
                continue
            yield frame(chunk)
    except LLMRelayError as exc:
        log.warning("stream %s failed: %s", request_id, exc.message)
        yield frame(exc.body())
        return
    except Exception:
        log.exception("stream %s failed", request_id)
        yield frame(internal_error_body(request_id))
        return
    yield DONE


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
