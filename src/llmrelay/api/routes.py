"""The HTTP routes: chat completions, models, health."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.body import read_body
from llmrelay.api.disconnect import DisconnectWatch
from llmrelay.api.middleware import REQUEST_ID_KEY
from llmrelay.api.sse import EventStream
from llmrelay.errors import LLMRelayError, NotFoundError
from llmrelay.gateway.pipeline import Gateway
from llmrelay.protocol.request import parse_chat_request
from llmrelay.protocol.response import model_object

log = logging.getLogger(__name__)


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


class Routes:
    """The handlers, bound to the gateway they call and the server's limits."""

    def __init__(self, gateway: Gateway, *, max_body_bytes: int, body_timeout: float) -> None:
        self._gateway = gateway
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout
        self._started = int(time.time())

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ]

    async def chat_completions(self, request: Request) -> Response | EventStream:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        try:
            body = await read_body(request, max_bytes=self._max_body, timeout=self._body_timeout)
            chat = parse_chat_request(body)
        except LLMRelayError as exc:
            await self._gateway.tell_limits(caller, exc)
            raise
        admission = await self._gateway.admit(caller, chat, len(body))
        request_id = request.scope[REQUEST_ID_KEY]
        # from here a client that leaves cancels the request, also while it waits for a place
        # or for an upstream's first chunk
        watch = DisconnectWatch(request.receive)
        try:
            if chat.stream:
                chunks, meter = await self._gateway.stream(caller, chat, admission, request_id)
                # the stream goes on watching, and stops the watch when it ends
                return EventStream(
                    chunks,
                    meter,
                    watch,
                    include_usage=chat.include_usage,
                    request_id=request_id,
                    headers=admission.headers,
                )
            result = await self._gateway.complete(caller, chat, admission, request_id)
            watch.stop()
            return json_response(result, headers=admission.headers)
        except BaseException as exc:
            watch.stop()
            if not (isinstance(exc, asyncio.CancelledError) and watch.took_back()):
                raise
            log.info("request %s: the client went away", request_id)
            return Response(status_code=499)  # nginx's "client closed request"; nobody reads it

    async def list_models(self, request: Request) -> Response:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        data = [self._model(name) for name in self._gateway.models_for(caller)]
        headers = await self._gateway.limit_headers(caller)
        return json_response({"object": "list", "data": data}, headers=headers)

    async def get_model(self, request: Request) -> Response:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        model_id = request.path_params["model_id"]
        headers = await self._gateway.limit_headers(caller)
        if model_id not in self._gateway.models_for(caller):
            raise NotFoundError(
                f"The model '{model_id}' does not exist", param="model", headers=headers
            )
        return json_response(self._model(model_id), headers=headers)

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok", "models": self._gateway.router.health()})

    def _model(self, name: str) -> dict[str, Any]:
        owned_by = self._gateway.router.owned_by(name)
        return model_object(name, self._started, owned_by)
