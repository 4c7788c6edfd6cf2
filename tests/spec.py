"""The wire-format reference in ../shared/spec: validators and a transport that checks traffic.

``ValidatingTransport`` sits under the official SDK's HTTP client and validates every chat,
Responses API, embeddings and legacy completions answer and every stream chunk or event the
server sends against the official JSON Schemas, so a test that uses the SDK also checks the
raw wire format the SDK would otherwise hide.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import jsonschema

SPEC_DIR = Path(
    os.environ.get("LLMRELAY_SPEC_DIR", Path(__file__).resolve().parents[2] / "shared" / "spec")
)


@cache
def _defs(spec: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / spec).read_text())["$defs"]


@cache
def validator(name: str, spec: str = "chat_schemas.json") -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$defs": _defs(spec), "$ref": f"#/$defs/{name}"})


def validate(name: str, payload: Any, spec: str = "chat_schemas.json") -> None:
    """Validate against a schema of ``spec`` (the Chat Completions schemas by default)."""
    validator(name, spec).validate(payload)


RESPONSES = "responses_schemas.json"


@cache
def _event_schemas() -> dict[str, str]:
    """Each Responses stream event's type, and the name of its own schema (validating against
    that one says what is wrong, where ``ResponseStreamEvent``'s anyOf only says "none")."""
    defs = _defs(RESPONSES)
    names = {}
    for ref in defs["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].split("/")[-1]
        for kind in defs[name]["properties"]["type"].get("enum", ()):
            names[kind] = name
    return names


def validate_event(event: dict[str, Any]) -> None:
    """A Responses stream event, against its type's schema and against the union's."""
    validate(_event_schemas()[event["type"]], event, RESPONSES)
    validate("ResponseStreamEvent", event, RESPONSES)


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """The events of an SSE body: each one's ``event:`` name (if it has one) and its data."""
    events = body.decode().split("\n\n")
    assert events[-1] == "", "an SSE body ends with a blank line"
    parsed = []
    for text in events[:-1]:
        name, data = None, []
        for line in text.split("\n"):
            field, _, value = line.partition(": ")
            assert field in ("event", "data"), text
            if field == "event":
                name = value
            else:
                data.append(value)
        parsed.append((name, "\n".join(data)))
    return parsed


def validate_responses_body(status: int, content_type: str, body: bytes, path: str) -> int:
    """Validate one Responses API answer (or stream): every event against the schema, its
    ``event:`` line its type, its sequence numbers growing; how many objects were checked."""
    if status >= 400:
        validate("ErrorResponse", json.loads(body), RESPONSES)
        return 1
    if content_type.startswith("application/json"):
        payload = json.loads(body)
        if path.endswith("/input_items"):
            validate("ResponseItemList", payload, RESPONSES)
        elif not payload.get("deleted"):
            validate("Response", payload, RESPONSES)
        return 1
    assert content_type.startswith("text/event-stream"), content_type
    last = -1
    events = sse_events(body)
    for name, data in events:
        event = json.loads(data)
        assert name == event["type"], f"event: {name} carries {event['type']}"
        validate_event(event)
        assert event["sequence_number"] > last, "sequence numbers only grow"
        last = event["sequence_number"]
    return len(events)


def sse_payloads(body: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    events = body.decode().split("\n\n")
    assert events[-1] == "", "an SSE body ends with a blank line"
    payloads = []
    for event in events[:-1]:
        lines = event.split("\n")
        assert all(line.startswith("data: ") for line in lines), event
        payloads.append("\n".join(line[6:] for line in lines))
    return payloads


def validate_chat_body(status: int, content_type: str, body: bytes) -> int:
    """Validate one /chat/completions response; return how many objects were checked."""
    if status >= 400:
        validate("ErrorResponse", json.loads(body))
        return 1
    if content_type.startswith("application/json"):
        validate("CreateChatCompletionResponse", json.loads(body))
        return 1
    assert content_type.startswith("text/event-stream"), content_type
    payloads = sse_payloads(body)
    checked = 0
    for i, payload in enumerate(payloads):
        if payload == "[DONE]":
            assert i == len(payloads) - 1, "[DONE] is the last event"
            continue
        chunk = json.loads(payload)
        name = "ErrorResponse" if "error" in chunk else "CreateChatCompletionStreamResponse"
        validate(name, chunk)
        checked += 1
    ids = {json.loads(p)["id"] for p in payloads if p != "[DONE]" and '"error"' not in p[:10]}
    assert len(ids) <= 1, f"one id on every chunk, got {ids}"
    return checked


EMBEDDINGS = "embeddings_completions_schemas.json"


def validate_embeddings_body(status: int, content_type: str, body: bytes) -> int:
    """One /embeddings answer; a base64 vector is checked as the floats it holds (OpenAI's
    schema describes the float form alone)."""
    payload = json.loads(body)
    if status >= 400:
        validate("ErrorResponse", payload, EMBEDDINGS)
        return 1
    for item in payload["data"]:
        if isinstance(item["embedding"], str):
            raw = base64.b64decode(item["embedding"])
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    validate("CreateEmbeddingResponse", payload, EMBEDDINGS)
    return 1


def validate_completions_body(status: int, content_type: str, body: bytes) -> int:
    """One legacy /completions answer or stream. A stream's chunks carry ``finish_reason:
    null`` until a choice ends, as OpenAI's own do, where the schema (of the whole answer)
    has a string: checked as if it were one."""
    if status >= 400:
        validate("ErrorResponse", json.loads(body), EMBEDDINGS)
        return 1
    if content_type.startswith("application/json"):
        validate("CreateCompletionResponse", json.loads(body), EMBEDDINGS)
        return 1
    payloads = sse_payloads(body)
    assert payloads[-1] == "[DONE]", "a stream ends with [DONE]"
    for payload in payloads[:-1]:
        chunk = json.loads(payload)
        for choice in chunk["choices"]:
            choice["finish_reason"] = choice["finish_reason"] or "stop"
        validate("CreateCompletionResponse", chunk, EMBEDDINGS)
    return len(payloads) - 1


class _TeeStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """Passes a response body on and hands the whole of it to ``on_close`` at the end."""

    def __init__(self, inner: Any, on_close: Callable[[bytes], None]) -> None:
        self._inner, self._on_close, self._parts = inner, on_close, []

    def __iter__(self) -> Iterator[bytes]:
        for part in self._inner:
            self._parts.append(part)
            yield part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            self._parts.append(part)
            yield part

    def close(self) -> None:
        self._inner.close()
        self._on_close(b"".join(self._parts))

    async def aclose(self) -> None:
        await self._inner.aclose()
        self._on_close(b"".join(self._parts))


class _Recorder:
    """What the validating transports share: the checks made and the failures seen."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked = 0

    def wrap(self, request: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/chat/completions"):
            validate_body = validate_chat_body
        elif "/responses" in path:
            validate_body = functools.partial(validate_responses_body, path=path)
        elif path.endswith("/embeddings"):
            validate_body = validate_embeddings_body
        elif path.endswith("/completions"):
            validate_body = validate_completions_body
        else:
            return response
        status, content_type = response.status_code, response.headers.get("content-type", "")

        def check(body: bytes) -> None:
            try:
                self.checked += validate_body(status, content_type, body)
            except Exception as exc:  # recorded and raised by the fixture after the test
                self.failures.append(f"{type(exc).__name__}: {exc}"[:2000])

        return httpx2.Response(
            status,
            headers=response.headers,
            stream=_TeeStream(response.stream, check),
            extensions=response.extensions,
        )


class ValidatingTransport(httpx2.BaseTransport, _Recorder):
    """Records a failure for any chat response that does not match the spec."""

    def __init__(self) -> None:
        _Recorder.__init__(self)
        self._inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self.wrap(request, self._inner.handle_request(request))

    def close(self) -> None:
        self._inner.close()


class AsyncValidatingTransport(httpx2.AsyncBaseTransport, _Recorder):
    """The same for the async client."""

    def __init__(self) -> None:
        _Recorder.__init__(self)
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self.wrap(request, await self._inner.handle_async_request(request))

    async def aclose(self) -> None:
        await self._inner.aclose()
