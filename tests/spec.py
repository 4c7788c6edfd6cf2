"""The wire-format reference in ../shared/spec: validators and a transport that checks traffic.

``ValidatingTransport`` sits under the official SDK's HTTP client and validates every chat
response and every stream chunk the server sends against the official JSON Schemas, so a test
that uses the SDK also checks the raw wire format the SDK would otherwise hide.
"""

from __future__ import annotations

import json
import os
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
def _defs() -> dict[str, Any]:
    return json.loads((SPEC_DIR / "chat_schemas.json").read_text())["$defs"]


@cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$defs": _defs(), "$ref": f"#/$defs/{name}"})


def validate(name: str, payload: Any) -> None:
    validator(name).validate(payload)


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
        if not request.url.path.endswith("/chat/completions"):
            return response
        status, content_type = response.status_code, response.headers.get("content-type", "")

        def check(body: bytes) -> None:
            try:
                self.checked += validate_chat_body(status, content_type, body)
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
