"""``read_body``: a request's body, bounded in size and in the time it may take to arrive."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import ClientDisconnect, Request

from llmrelay.api.middleware import REQUEST_ID_KEY
from llmrelay.errors import (
    ClientLeftError,
    InvalidRequestError,
    RequestTimeoutError,
    RequestTooLargeError,
)

log = logging.getLogger(__name__)
#: a response that ends the connection: whoever was that slow is not kept waiting on it
_CLOSE = {"connection": "close"}


async def read_body(request: Request, *, max_bytes: int, timeout: float) -> bytes:
    """The whole body: a 413 beyond ``max_bytes``, a 408 if it takes more than ``timeout``
    seconds (a body that trickles in); a client that leaves while sending it is logged, once,
    and answered with a 499 that nobody reads."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidRequestError("The Content-Length header is not a number.")
        if int(length) > max_bytes:
            raise _too_large(max_bytes)
    parts, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for part in request.stream():
                size += len(part)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                parts.append(part)
    except TimeoutError as exc:
        raise RequestTimeoutError(
            f"The request body did not arrive within {timeout:g} seconds.", headers=_CLOSE
        ) from exc
    except ClientDisconnect as exc:
        request_id = request.scope.get(REQUEST_ID_KEY)
        log.info("request %s: the client went away while sending its body", request_id)
        raise ClientLeftError("The client went away.") from exc
    return b"".join(parts)


def _too_large(max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"The request body is larger than the server's limit of {max_bytes} bytes.",
        headers=_CLOSE,
    )
