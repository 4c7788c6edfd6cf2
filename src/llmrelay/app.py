"""``create_app(config)``: compose the layers into one ASGI application."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp

from llmrelay.api.admin import AdminRoutes
from llmrelay.api.errors import EXCEPTION_HANDLERS
from llmrelay.api.messages import MessagesRoutes
from llmrelay.api.metrics import MetricsRoute
from llmrelay.api.middleware import Observer, RequestIdMiddleware
from llmrelay.api.responses import ResponsesRoutes
from llmrelay.api.routes import Routes
from llmrelay.config import (
    PROVIDER_TYPES,
    AnthropicModelConfig,
    Config,
    EmbeddingModelConfig,
    ModelConfig,
    OpenAIModelConfig,
    RemoteModelConfig,
)
from llmrelay.console.routes import Console, Refused, refused
from llmrelay.engine.packaged import embedding_model_dir
from llmrelay.gateway.auth import KeyChecker
from llmrelay.gateway.counters import Counters, LocalCounters, SharedCounters
from llmrelay.gateway.limits import Limiter
from llmrelay.gateway.periodic import Periodic
from llmrelay.gateway.pipeline import Gateway
from llmrelay.observe.metrics import Metrics
from llmrelay.observe.requestlog import RequestLog
from llmrelay.pricing.price import FREE, Price, published_price
from llmrelay.providers.anthropic import AnthropicProvider
from llmrelay.providers.base import Provider
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.router.router import Cooldown, Deployment, Router
from llmrelay.store.database import Database, sqlite_url
from llmrelay.store.keys import KeyStore
from llmrelay.store.ledger import Ledger
from llmrelay.store.responses import ResponseStore
from llmrelay.store.spool import Spool

log = logging.getLogger(__name__)
#: container allocations (less deallocations) between young-generation collections
GC_THRESHOLD = 10_000
#: seconds between deletions of usage rows past their retention (one runs at start too)
RETENTION_SECONDS = 3600.0
#: seconds a stop gives requests it cancelled to record themselves
DRAIN_SECONDS = 2.0


def build_provider(model: ModelConfig, secrets: list[str]) -> Provider:
    """The provider of one configured model; a local model is loaded here, once. ``secrets``:
    what an upstream's error messages must not show."""
    if isinstance(model, OpenAIModelConfig):
        return OpenAIProvider(model, secrets=secrets)
    if isinstance(model, AnthropicModelConfig):
        return AnthropicProvider(model, secrets=secrets)
    if isinstance(model, EmbeddingModelConfig):
        from llmrelay.providers.local_embeddings import LocalEmbeddingProvider

        directory = model.path or embedding_model_dir()
        assert directory is not None, "checked with the config"
        return LocalEmbeddingProvider(model.name, directory)
    # llama.cpp (and numpy) are imported only by a server that runs a local model: a pure
    # gateway stays some 40 MB smaller
    from llmrelay.engine.local import LocalEngine
    from llmrelay.engine.model import builtin_model_path
    from llmrelay.providers.local import LocalProvider

    engine = LocalEngine(
        model.path or builtin_model_path(),
        slots=model.parallel,
        context=model.context,
        threads=model.threads,
    )
    return LocalProvider(model.name, engine, max_output_tokens=model.max_output_tokens)


def deployment_price(model: ModelConfig, config: Config) -> Price | None:
    """A deployment's price: its own, else the config's for its upstream or public name, else
    the published one for its upstream name; a model run here costs nothing unless priced."""
    upstream = model.model if isinstance(model, RemoteModelConfig) else model.name
    for prices in (model.price, config.prices.get(upstream), config.prices.get(model.name)):
        if prices is not None:
            return Price.of(prices)
    if not isinstance(model, RemoteModelConfig):
        return FREE
    return published_price(upstream)


def build_router(config: Config) -> Router:
    """Map every model name to its deployments (entries that share a name), and its aliases."""
    models: dict[str, list[Deployment]] = {}
    aliases: dict[str, str] = {}
    for model in config.models:
        deployments = models.setdefault(model.name, [])
        label = f"{model.name}#{len(deployments)} ({PROVIDER_TYPES[type(model)]})"
        # a local model queues by itself (its ``parallel`` slots)
        limit = model.max_concurrency if isinstance(model, RemoteModelConfig) else None
        provider = build_provider(model, config.secrets())
        price = deployment_price(model, config)
        if price is None:
            log.warning(
                "%s has no price (neither in the config nor published for %r): its requests "
                "are recorded as unpriced; set `price:` on it or `prices:` in the config",
                label,
                getattr(model, "model", model.name),
            )
        deployments.append(Deployment(provider, label, model.weight, limit, price))
        aliases.update(dict.fromkeys(model.aliases, model.name))
    cooldown = Cooldown(failures=config.cooldown.failures, seconds=config.cooldown.seconds)
    return Router(models, aliases, config.fallbacks, cooldown, config.model_map)


def build_counters(config: Config) -> Counters:
    if config.redis_url is None:
        return LocalCounters()
    limits = config.limits
    return SharedCounters(
        config.redis_url, timeout=limits.redis_timeout, failure=limits.redis_failure
    )


def database_url(config: Config) -> str:
    return config.database_url or sqlite_url(config.data_dir)


def spool(config: Config) -> Spool:
    """Where the ledger's rows wait on disk until the database has them."""
    return Spool(config.data_dir / "spool")


class Prepared(NamedTuple):
    """What preparing the store did: the first key it created (to print), the usage rows an
    earlier run left in the spool that it wrote."""

    first_key: str | None
    rows_from_spool: int


def prepare_store(config: Config, static_hashes: list[str]) -> Prepared:
    """Migrate the store, write what an earlier run left in the ledger's spool (before any
    budget is counted from the ledger), and with no key anywhere create a first one.

    It runs in a process of its own, so that Alembic (some 10 MB) stays out of the server's.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_prepare_store, config, static_hashes).result()


def _prepare_store(config: Config, static_hashes: list[str]) -> Prepared:
    return asyncio.run(_prepare_store_async(config, static_hashes))


async def _prepare_store_async(config: Config, static_hashes: list[str]) -> Prepared:
    database = Database(database_url(config))
    try:
        await database.migrate()
        written = 0
        if config.usage_ledger:
            ledger = Ledger(database, spool=spool(config))
            written = await ledger.write_spool()
            await ledger.aclose()
            await _delete_old_usage(ledger, config.usage_retention_days)
        store = KeyStore(database)
        if static_hashes or await store.count():
            return Prepared(None, written)
        _, key = await store.create("default")
        return Prepared(key, written)
    finally:
        await database.aclose()


def create_app(config: Config, static_hashes: Iterable[str], admin_hash: str) -> ASGIApp:
    """The application; the store must have been prepared (``prepare_store``)."""
    router = build_router(config)
    database = Database(database_url(config))
    store = KeyStore(database)
    keys = KeyChecker(static_hashes, store)
    ledger = Ledger(database, spool=spool(config) if config.usage_ledger else None)
    limiter = Limiter(ledger, build_counters(config))
    observers: list[Observer] = []
    request_log = RequestLog(config.log.format) if config.log.requests else None
    if request_log is not None:
        observers.append(request_log)
    metrics = None
    if config.metrics.token or config.metrics.port:
        metrics = Metrics(router, ledger, lambda: gateway.in_flight, per_key=config.metrics.per_key)
        observers.append(metrics)
        if config.metrics.port:  # now, so that a port taken stops the start with one line
            metrics.serve(config.server.host, config.metrics.port)
    gateway = Gateway(
        keys, router, ledger, limiter, metering=config.usage_ledger, observed=bool(observers)
    )
    responses = ResponseStore(database, retention_days=config.responses.retention_days)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await keys.start()
        await ledger.start()
        await limiter.start()
        await responses.start()
        if request_log is not None:
            request_log.start()
        if config.usage_retention_days and config.usage_ledger:
            retention.start()
        # what start-up built lives as long as the server: out of the collector's way, so that
        # full collections scan only what requests create
        gc.collect()
        gc.freeze()
        # and collections rarer: at the default 700 allocations, requests in flight keep each
        # other's objects surviving into older generations, which are then collected often
        gc.set_threshold(GC_THRESHOLD, 10, 10)
        yield
        # requests the server stopped waiting for record themselves as they end
        await gateway.drained(DRAIN_SECONDS)
        await keys.stop()
        await retention.stop()
        await router.aclose()
        await ledger.aclose()
        await responses.aclose()
        await limiter.aclose()
        if request_log is not None:
            await request_log.stop()  # the lines of the requests that ended last
        await database.aclose()

    routes = Routes(
        gateway,
        max_body_bytes=config.server.max_body_bytes,
    )
    admin = AdminRoutes(
        store,
        keys,
        ledger,
        admin_hash,
        max_body_bytes=config.server.max_body_bytes,
    )
    apis: list[Any] = [
        routes,
        ResponsesRoutes(gateway, responses, routes.body),
        MessagesRoutes(gateway, routes.body),
        admin,
        Console(store, keys, ledger, router, admin_hash),
    ]
    if metrics is not None and config.metrics.token:
        apis.append(MetricsRoute(metrics, str(config.metrics.token)))
    retention = Periodic(
        RETENTION_SECONDS,
        lambda: _delete_old_usage(ledger, config.usage_retention_days),
        "deleting old usage rows",
    )
    app: ASGIApp = Starlette(
        routes=_posts_first([route for api in apis for route in api.routes()]),
        exception_handlers={**EXCEPTION_HANDLERS, Refused: refused},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    if config.cors.origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(config.cors.origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "retry-after", "x-ratelimit-*"],
            max_age=600,
        )
    return RequestIdMiddleware(app, observers)


async def _delete_old_usage(ledger: Ledger, days: float | None) -> None:
    if days and (deleted := await ledger.delete_older(days)):
        log.info(
            "deleted %d usage rows older than %g days (their daily totals stay)", deleted, days
        )


#: the paths most requests come by, tried first
BUSIEST = ("/v1/chat/completions", "/v1/messages", "/v1/responses")


def _posts_first(routes: list[Route]) -> list[Route]:
    """The routes of the busiest APIs' requests first, then the other POST routes, then the
    rest: Starlette tries routes in turn, each try a cost on every request."""

    def rank(route: Route) -> int:
        if route.path in BUSIEST and route.methods and "POST" in route.methods:
            return BUSIEST.index(route.path)
        return len(BUSIEST) + (0 if route.methods and "POST" in route.methods else 1)

    return sorted(routes, key=rank)  # stable: each API's routes stay in their order
