"""``Router``: from the model a client asks for to the deployment that answers it.

A public model name has one or more deployments. Each request tries them in a weighted random
order, healthy ones first; a deployment that fails with a connection error, a timeout, a 429 or a
5xx before anything reached the client is not tried again for that request, and the request goes
on to the next deployment, then to the model's fallback models. A deployment that fails
``cooldown.failures`` times in a row rests for ``cooldown.seconds``, then gets one request again
(a probe) and is back on success. Every decision is logged with the request id.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from llmrelay import context
from llmrelay.errors import LLMRelayError, NotFoundError, RateLimitError
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import Chunk, Provider

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
    failures: int = 0
    resting_until: float = 0.0


def _retryable(exc: LLMRelayError) -> bool:
    return isinstance(exc, RateLimitError) or exc.status >= 500


class Router:
    """Maps public model names (and aliases) to deployments; retries and falls back."""

    def __init__(
        self,
        routes: Mapping[str, Sequence[Deployment]],
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        cooldown: Cooldown | None = None,
    ) -> None:
        self._routes = {name: list(deployments) for name, deployments in routes.items()}
        self._fallbacks = {name: list(models) for name, models in (fallbacks or {}).items()}
        self._cooldown = cooldown or Cooldown()

    def resolve(self, model: str) -> list[Deployment]:
        deployments = self._routes.get(model)
        if not deployments:
            raise NotFoundError(
                f"The model `{model}` does not exist or you do not have access to it.",
            )
        return deployments

    async def complete(self, request: ChatRequest) -> dict[str, Any]:
        return await self._first_success(request.model, lambda p: p.complete(request))

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """The first deployment whose stream yields its first chunk answers."""

        async def open_stream(provider: Provider) -> AsyncIterator[Chunk]:
            chunks = await provider.stream(request)
            return _prepend(await anext(chunks), chunks)

        return await self._first_success(request.model, open_stream)

    async def _first_success(self, model: str, call: Callable[[Provider], Awaitable[T]]) -> T:
        last: LLMRelayError | None = None
        for deployment in self._attempts(model):
            try:
                result = await call(deployment.provider)
            except LLMRelayError as exc:
                if not _retryable(exc):
                    raise
                last = self._failed(deployment, exc)
                continue
            self._succeeded(deployment)
            return result
        assert last is not None, "every model has at least one deployment"
        raise last

    def _attempts(self, model: str) -> Iterator[Deployment]:
        """Each deployment of the model, then of its fallbacks, at most once, best first."""
        seen: set[int] = set()
        for name in [model, *self._fallbacks.get(model, ())]:
            for deployment in self._order(self.resolve(name)):
                if id(deployment) not in seen:
                    seen.add(id(deployment))
                    if name != model:
                        log.info("request %s: falling back to %s", context.request_id.get(), name)
                    yield deployment

    def _order(self, deployments: list[Deployment]) -> list[Deployment]:
        now = time.monotonic()
        # weighted random order without replacement (Efraimidis-Spirakis keys)
        ranked = sorted(deployments, key=lambda d: random.random() ** (1 / d.weight), reverse=True)
        healthy = [d for d in ranked if d.resting_until <= now]
        return healthy + [d for d in ranked if d.resting_until > now]

    def _failed(self, deployment: Deployment, exc: LLMRelayError) -> LLMRelayError:
        deployment.failures += 1
        if deployment.failures >= self._cooldown.failures:
            deployment.resting_until = time.monotonic() + self._cooldown.seconds
        log.warning(
            "request %s: %s failed (%s: %s); failures in a row %d%s",
            context.request_id.get(),
            deployment.label,
            exc.status,
            exc.message,
            deployment.failures,
            ", resting" if deployment.resting_until > time.monotonic() else "",
        )
        return exc

    def _succeeded(self, deployment: Deployment) -> None:
        if deployment.failures:
            log.info(
                "request %s: %s is answering again", context.request_id.get(), deployment.label
            )
        deployment.failures, deployment.resting_until = 0, 0.0

    def model_names(self) -> list[str]:
        return list(self._routes)

    def owned_by(self, model: str) -> str:
        return self.resolve(model)[0].provider.owned_by

    def providers(self) -> Iterable[Provider]:
        every = (d.provider for deployments in self._routes.values() for d in deployments)
        return {id(p): p for p in every}.values()

    async def aclose(self) -> None:
        for provider in self.providers():
            await provider.aclose()


async def _prepend(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    yield first
    async for chunk in rest:
        yield chunk
