"""``Router``: from the model a client asks for to the deployment that answers it.

A public model name has one or more deployments. Each request tries them in a weighted random
order, healthy ones first; a deployment that fails with a connection error, a timeout, a 429 or a
5xx before anything reached the client is not tried again for that request, and the request goes
on to the next deployment, then to the model's fallback models. A deployment that fails
``cooldown.failures`` times in a row rests for ``cooldown.seconds``, then gets one request again
(a probe) and is back on success. A deployment with ``max_concurrency`` holds at most that many
requests (streams until their end); while it is full the others are tried first, and a request
that finds every deployment full waits for the first of them to free a place. Every decision is
logged with the request id.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import time
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from llmrelay.errors import LLMRelayError, NotFoundError, RateLimitError, UnavailableError
from llmrelay.outcome import Outcome
from llmrelay.pricing.price import Price
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import Call, ChunkStream, Provider, StreamItem

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Cooldown:
    failures: int = 3
    seconds: float = 30.0


@dataclass(eq=False)
class Deployment:
    """One backend of a public model name, and how it has been doing."""

    provider: Provider
    label: str
    weight: float = 1.0
    max_concurrency: int | None = None
    #: what its tokens cost (None: no price is known, and its requests are recorded unpriced)
    price: Price | None = None
    failures: int = 0
    resting_until: float = 0.0
    in_flight: int = 0

    def __post_init__(self) -> None:
        limit = self.max_concurrency
        self._places = asyncio.Semaphore(limit) if limit else None

    def full(self) -> bool:
        return self._places is not None and self._places.locked()

    async def enter(self) -> None:
        if self._places is not None:
            await self._places.acquire()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self._places is not None:
            self._places.release()

    def health(self, now: float) -> dict[str, Any]:
        return {
            "deployment": self.label,
            "state": "resting" if self.resting_until > now else "ok",
            "failures_in_a_row": self.failures,
            "in_flight": self.in_flight,
            "max_concurrency": self.max_concurrency,
            **self.provider.status(),
        }


class Answer(NamedTuple):
    """A whole answer: a ``chat.completion``, or (``native``) an answer in the client's own API
    from a deployment that speaks it."""

    body: dict[str, Any]
    native: bool = False


def _retryable(exc: LLMRelayError) -> bool:
    """Whether the deployment failed (and another may answer); not when the fault is the
    gateway's own (``UnavailableError``: out of descriptors, say)."""
    if isinstance(exc, UnavailableError):
        return False
    return isinstance(exc, RateLimitError) or exc.status >= 500


class Router:
    """Maps public model names (and their aliases) to deployments; retries and falls back."""

    def __init__(
        self,
        models: Mapping[str, Sequence[Deployment]],
        aliases: Mapping[str, str] | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        cooldown: Cooldown | None = None,
        model_map: Mapping[str, str] | None = None,
    ) -> None:
        """``model_map``: wildcard patterns (``claude-*``), each with the model that answers a
        name it matches and no model or alias has."""
        self._models = {name: list(deployments) for name, deployments in models.items()}
        self._aliases = dict(aliases or {})  # alias -> model name
        self._fallbacks = {name: list(models) for name, models in (fallbacks or {}).items()}
        self._cooldown = cooldown or Cooldown()
        self._patterns = list((model_map or {}).items())

    def mapped(self, model: str) -> str | None:
        """The model a wildcard of ``model_map`` gives a name that no model or alias has."""
        if model in self._models or model in self._aliases:
            return None
        for pattern, target in self._patterns:
            if fnmatch.fnmatchcase(model, pattern):
                return target
        return None

    def _name(self, model: str) -> str:
        """The configured model that answers a name (itself, an alias, or a wildcard's)."""
        name = self._aliases.get(model, model)
        if name not in self._models and (target := self.mapped(model)) is not None:
            return self._aliases.get(target, target)
        return name

    def resolve(self, model: str) -> list[Deployment]:
        deployments = self._models.get(self._name(model))
        if not deployments:
            raise NotFoundError(
                f"The model `{model}` does not exist or you do not have access to it.",
            )
        return deployments

    async def complete(self, call: Call, outcome: Outcome) -> Answer:
        # (a lambda that hands on the provider's coroutine, not a coroutine of its own: one
        # fewer on every request)
        result, deployment = await self._first_success(
            call.model,
            lambda p: (
                p.relay(call, outcome)
                if call.api in p.native_apis
                else p.complete(call.chat_request(), outcome)
            ),
            outcome,
        )
        deployment.leave()
        if call.api in deployment.provider.native_apis:
            assert isinstance(result, dict), "a whole answer for a request that streams not"
            return Answer(result, native=True)
        return Answer(result)  # type: ignore[arg-type]

    async def stream(self, call: Call, outcome: Outcome) -> HeldStream:
        """The first deployment whose stream yields its first chunk answers."""

        async def open_stream(provider: Provider) -> HeldStream:
            native = call.api in provider.native_apis
            if native:
                chunks = await provider.relay(call, outcome)
                assert not isinstance(chunks, dict), "a stream for a request that streams"
            else:
                chunks = await provider.stream(call.chat_request(), outcome)
            try:
                return HeldStream(await anext(chunks), chunks, native)
            except BaseException:
                await chunks.aclose()
                raise

        held, deployment = await self._first_success(call.model, open_stream, outcome)
        held.holding(deployment)
        return held

    async def _first_success(
        self, model: str, call: Callable[[Provider], Awaitable[T]], outcome: Outcome
    ) -> tuple[T, Deployment]:
        """The first answer, from the deployment that gave it, whose place the caller holds.
        The outcome names the deployment of each attempt: the one that answered, failed last, or
        was answering when the client left."""
        last: LLMRelayError | None = None
        attempts = self._attempts(model)
        while attempts:
            # a deployment with room first; when all are full, wait for the best one
            name, deployment = next(((n, d) for n, d in attempts if not d.full()), attempts[0])
            attempts.remove((name, deployment))
            if name != model:
                log.info("request %s: falling back to %s", outcome.request_id, name)
            await deployment.enter()
            outcome.deployment = deployment.label
            outcome.price = deployment.price
            try:
                result = await call(deployment.provider)
            except LLMRelayError as exc:
                deployment.leave()
                if not _retryable(exc):
                    raise
                last = self._failed(deployment, exc, outcome.request_id)
                continue
            except BaseException:
                deployment.leave()
                raise
            self._succeeded(deployment, outcome.request_id)
            return result, deployment
        assert last is not None, "every model has at least one deployment"
        raise last

    def _attempts(self, model: str) -> list[tuple[str, Deployment]]:
        """Each deployment of the model, then of its fallbacks, at most once, best first."""
        attempts: list[tuple[str, Deployment]] = []
        seen: set[int] = set()
        fallbacks = self._fallbacks.get(model) or self._fallbacks.get(self._name(model)) or []
        for name in [model, *fallbacks]:
            for deployment in self._order(self.resolve(name)):
                if id(deployment) not in seen:
                    seen.add(id(deployment))
                    attempts.append((name, deployment))
        return attempts

    def _order(self, deployments: list[Deployment]) -> list[Deployment]:
        now = time.monotonic()
        # weighted random order without replacement (Efraimidis-Spirakis keys)
        ranked = sorted(deployments, key=lambda d: random.random() ** (1 / d.weight), reverse=True)
        healthy = [d for d in ranked if d.resting_until <= now]
        return healthy + [d for d in ranked if d.resting_until > now]

    def _failed(self, deployment: Deployment, exc: LLMRelayError, request_id: str) -> LLMRelayError:
        deployment.failures += 1
        if deployment.failures >= self._cooldown.failures:
            deployment.resting_until = time.monotonic() + self._cooldown.seconds
        log.warning(
            "request %s: %s failed (%s: %s); failures in a row %d%s",
            request_id,
            deployment.label,
            exc.status,
            exc.message,
            deployment.failures,
            ", resting" if deployment.resting_until > time.monotonic() else "",
        )
        return exc

    def _succeeded(self, deployment: Deployment, request_id: str) -> None:
        if deployment.failures:
            log.info("request %s: %s is answering again", request_id, deployment.label)
        deployment.failures, deployment.resting_until = 0, 0.0

    async def prompt_tokens(self, model: str, request: ChatRequest) -> int:
        """The tokens ``request``'s prompt takes on ``model``, as its first deployment counts
        them."""
        return await self.resolve(model)[0].provider.prompt_tokens(request)

    def speaks(self, api: str, model: str) -> Provider | None:
        """A provider of ``model`` that speaks ``api`` itself, if it has one."""
        for deployment in self.resolve(model):
            if api in deployment.provider.native_apis:
                return deployment.provider
        return None

    async def relay_native(
        self,
        api: str,
        model: str,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] = {},
    ) -> tuple[int, bytes]:
        """A request of ``api`` that is not a generation (about a stored response, to count
        tokens), asked of a deployment of ``model`` that speaks it: its status and body."""
        provider = self.speaks(api, model)
        if provider is None:
            raise NotFoundError(f"No deployment of `{model}` speaks this API itself.")
        return await provider.relay_request(method, path, body, headers)

    def model_names(self) -> list[str]:
        """Every name clients may ask for: each model, followed by its aliases."""
        return [
            name
            for model in self._models
            for name in [model, *(a for a, target in self._aliases.items() if target == model)]
        ]

    def health(self) -> dict[str, list[dict[str, Any]]]:
        """Each configured model (not its aliases) with the state of each of its deployments."""
        now = time.monotonic()
        return {name: [d.health(now) for d in ds] for name, ds in self._models.items()}

    def output_tokens(self, model: str, asked: int | None) -> int:
        """The longest answer the request may get from any deployment of ``model``."""
        return max(d.provider.output_tokens(asked) for d in self.resolve(model))

    def worst_price(self, model: str) -> Price | None:
        """The dearest of each rate among the model's deployments (None: one has no price)."""
        deployments = self.resolve(model)
        prices = [d.price for d in deployments if d.price is not None]
        if len(prices) < len(deployments):
            return None
        return Price.dearest(prices)

    def owned_by(self, model: str) -> str:
        return self.resolve(model)[0].provider.owned_by

    async def aclose(self) -> None:
        for deployments in self._models.values():
            for deployment in deployments:
                await deployment.provider.aclose()


class HeldStream:
    """The stream from its first item on, holding its deployment's place until it ends or is
    closed (also when it is closed before anyone read from it). ``native``: its items are events
    of the client's own API, as a deployment that speaks it framed them."""

    def __init__(self, first: StreamItem, rest: ChunkStream, native: bool = False) -> None:
        self._first: StreamItem | None = first
        self._rest = rest
        self._deployment: Deployment | None = None
        self.native = native

    def holding(self, deployment: Deployment) -> None:
        self._deployment = deployment

    def __aiter__(self) -> HeldStream:
        return self

    async def __anext__(self) -> StreamItem:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        try:
            return await anext(self._rest)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._deployment is not None:
            self._deployment.leave()
            self._deployment = None
        await self._rest.aclose()
