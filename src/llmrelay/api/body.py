"""``read_body``: a request's body, bounded in size."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request

from llmrelay.api.guard import BODY_TIMED_OUT
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


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The whole body: a 413 beyond ``max_bytes``. A client that leaves while sending it is
    logged, once, and answered with a 499 that nobody reads; one that takes longer than the
    server's ``body_timeout`` has had its 408 from the connection guard (``api/guard.py``)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidRequestError("The Content-Length header is not a number.")
        if int(length) > max_bytes:
            raise _too_large(max_bytes)
    parts, size = [], 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > max_bytes:
                raise _too_large(max_bytes)
            parts.append(part)
    except ClientDisconnect as exc:
        request_id = request.scope.get(REQUEST_ID_KEY)
        if request.scope.get(BODY_TIMED_OUT):
            log.info("request %s: its body did not arrive in time (408)", request_id)
            raise RequestTimeoutError("The request body did not arrive in time.") from exc
        log.info("request %s: the client went away while sending its body", request_id)
        raise ClientLeftError("The client went away.") from exc
    return b"".join(parts)


def _too_large(max_bytes: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"The request body is larger than the server's limit of {max_bytes} bytes.",
        headers=_CLOSE,
    )
