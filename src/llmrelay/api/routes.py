"""The HTTP routes of the OpenAI API: chat completions, models, health."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.body import read_body
from llmrelay.api.serving import json_response, serve
from llmrelay.api.sse import EventStream
from llmrelay.errors import LLMRelayError, NotFoundError
from llmrelay.gateway.pipeline import Gateway
from llmrelay.protocol.codec import ChatCodec
from llmrelay.protocol.request import parse_chat_request
from llmrelay.protocol.response import model_object
from llmrelay.providers.base import Call


class Routes:
    """The handlers, bound to the gateway they call and the server's limits."""

    def __init__(self, gateway: Gateway, *, max_body_bytes: int) -> None:
        self._gateway = gateway
        self._max_body = max_body_bytes
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
            body = await self.body(request)
            chat = parse_chat_request(body)
        except LLMRelayError as exc:
            await self._gateway.tell_limits(caller, exc)
            raise
        codec = ChatCodec(chat.include_usage)
        call = Call.of_chat(chat)
        return await serve(self._gateway, request, caller, call, codec, len(body))

    async def body(self, request: Request) -> bytes:
        return await read_body(request, max_bytes=self._max_body)

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
