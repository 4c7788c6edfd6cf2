"""The HTTP routes of the OpenAI API: chat completions, embeddings, legacy completions, models,
health."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.body import read_body
from llmrelay.api.serving import json_response, read_request, serve
from llmrelay.api.sse import EventStream
from llmrelay.errors import InvalidRequestError, NotFoundError
from llmrelay.gateway.pipeline import Gateway
from llmrelay.protocol.codec import ChatCodec
from llmrelay.protocol.completions import parse_completions_request
from llmrelay.protocol.embeddings import parse_embeddings_request
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
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ]

    async def chat_completions(self, request: Request) -> Response | EventStream:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        body, chat = await read_request(
            self._gateway, caller, request, self.body, parse_chat_request
        )
        codec = ChatCodec(chat.include_usage)
        call = Call.of_chat(chat)
        return await serve(self._gateway, request, caller, call, codec, len(body))

    async def embeddings(self, request: Request) -> Response | EventStream:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        parse = parse_embeddings_request
        body, parsed = await read_request(self._gateway, caller, request, self.body, parse)
        # nothing is generated: only the input is charged
        call = _native_call("embeddings", parsed.model, parsed, body, choices=0)
        codec = ChatCodec(False, endpoint="embeddings")
        return await serve(self._gateway, request, caller, call, codec, len(body))

    async def completions(self, request: Request) -> Response | EventStream:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        parse = parse_completions_request
        body, parsed = await read_request(self._gateway, caller, request, self.body, parse)
        call = _native_call(
            "completions",
            parsed.model,
            parsed,
            body,
            stream=bool(parsed.stream),
            max_output=parsed.limit,
            choices=(parsed.n or 1) * len(parsed.prompts()),
        )
        codec = ChatCodec(parsed.include_usage, endpoint="completions")
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


def _native_call(
    api: str,
    model: str,
    parsed: object,
    body: bytes,
    *,
    choices: int,
    stream: bool = False,
    max_output: int | None = None,
) -> Call:
    """A call of an API that only backends that speak it answer: no chat request, but the
    error that a backend of chat alone gives."""
    refused = InvalidRequestError(
        f"The model `{model}` does not support /v1/{api}.",
        param="model",
        code="model_not_supported",
    )
    return Call(
        model=model,
        stream=stream,
        chat=None,
        api=api,
        body=body,
        max_output=max_output,
        choices=choices,
        untranslatable=refused,
        request=parsed,
    )
