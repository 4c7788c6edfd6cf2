"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``
(with or without ``?beta=true``), a key in ``x-api-key`` or ``Authorization: Bearer``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.serving import json_response, read_request, serve
from llmrelay.api.sse import EventStream
from llmrelay.gateway.pipeline import Gateway
from llmrelay.protocol.anthropic.codec import MessagesCodec
from llmrelay.protocol.anthropic.request import parse_count_tokens_request, parse_messages_request
from llmrelay.protocol.anthropic.to_chat import to_chat
from llmrelay.providers.anthropic import PASSED_HEADERS
from llmrelay.providers.base import Call
from llmrelay.store.keys import KeyRecord


class MessagesRoutes:
    def __init__(self, gateway: Gateway, read_body: Callable[[Request], Awaitable[bytes]]) -> None:
        self._gateway = gateway
        self._read_body = read_body

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.create, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    async def create(self, request: Request) -> Response | EventStream:
        caller = self._caller(request)
        parse = parse_messages_request
        body, parsed = await read_request(self._gateway, caller, request, self._read_body, parse)
        translated = to_chat(parsed)
        call = Call.of_translated(
            "messages",
            parsed,
            translated,
            body,
            max_output=parsed.max_tokens,
            headers=_passed(request),
        )
        codec = MessagesCodec(parsed, translated)
        return await serve(self._gateway, request, caller, call, codec, len(body))

    async def count_tokens(self, request: Request) -> Response:
        """Counted by an Anthropic deployment of the model, or else by the model's first
        deployment for the translated chat prompt (exactly on the built-in engine, an estimate
        elsewhere)."""
        caller = self._caller(request)
        body = await self._read_body(request)
        parsed = parse_count_tokens_request(body)
        self._gateway.authorize(caller, parsed.model)
        router = self._gateway.router
        if router.speaks("messages", parsed.model):
            path = "/v1/messages/count_tokens"
            status, payload = await router.relay_native(
                "messages", parsed.model, "POST", path, body, _passed(request)
            )
            return Response(payload, status_code=status, media_type="application/json")
        translated = to_chat(parsed)
        if translated.chat is None:
            assert translated.error is not None
            raise translated.error
        counted = await router.prompt_tokens(parsed.model, translated.chat)
        return json_response({"input_tokens": counted})

    def _caller(self, request: Request) -> KeyRecord | None:
        headers = request.headers
        return self._gateway.authenticate(headers.get("authorization"), headers.get("x-api-key"))


_PASSED = frozenset(h.encode() for h in PASSED_HEADERS)


def _passed(request: Request) -> dict[str, str]:
    """The client's headers an Anthropic deployment takes, in one pass over the raw headers
    (a lookup in Starlette's is a pass of its own)."""
    return {k.decode(): v.decode() for k, v in request.scope["headers"] if k in _PASSED}
