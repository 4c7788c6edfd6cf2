"""``create_app(config)``: compose the layers into one ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp

from llmrelay.api.errors import EXCEPTION_HANDLERS
from llmrelay.api.middleware import RequestIdMiddleware
from llmrelay.api.routes import Routes
from llmrelay.config import (
    PROVIDER_TYPES,
    AnthropicModelConfig,
    Config,
    LocalModelConfig,
    ModelConfig,
    OpenAIModelConfig,
)
from llmrelay.engine.local import LocalEngine
from llmrelay.engine.model import builtin_model_path
from llmrelay.gateway.auth import KeyChecker
from llmrelay.gateway.pipeline import Gateway
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import Provider
from llmrelay.providers.local import LocalProvider
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.router.router import Cooldown, Deployment, Router


def build_provider(model: ModelConfig) -> Provider:
    """The provider of one configured model; a local model is loaded here, once."""
    if isinstance(model, OpenAIModelConfig):
        return OpenAIProvider(model)
    if isinstance(model, AnthropicModelConfig):
        return AnthropicProvider(model)
    engine = LocalEngine(
        model.path or builtin_model_path(),
        slots=model.parallel,
        context=model.context,
        threads=model.threads,
    )
    return LocalProvider(model.name, engine, max_output_tokens=model.max_output_tokens)


def build_router(config: Config) -> Router:
    """Map every model name and alias to its deployments (entries that share a name)."""
    routes: dict[str, list[Deployment]] = {}
    for model in config.models:
        deployments = routes.setdefault(model.name, [])
        label = f"{model.name}#{len(deployments)} ({PROVIDER_TYPES[type(model)]})"
        # a local model queues by itself (its ``parallel`` slots)
        limit = None if isinstance(model, LocalModelConfig) else model.max_concurrency
        deployments.append(Deployment(build_provider(model), label, model.weight, limit))
        for alias in model.aliases:
            routes[alias] = deployments
    cooldown = Cooldown(failures=config.cooldown_failures, seconds=config.cooldown_seconds)
    return Router(routes, config.fallbacks, cooldown)


def create_app(config: Config, key_hashes: Iterable[str]) -> ASGIApp:
    router = build_router(config)
    gateway = Gateway(KeyChecker(key_hashes), router)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await router.aclose()

    routes = Routes(gateway, max_body_bytes=config.max_body_bytes)
    app = Starlette(
        routes=routes.routes(),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    return RequestIdMiddleware(app)
