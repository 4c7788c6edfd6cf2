"""The Responses API's routes: create a response, and retrieve, delete and list the input items
of a stored one (a key sees its own alone)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.api.serving import json_response, serve
from llmrelay.api.sse import EventStream
from llmrelay.errors import InvalidRequestError, LLMRelayError, NotFoundError
from llmrelay.gateway.pipeline import Gateway
from llmrelay.protocol.responses.codec import ResponsesCodec
from llmrelay.protocol.responses.objects import input_items, stored_items
from llmrelay.protocol.responses.request import ResponsesRequest, parse_responses_request
from llmrelay.protocol.responses.to_chat import to_chat
from llmrelay.protocol.translated import Translated
from llmrelay.providers.base import Call
from llmrelay.store.keys import KeyRecord
from llmrelay.store.responses import ResponseStore, StoredResponse


class ResponsesRoutes:
    def __init__(self, gateway: Gateway, store: ResponseStore, read_body: Any) -> None:
        self._gateway = gateway
        self._store = store
        self._read_body = read_body

    def routes(self) -> list[Route]:
        return [
            Route("/v1/responses", self.create, methods=["POST"]),
            Route("/v1/responses/{response_id}", self.retrieve, methods=["GET"]),
            Route("/v1/responses/{response_id}", self.delete, methods=["DELETE"]),
            Route("/v1/responses/{response_id}/input_items", self.input_items, methods=["GET"]),
        ]

    async def create(self, request: Request) -> Response | EventStream:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        try:
            body = await self._read_body(request)
            parsed = parse_responses_request(body)
            context = await self._conversation(parsed, caller)
        except LLMRelayError as exc:
            await self._gateway.tell_limits(caller, exc)
            raise
        if context is None:  # it follows a response its backend keeps: only that can go on
            translated = Translated(None, _kept_upstream())
        else:
            translated = to_chat(parsed, context)
        call = Call.of_translated(
            "responses", parsed, translated, body, max_output=parsed.max_output_tokens
        )
        codec = self._codec(parsed, translated, caller.id if caller else None)
        return await serve(self._gateway, request, caller, call, codec, len(body))

    def _codec(
        self, request: ResponsesRequest, translated: Translated, key_id: str | None
    ) -> ResponsesCodec:
        def done(response: dict[str, Any]) -> None:
            if request.stored:
                self._store.save(
                    response,
                    key_id=key_id,
                    input_items=stored_items(input_items(request)),
                    previous_response_id=request.previous_response_id,
                )

        def native(response_id: str) -> None:
            if request.stored:
                self._store.save_native(response_id, key_id=key_id, model=request.model)

        return ResponsesCodec(request, translated, on_done=done, on_native=native)

    async def _conversation(
        self, request: ResponsesRequest, caller: KeyRecord | None
    ) -> list[dict[str, Any]] | None:
        """The items of the conversation the request goes on with (None: a response that its
        backend keeps)."""
        if request.previous_response_id is None:
            return []
        stored = await self._store.get(request.previous_response_id, caller.id if caller else None)
        if stored is None:
            raise NotFoundError(
                f"Previous response with id '{request.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if stored.native:
            return None
        return await self._store.conversation(stored)

    async def retrieve(self, request: Request) -> Response:
        stored, caller = await self._stored(request)
        if stored.native:
            return await self._relay(request, stored, "GET", "")
        headers = await self._gateway.limit_headers(caller)
        return json_response(stored.body, headers=headers)

    async def delete(self, request: Request) -> Response:
        stored, caller = await self._stored(request)
        if stored.native:
            await self._store.delete(stored.id, stored.key_id)
            return await self._relay(request, stored, "DELETE", "")
        await self._store.delete(stored.id, stored.key_id)
        headers = await self._gateway.limit_headers(caller)
        deleted = {"id": stored.id, "object": "response", "deleted": True}
        return json_response(deleted, headers=headers)

    async def input_items(self, request: Request) -> Response:
        stored, caller = await self._stored(request)
        if stored.native:
            return await self._relay(request, stored, "GET", "/input_items")
        query = request.query_params
        items = list(stored.input)
        if query.get("order", "desc") == "desc":
            items.reverse()
        if after := query.get("after"):
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = _limit(query.get("limit", "20"))
        page = items[:limit]
        listed = {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
        return json_response(listed, headers=await self._gateway.limit_headers(caller))

    async def _stored(self, request: Request) -> tuple[StoredResponse, KeyRecord | None]:
        caller = self._gateway.authenticate(request.headers.get("authorization"))
        response_id = request.path_params["response_id"]
        stored = await self._store.get(response_id, caller.id if caller else None)
        if stored is None:
            raise NotFoundError(
                f"Response with id '{response_id}' not found.", code="response_not_found"
            )
        return stored, caller

    async def _relay(
        self, request: Request, stored: StoredResponse, method: str, tail: str
    ) -> Response:
        """A stored response that its backend keeps: asked of a deployment that speaks the
        Responses API, of the model that made it."""
        path = f"/responses/{stored.id}{tail}"
        if request.url.query:
            path += f"?{request.url.query}"
        status, payload = await self._gateway.router.relay_native(
            "responses", stored.model, method, path
        )
        return Response(payload, status_code=status, media_type="application/json")


def _kept_upstream() -> InvalidRequestError:
    return InvalidRequestError(
        "The previous response is kept by a backend that speaks the Responses API; only such a "
        "backend can continue it.",
        param="previous_response_id",
    )


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise InvalidRequestError("Invalid value for 'limit': 1 to 100.", param="limit")
    return int(text)
