"""What a provider is: one backend protocol behind one small interface.

A provider gets a validated ``ChatRequest`` and returns either a complete ``chat.completion``
object or an async iterator of ``chat.completion.chunk`` objects, always ending with a usage
chunk (``choices: []``); the HTTP edge passes that one on only if the client asked for it. It
records what the ledger needs in the request's ``Outcome``: the model that answered and the
usage, also of an answer cut short by a client that left. A provider whose backend speaks the
client's own API (Anthropic's Messages API, OpenAI's Responses API) may take the request as the
client sent it and answer in that API (``native_apis``, ``relay``): nothing is translated.

Errors found before generation starts (a parameter the backend cannot honour, a prompt too
long) are raised from ``complete``/``stream`` themselves, so they reach the client with their
HTTP status; a failure after that is raised from the iterator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from llmrelay.errors import InvalidRequestError
from llmrelay.outcome import Outcome
from llmrelay.protocol.request import ChatRequest
from llmrelay.protocol.translated import Translated
from llmrelay.providers.counting import counted_usage

Chunk = dict[str, Any]
#: A chunk object, or bytes: chunks an upstream already framed as server-sent events, which are
#: passed on as they are (a relaying provider decodes only those that carry usage or an error).
StreamItem = Chunk | bytes


class ChunkStream(Protocol):
    """An async iterator of stream items that can be closed early (an async generator is one)."""

    def __aiter__(self) -> AsyncIterator[StreamItem]: ...

    async def __anext__(self) -> StreamItem: ...

    async def aclose(self) -> None: ...


class Call:
    """A request as the router hands it to each deployment: the chat request any backend can
    answer, and the inbound API with its body as the client sent it, for a backend that speaks
    that API itself. A request the chat format cannot say (a built-in tool, say) has no ``chat``
    but the error that says why (``untranslatable``): only a backend that speaks its API can
    answer it. ``max_output`` and ``choices``: the output it may ask for, for the limits;
    ``headers``: the client's headers a backend of its API takes (``anthropic-beta``);
    ``request``: the request as its API's route parsed it, for a backend that answers it.
    (A class of slots rather than a frozen dataclass, whose fields are set five times slower,
    on every request.)"""

    __slots__ = (
        "api",
        "body",
        "chat",
        "choices",
        "headers",
        "max_output",
        "model",
        "request",
        "stream",
        "untranslatable",
    )

    def __init__(
        self,
        *,
        model: str,
        stream: bool,
        chat: ChatRequest | None,
        api: str = "chat",
        body: bytes = b"",
        max_output: int | None = None,
        choices: int = 1,
        untranslatable: InvalidRequestError | None = None,
        headers: Mapping[str, str] | None = None,
        request: Any = None,
    ) -> None:
        self.model = model
        self.stream = stream
        self.chat = chat
        self.api = api
        self.body = body
        self.max_output = max_output
        self.choices = choices
        self.untranslatable = untranslatable
        self.headers = headers or {}  # the client's, for a backend that speaks its API
        self.request = request

    @classmethod
    def of_chat(cls, chat: ChatRequest, body: bytes = b"") -> Call:
        return cls(
            model=chat.model,
            stream=bool(chat.stream),
            chat=chat,
            body=body,
            max_output=chat.completion_limit,
            choices=chat.n or 1,
        )

    @classmethod
    def of_translated(
        cls,
        api: str,
        request: Any,
        translated: Translated,
        body: bytes,
        *,
        max_output: int | None,
        headers: Mapping[str, str] | None = None,
    ) -> Call:
        """A request of ``api`` (``request``: as its route parsed it), with its chat request
        (or the error that says why there is none)."""
        return cls(
            model=request.model,
            stream=bool(request.stream),
            chat=translated.chat,
            api=api,
            body=body,
            max_output=max_output,
            untranslatable=translated.error,
            headers=headers,
            request=request,
        )

    def chat_request(self) -> ChatRequest:
        """The chat request, for a backend that does not speak the call's API natively."""
        if self.chat is None:
            assert self.untranslatable is not None
            raise self.untranslatable
        return self.chat


class Provider(ABC):
    #: The name responses carry in ``model``: the model that really answers.
    model_name: str
    owned_by: str = "llmrelay"
    #: the longest answer to expect when a request sets no maximum (limits reserve this much)
    max_output_tokens: int = 4096
    #: the most a request may ask for: a larger ask is lowered to it (None: no cap)
    output_cap: int | None = None
    #: the inbound APIs this provider takes as the client sent them (``relay``)
    native_apis: frozenset[str] = frozenset()

    @abstractmethod
    async def complete(self, request: ChatRequest, outcome: Outcome) -> dict[str, Any]:
        """Answer the request whole."""

    @abstractmethod
    async def stream(self, request: ChatRequest, outcome: Outcome) -> ChunkStream:
        """Check the request, then return the iterator of its chunks."""

    async def relay(self, call: Call, outcome: Outcome) -> dict[str, Any] | ChunkStream:
        """Answer a request of one of ``native_apis`` in that API: its answer whole, or the
        iterator of its events as the backend framed them (bytes)."""
        raise NotImplementedError(f"{type(self).__name__} relays no API natively")

    async def relay_request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        """Another request of a native API (``GET /responses/{id}``, say), relayed: the status
        and body the backend answered."""
        raise NotImplementedError(f"{type(self).__name__} relays no API natively")

    async def prompt_tokens(self, request: ChatRequest) -> int:
        """The tokens the request's prompt takes here, as an answer's usage would count them:
        estimated with the built-in tokenizer, unless the provider can tell exactly."""
        return (await counted_usage(request, []))["prompt_tokens"]

    def output_tokens(self, asked: int | None) -> int:
        """The longest answer a request that asks for ``asked`` tokens (None: no limit) gets."""
        tokens = asked or self.max_output_tokens
        return tokens if self.output_cap is None else min(tokens, self.output_cap)

    def status(self) -> dict[str, Any]:
        """What ``/health`` reports of this provider."""
        return {}

    async def aclose(self) -> None:  # noqa: B027 - most providers hold nothing to close
        """Release what the provider holds (connections, a loaded model)."""
