"""``serve``: one admitted request through the gateway, the same for every inbound API.

The API's route parses its request into a ``Call`` and hands it here with its codec: the
request is admitted (403, 429), watched for a client that leaves, answered whole or streamed by
the gateway, and sent back in the API's own format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.api.disconnect import DisconnectWatch
from llmrelay.api.middleware import REQUEST_ID_KEY
from llmrelay.api.sse import EventStream
from llmrelay.errors import InvalidRequestError, LLMRelayError
from llmrelay.gateway.pipeline import Gateway, stopping
from llmrelay.observe.ended import CALLER_KEY, OUTCOME_KEY
from llmrelay.outcome import Outcome
from llmrelay.protocol.codec import Codec
from llmrelay.providers.base import Call
from llmrelay.store.keys import KeyRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


async def read_request(
    gateway: Gateway,
    caller: KeyRecord | None,
    request: Request,
    read_body: Callable[[Request], Awaitable[bytes]],
    parse: Callable[[bytes], T],
) -> tuple[bytes, T]:
    """The request's body and what ``parse`` makes of it; an error in either (a 400, a 413)
    still tells the caller where its limits stand."""
    request.scope[CALLER_KEY] = caller  # for the request log, should it be refused
    try:
        body = await read_body(request)
        return body, parse(body)
    except LLMRelayError as exc:
        await gateway.tell_limits(caller, exc)
        raise


async def serve(
    gateway: Gateway,
    request: Request,
    caller: KeyRecord | None,
    call: Call,
    codec: Codec,
    body_size: int,
) -> Response | EventStream:
    request_id = request.scope[REQUEST_ID_KEY]
    stream = call.stream
    if caller is None:
        outcome = Outcome(request_id, codec.endpoint, call.model, stream, None)
    else:
        outcome = Outcome(request_id, codec.endpoint, call.model, stream, caller.id, caller.name)
    admission = await gateway.admit(caller, call, body_size)
    request.scope[OUTCOME_KEY] = outcome
    # from here a client that leaves cancels the request, also while it waits for a place or
    # for an upstream's first chunk
    watch = DisconnectWatch(request.receive, outcome)
    try:
        if stream:
            metered = await gateway.stream(call, admission, outcome)
            # the stream goes on watching, and stops the watch when it ends
            return EventStream(
                metered,
                codec.encoder(metered.native),
                watch,
                request_id=request_id,
                headers=admission.headers,
            )
        answer = await gateway.answer(call, admission, outcome)
        watch.stop()
        return json_response(codec.answer(*answer), headers=admission.headers)
    except InvalidRequestError as exc:
        watch.stop()
        codec.rename(exc)
        raise
    except asyncio.CancelledError:
        watch.stop()
        if watch.took_back():
            log.info("request %s: the client went away", request_id)
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
        # the server stopped waiting for it: it is on record, and its client is told
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        raise stopping() from None
    except BaseException:
        watch.stop()
        raise
