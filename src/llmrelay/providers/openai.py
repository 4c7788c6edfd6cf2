"""``OpenAIProvider``: relays to any OpenAI-compatible upstream over pooled aiohttp connections.

Requests pass through as the client sent them (only ``model`` becomes the upstream's name, and
streams ask for usage); answers and stream chunks come back as the upstream sent them, chunk by
chunk. Upstream failures become llmrelay errors here, once, without the upstream's URL or key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import orjson

from llmrelay.config import OpenAIModelConfig
from llmrelay.errors import (
    InvalidRequestError,
    LLMRelayError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import Chunk, Provider

_PASSED_HEADERS = ("retry-after", "retry-after-ms")


class OpenAIProvider(Provider):
    """One OpenAI-compatible deployment.

    >>> OpenAIProvider(OpenAIModelConfig(name="gpt-4o", base_url="https://api.openai.com/v1",
    ...                                  model="gpt-4o", api_key=Secret("sk-...")))
    """

    owned_by = "upstream"

    def __init__(self, config: OpenAIModelConfig) -> None:
        self.model_name = config.name
        self._config = config
        self._url = f"{config.base_url}/chat/completions"
        self._headers = {"content-type": "application/json"}
        if config.api_key:
            self._headers["authorization"] = f"Bearer {config.api_key}"
        self._timeout = aiohttp.ClientTimeout(
            total=config.timeouts.total,
            sock_connect=config.timeouts.connect,
            sock_read=config.timeouts.first_byte,
        )
        self._session: aiohttp.ClientSession | None = None

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        response = await self._post(self._body(request, stream=False))
        try:
            return await response.json(loads=orjson.loads, content_type=None)  # type: ignore[no-any-return]
        except (aiohttp.ClientError, ValueError) as exc:
            raise UpstreamError(f"The upstream of {self.model_name} sent no valid answer.") from exc
        except TimeoutError as exc:
            raise self._timed_out() from exc
        finally:
            response.release()

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        response = await self._post(self._body(request, stream=True))
        return self._chunks(response)

    async def _chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        try:
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                chunk = orjson.loads(data)
                if "error" in chunk:
                    raise _from_error_body(502, chunk, {})
                yield chunk
            raise UpstreamError(f"The upstream of {self.model_name} ended the stream early.")
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise UpstreamError(f"The upstream of {self.model_name} broke the stream.") from exc
        finally:
            response.close()

    def _body(self, request: ChatRequest, *, stream: bool) -> bytes:
        payload = msgspec.to_builtins(request)
        payload["model"] = self._config.model
        if stream and self._config.stream_usage:
            payload["stream_options"] = {**payload.get("stream_options", {}), "include_usage": True}
        return orjson.dumps(payload)

    async def _post(self, body: bytes) -> aiohttp.ClientResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            response = await self._session.post(
                self._url, data=body, headers=self._headers, timeout=self._timeout
            )
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"The upstream of {self.model_name} could not be reached.") from exc
        if response.status >= 400:
            try:
                raise await self._error(response)
            finally:
                response.release()
        return response

    async def _error(self, response: aiohttp.ClientResponse) -> LLMRelayError:
        headers = {h: response.headers[h] for h in _PASSED_HEADERS if h in response.headers}
        try:
            body = await response.json(loads=orjson.loads, content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            body = {}
        if response.status in (401, 403):
            return UpstreamError(
                f"The upstream of {self.model_name} refused llmrelay's credentials."
            )
        if response.status >= 500 or not isinstance(body, dict) or "error" not in body:
            return UpstreamError(
                f"The upstream of {self.model_name} failed (HTTP {response.status})."
            )
        return _from_error_body(response.status, body, headers)

    def _timed_out(self) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(f"The upstream of {self.model_name} did not answer in time.")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _from_error_body(status: int, body: dict[str, Any], headers: dict[str, str]) -> LLMRelayError:
    """An upstream's OpenAI-shaped error, kept as it said it (status, type, param, code)."""
    error = body.get("error") or {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    family = {429: RateLimitError}.get(
        status, InvalidRequestError if status < 500 else UpstreamError
    )
    exc = family(
        str(error.get("message") or "The upstream refused the request."),
        param=error.get("param"),
        code=error.get("code"),
        headers=headers,
    )
    exc.status = status
    if error.get("type"):
        exc.type = str(error["type"])
    return exc
