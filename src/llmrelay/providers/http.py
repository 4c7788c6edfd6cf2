"""``UpstreamHTTP``: one upstream's pooled aiohttp connection, and its failures mapped once.

Both relaying providers post JSON and read either a JSON answer or ``data:`` lines of a stream;
what can go wrong on the way (unreachable, timeouts, error statuses, a broken stream) becomes an
llmrelay error here, without the upstream's URL or key: an upstream's own error message is passed
on with any configured secret in it replaced by ``***`` (an upstream may echo the key it got).
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from llmrelay.config import Timeouts
from llmrelay.errors import (
    InvalidRequestError,
    LLMRelayError,
    RateLimitError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
    redact,
)
from llmrelay.protocol.events import DONE, data_payloads

_PASSED_HEADERS = ("retry-after", "retry-after-ms")
#: the process (or the system) has no descriptor left: the gateway's fault, not the upstream's
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class UpstreamHTTP:
    """Posts to one URL with fixed headers and timeouts; ``name`` is what errors call it."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        headers: dict[str, str],
        timeouts: Timeouts,
        secrets: Sequence[str] = (),
    ) -> None:
        self._name = name
        self._secrets = secrets
        self._url = url
        self._headers = {"content-type": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.first_byte
        )
        self._session: aiohttp.ClientSession | None = None

    async def post(
        self, body: bytes, url: str | None = None, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """Send the request (to ``url``, or the upstream's own; ``headers`` besides its own);
        a response with an error status is raised as an llmrelay error."""
        return await self._send("POST", url or self._url, body, headers)

    async def relay(
        self, method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        """Another request, its answer whatever its status, secrets taken out of it."""
        response = await self._send(method, url, body, headers, raise_status=False)
        try:
            payload = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self.broken() from exc
        finally:
            response.release()
        text = redact(payload.decode(errors="replace"), self._secrets)
        return response.status, text.encode()

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str] | None = None,
        raise_status: bool = True,
    ) -> aiohttp.ClientResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sent = {**self._headers, **headers} if headers else self._headers
        try:
            response = await self._session.request(
                method, url, data=body, headers=sent, timeout=self._timeout
            )
        except TimeoutError as exc:
            raise self.timed_out() from exc
        except aiohttp.ClientConnectorError as exc:
            if exc.os_error.errno in _OUT_OF_DESCRIPTORS:
                raise UnavailableError(
                    "The server is overloaded. Please try again.", code="server_overloaded"
                ) from exc
            raise self.unreachable() from exc
        except aiohttp.ClientError as exc:
            raise self.unreachable() from exc
        if response.status >= 400 and raise_status:
            try:
                raise await self._error(response)
            finally:
                response.release()
        return response

    async def json(self, response: aiohttp.ClientResponse) -> Any:
        try:
            return await response.json(loads=orjson.loads, content_type=None)
        except TimeoutError as exc:
            raise self.timed_out() from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise UpstreamError(f"The upstream of {self._name} sent no valid answer.") from exc
        finally:
            response.release()

    async def data_blocks(self, response: aiohttp.ClientResponse) -> AsyncIterator[list[bytes]]:
        """The ``data:`` payloads of a stream, one list per read: what arrived together is
        passed on together."""
        rest = b""
        try:
            async for block in response.content.iter_any():
                *lines, rest = (rest + block).split(b"\n")
                if payloads := data_payloads(lines):
                    yield payloads
        except TimeoutError as exc:
            raise self.timed_out() from exc
        except aiohttp.ClientError as exc:
            raise self.broken() from exc
        finally:
            response.close()

    async def raw_blocks(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """A stream's bytes as they arrive, untouched."""
        try:
            async for block in response.content.iter_any():
                yield block
        except TimeoutError as exc:
            raise self.timed_out() from exc
        except aiohttp.ClientError as exc:
            raise self.broken() from exc
        finally:
            response.close()

    async def data_lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
        """The JSON of each ``data:`` line of a stream (``[DONE]`` as the string itself)."""
        async for payloads in self.data_blocks(response):
            for data in payloads:
                yield "[DONE]" if data == DONE else self.loads(data)

    def loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except ValueError as exc:
            raise self.broken() from exc

    def unreachable(self) -> UpstreamError:
        return UpstreamError(f"The upstream of {self._name} could not be reached.")

    def broken(self) -> UpstreamError:
        return UpstreamError(f"The upstream of {self._name} broke the stream.")

    def timed_out(self) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(f"The upstream of {self._name} did not answer in time.")

    async def _error(self, response: aiohttp.ClientResponse) -> LLMRelayError:
        headers = {h: response.headers[h] for h in _PASSED_HEADERS if h in response.headers}
        try:
            body = await response.json(loads=orjson.loads, content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            body = {}
        if response.status in (401, 403):
            return UpstreamError(f"The upstream of {self._name} refused llmrelay's credentials.")
        if response.status >= 500 or not isinstance(body, dict) or "error" not in body:
            return UpstreamError(f"The upstream of {self._name} failed (HTTP {response.status}).")
        return self.error_from_body(response.status, body, headers)

    def error_from_body(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> LLMRelayError:
        """An upstream's error as it said it (status, type, param, code), secrets redacted:
        OpenAI's and Anthropic's bodies both carry an ``error`` object with a ``message`` and a
        ``type``."""
        exc = _from_body(status, body, headers or {})
        exc.message = redact(exc.message, self._secrets)
        exc.args = (exc.message,)
        return exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _from_body(status: int, body: dict[str, Any], headers: dict[str, str]) -> LLMRelayError:
    error = body.get("error") or {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    family: type[LLMRelayError] = UpstreamError
    if status == 429:
        family = RateLimitError
    elif status < 500:
        family = InvalidRequestError
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
