"""Settings: the YAML config file and the environment, read once at start-up.

Example ``llmrelay.yaml``::

    server:
      host: 127.0.0.1
      port: 8000
    keys:                            # keys that may use every model, without limits
      - ${MY_TEAM_KEY}
    admin_key: ${ADMIN_KEY}          # or LLMRELAY_ADMIN_KEY; generated once if neither is set
    database_url: postgresql+asyncpg://llmrelay@db/llmrelay   # default: SQLite in the data dir
    redis_url: redis://127.0.0.1:6379/0   # limits and budgets shared by every instance
    usage_ledger: true               # false: no usage rows (and no budgets: they need them)
    models:
      - name: smollm2-135m-instruct
        aliases: [gpt-4o-mini]
        provider: local
        path: /models/SmolLM2-135M-Instruct.Q4_1.gguf   # default: the built-in model
        parallel: 8                 # requests (or choices) decoded together

      - name: gpt-4o
        provider: openai             # any OpenAI-compatible upstream
        base_url: https://api.openai.com/v1
        api_key: ${OPENAI_API_KEY}
        model: gpt-4o-2024-08-06     # the upstream's name (default: name)
        price: {input: "2.50", cached_input: "1.25", output: "10.00"}   # else the table's
    prices:                          # by upstream or public model name, over the table's
      my-finetune: {input: "0.30", output: "1.20"}
    usage_retention_days: 90         # older usage rows are deleted; their daily totals stay
    log: {format: json}              # the request log's lines as JSON (default: text)
    metrics: {token: ${METRICS_TOKEN}}   # GET /metrics for this bearer token
    cors: {origins: ["https://app.example.com"]}

The file is checked against the types below (msgspec): a key that is not one of them, or a value
of the wrong type, is a ``ConfigError`` naming it. With no file, llmrelay serves the built-in
model under its own name and as ``gpt-4o-mini``, and the built-in embedding model (where its
package is installed) under its own name and as ``text-embedding-3-small``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from sqlalchemy.exc import ArgumentError

from llmrelay.engine.packaged import EMBEDDINGS_PIP, embedding_model_dir
from llmrelay.pricing.price import Price, PriceError
from llmrelay.store.database import sqlite_in_memory

BUILTIN_MODEL_NAME = "smollm2-135m-instruct"
BUILTIN_ALIASES = ("gpt-4o-mini",)
BUILTIN_EMBEDDINGS_NAME = "all-minilm-l6-v2"
BUILTIN_EMBEDDINGS_ALIASES = ("text-embedding-3-small",)
_ENV_REF = re.compile(r"\$\{(\w+)\}")

Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]


class ConfigError(Exception):
    """The config file or environment cannot be used; the message says why."""


class Secret(str):
    """A string whose repr hides it, so a key never lands in a log by accident."""

    def __repr__(self) -> str:
        return "Secret('***')"


class _Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Settings, frozen=True, kw_only=True):
    """The HTTP server, and what it allows a client before closing on it."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    max_body_bytes: Count = 8 * 1024 * 1024  # larger bodies get a 413
    #: seconds a connection may take to send a request's head (line and headers)
    head_timeout: Positive = 10.0
    #: the largest request head, in bytes (larger: 431)
    max_head_bytes: Count = 32 * 1024
    #: seconds a client may take to send a request's body once its head is in (longer: 408)
    body_timeout: Positive = 30.0
    #: open connections at most; None: what the process's descriptors allow (see ``server/``)
    max_connections: Count | None = None
    #: seconds a stop waits for requests in flight before ending them
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30.0


class LimitsConfig(_Settings, frozen=True, kw_only=True):
    """Rate limits and budgets on Redis: how long to wait for it, and what to do without it."""

    #: seconds any one Redis call may take before Redis counts as away
    redis_timeout: Positive = 0.05
    #: while Redis is away: ``local`` counts in this process and adds it to Redis when Redis is
    #: back; ``closed`` refuses the requests of keys with limits (503), for operators who would
    #: rather refuse than let several instances each allow a key its whole limit
    redis_failure: Literal["local", "closed"] = "local"


class ResponsesConfig(_Settings, frozen=True, kw_only=True):
    """The Responses API's stored responses (``store: true``)."""

    #: days a stored response is kept (then deleted)
    retention_days: Positive = 30.0


class LogConfig(_Settings, frozen=True, kw_only=True):
    """The log on stderr: one line per request (``requests``), as text or JSON lines."""

    format: Literal["text", "json"] = "text"
    requests: bool = True


class MetricsConfig(_Settings, frozen=True, kw_only=True):
    """``GET /metrics`` (Prometheus): served to ``token`` (as a bearer token) on the API's port,
    or to anyone on ``port`` of its own (bind it where only Prometheus reaches); neither set, it
    is off."""

    token: Secret | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    #: tokens and cost by key too (one series per key: mind the cardinality)
    per_key: bool = False


class CorsConfig(_Settings, frozen=True, kw_only=True):
    """Origins whose pages may call the API from a browser (``*``: any); none by default."""

    origins: tuple[str, ...] = ()


class CooldownConfig(_Settings, frozen=True, kw_only=True):
    """A deployment failing ``failures`` times in a row rests ``seconds``."""

    failures: Count = 3
    seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0


class Timeouts(_Settings, frozen=True, kw_only=True):
    """Seconds allowed to connect, to the first byte of the answer, and for the whole answer."""

    connect: Positive = 10.0
    first_byte: Positive = 60.0
    total: Positive = 600.0


class ParamRules(_Settings, frozen=True, kw_only=True):
    """How one deployment changes a request's top-level fields on their way to the upstream."""

    drop: frozenset[str] = frozenset()
    rename: dict[str, str] = {}
    set: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if "model" in self.drop | set(self.rename) | set(self.set):
            raise ValueError("params may not change model (set the deployment's model instead)")

    def __bool__(self) -> bool:
        return bool(self.drop or self.rename or self.set)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {self.rename.get(k, k): v for k, v in body.items() if k not in self.drop}
        body.update(self.set)
        return body


#: dollars per million tokens: ``input``, ``output``, and optionally ``cached_input`` and
#: ``cache_write`` (default: ``input``)
Prices = dict[str, str | float]


class _Model(_Settings, frozen=True, kw_only=True, tag_field="provider"):
    name: str
    aliases: tuple[str, ...] = ()
    weight: Positive = 1.0
    #: this deployment's price; default: ``prices`` or the published table for its upstream
    #: model, nothing for a local model
    price: Prices | None = None


class LocalModelConfig(_Model, frozen=True, kw_only=True, tag="local"):
    """A model served by the built-in llama.cpp engine."""

    path: Path | None = None
    parallel: Count = 8
    threads: Count | None = None
    context: Count | None = None
    #: the longest answer when a request sets no limit (a 135M model rambles on); a request
    #: may ask for more, up to what the context holds
    max_output_tokens: Count = 1024


class _RemoteModel(_Model, frozen=True, kw_only=True):
    base_url: str
    model: str = ""  # the upstream's name for it (default: name)
    api_key: Secret | None = None
    timeouts: Timeouts = Timeouts()
    max_concurrency: Count | None = None
    #: the most a request may ask for: a larger max_tokens is lowered to it on the way up
    max_output_tokens: Count | None = None

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "base_url", self.base_url.rstrip("/"))
        if not self.model:
            msgspec.structs.force_setattr(self, "model", self.name)


class OpenAIModelConfig(_RemoteModel, frozen=True, kw_only=True, tag="openai"):
    """A model relayed to an OpenAI-compatible upstream (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    #: ask the upstream for usage in streams; off for upstreams that reject stream_options
    stream_usage: bool = True
    params: ParamRules = ParamRules()
    #: how Responses API requests reach it: translated to Chat Completions, or ``native``: as
    #: the client sent them, to the upstream's own /responses (OpenAI's API)
    responses: Literal["translate", "native"] = "translate"


class AnthropicModelConfig(_RemoteModel, frozen=True, kw_only=True, tag="anthropic"):
    """A model relayed to Anthropic's Messages API."""

    base_url: str = "https://api.anthropic.com"
    #: the Messages API requires max_tokens; this is sent when the client set none
    max_tokens: Count = 4096


class EmbeddingModelConfig(_Model, frozen=True, kw_only=True, tag="local-embeddings"):
    """A sentence-embedding model run in this process, for /v1/embeddings."""

    #: a directory of config.json, model.safetensors and tokenizer.json (a BERT model from
    #: sentence-transformers); default: the built-in all-MiniLM-L6-v2
    path: Path | None = None


ModelConfig = LocalModelConfig | OpenAIModelConfig | AnthropicModelConfig | EmbeddingModelConfig
RemoteModelConfig = OpenAIModelConfig | AnthropicModelConfig
#: the ``provider:`` value of each kind of model entry
PROVIDER_TYPES: dict[type[ModelConfig], str] = {
    LocalModelConfig: "local",
    OpenAIModelConfig: "openai",
    AnthropicModelConfig: "anthropic",
    EmbeddingModelConfig: "local-embeddings",
}


def builtin_models() -> tuple[ModelConfig, ...]:
    """What a server with no models configured serves: the built-in chat model, and the
    built-in embedding model where its package is installed."""
    chat = LocalModelConfig(name=BUILTIN_MODEL_NAME, aliases=BUILTIN_ALIASES)
    if embedding_model_dir() is None:
        return (chat,)
    return (
        chat,
        EmbeddingModelConfig(name=BUILTIN_EMBEDDINGS_NAME, aliases=BUILTIN_EMBEDDINGS_ALIASES),
    )


def default_data_dir() -> Path:
    if env := os.environ.get("LLMRELAY_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "llmrelay"


class Config(_Settings, frozen=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    #: keys that may use every model, without limits (LLMRELAY_API_KEY adds one)
    keys: tuple[Secret, ...] = ()
    #: the key of the admin API; generated and printed once when neither config nor env sets it
    admin_key: Secret | None = None
    data_dir: Path = msgspec.field(default_factory=default_data_dir)
    #: SQLAlchemy async URL of the store; None: a SQLite file in data_dir
    database_url: str | None = None
    #: where rate limits and budgets count, shared by every instance; None: in this process
    redis_url: str | None = None
    limits: LimitsConfig = LimitsConfig()
    #: one row per request in the store; off, requests are not metered
    usage_ledger: bool = True
    models: Annotated[tuple[ModelConfig, ...], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=builtin_models
    )
    #: model name -> the models to try, in order, when all of its deployments failed
    fallbacks: dict[str, tuple[str, ...]] = {}
    #: wildcard pattern -> the model (or alias) that answers the names it matches which no
    #: model or alias has: ``claude-*: gpt-4o-mini`` (tried in order)
    model_map: dict[str, str] = {}
    cooldown: CooldownConfig = CooldownConfig()
    responses: ResponsesConfig = ResponsesConfig()
    #: upstream model name (or public name) -> its price, over the published table's
    prices: dict[str, Prices] = {}
    #: days usage rows are kept; older ones are deleted (their daily totals stay); None: all
    usage_retention_days: Positive | None = None
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    cors: CorsConfig = CorsConfig()

    def secrets(self) -> list[str]:
        """Every secret the config holds, to keep out of what clients and the log see."""
        found = [*self.keys, self.admin_key, self.metrics.token]
        found += [m.api_key for m in self.models if isinstance(m, RemoteModelConfig)]
        return [str(secret) for secret in found if secret]


def load_config(path: Path | None = None) -> Config:
    """Read the YAML file (if any) and the environment; raise ``ConfigError`` if unusable."""
    raw: Any = {}
    where = f"config {path}" if path is not None else "the environment"
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a mapping")
        raw = _expand_env(raw)
    raw = {**raw, **_from_environment()}
    for entry in raw.get("models") or ():
        if isinstance(entry, dict):
            entry.setdefault("provider", "local")
    try:
        config = msgspec.convert(raw, Config, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        hint = ""
        if "unknown field `model_list`" in str(exc):
            hint = " (a LiteLLM config? `llmrelay config import-litellm` writes llmrelay's own)"
        raise ConfigError(f"{where}: {_described(str(exc))}{hint}") from exc
    if env_key := os.environ.get("LLMRELAY_API_KEY"):
        config = msgspec.structs.replace(config, keys=(*config.keys, Secret(env_key)))
    _check(config)
    return config


def _from_environment() -> dict[str, str]:
    names = {
        "admin_key": "LLMRELAY_ADMIN_KEY",
        "database_url": "LLMRELAY_DATABASE_URL",
        "redis_url": "LLMRELAY_REDIS_URL",
    }
    return {field: os.environ[env] for field, env in names.items() if os.environ.get(env)}


def _decode(kind: type, value: Any) -> Any:
    """The types msgspec leaves to us: secrets and paths, from strings."""
    if kind in (Secret, Path):
        if not isinstance(value, str):
            raise TypeError(f"Expected `str`, got `{type(value).__name__}`")
        return kind(value)
    raise NotImplementedError


def _described(message: str) -> str:
    """msgspec's message with the place named as the file names it: ``models[0].name``."""
    return re.sub(r" - at `\$\.?([^`]*)`", r" (at `\1`)", message)


def _check(config: Config) -> None:
    """What the types alone do not say."""
    if config.database_url:
        try:
            in_memory = sqlite_in_memory(config.database_url)
        except ArgumentError as exc:
            raise ConfigError(f"database_url: {exc}") from exc
        if in_memory:
            raise ConfigError(
                f"database_url {config.database_url!r}: keys and usage need a file to outlive "
                "a stop"
            )
    names = {m.name for m in config.models} | {a for m in config.models for a in m.aliases}
    for model, others in config.fallbacks.items():
        if unknown := {model, *others} - names:
            raise ConfigError(f"fallbacks name models that are not configured: {sorted(unknown)}")
    if unknown := set(config.model_map.values()) - names:
        raise ConfigError(f"model_map names models that are not configured: {sorted(unknown)}")
    for name, price in config.prices.items():
        _check_price(price, f"prices.{name}")
    for i, entry in enumerate(config.models):
        if entry.price is not None:
            _check_price(entry.price, f"models[{i}].price")
        if isinstance(entry, EmbeddingModelConfig) and not entry.path and not embedding_model_dir():
            raise ConfigError(
                f"models[{i}] ({entry.name}): the built-in embedding model is not installed "
                f"({EMBEDDINGS_PIP}), and no path is given"
            )


def _check_price(price: Prices, where: str) -> None:
    try:
        Price.of(price)
    except PriceError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: _env(m.group(1)), value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _env(name: str) -> str:
    if name not in os.environ:
        raise ConfigError(f"the config refers to ${{{name}}}, which is not set")
    return os.environ[name]
