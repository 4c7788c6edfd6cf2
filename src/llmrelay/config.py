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
        max_output_tokens: 1024     # the longest answer; more is refused with a 400

      - name: gpt-4o
        provider: openai             # any OpenAI-compatible upstream
        base_url: https://api.openai.com/v1
        api_key: ${OPENAI_API_KEY}
        model: gpt-4o-2024-08-06     # the upstream's name (default: name)
        timeouts: {connect: 5, first_byte: 30, total: 600}
        max_concurrency: 64          # requests in flight at once; more wait for a free one
        params:                      # what to change in each request on its way up
          drop: [logit_bias]         # fields this upstream rejects
          rename: {max_tokens: max_completion_tokens}
          set: {top_k: 40}           # fields added (or overridden)

With no file, llmrelay serves the built-in model under its own name and as ``gpt-4o-mini``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import ArgumentError

from llmrelay.store.database import sqlite_in_memory

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_OUTPUT_TOKENS = 1024
BUILTIN_MODEL_NAME = "smollm2-135m-instruct"
BUILTIN_ALIASES = ("gpt-4o-mini",)
_ENV_REF = re.compile(r"\$\{(\w+)\}")


class ConfigError(Exception):
    """The config file or environment cannot be used; the message says why."""


class Secret(str):
    """A string whose repr hides it, so a key never lands in a log by accident."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True, kw_only=True)
class LocalModelConfig:
    """A model served by the built-in llama.cpp engine."""

    name: str = BUILTIN_MODEL_NAME
    aliases: tuple[str, ...] = BUILTIN_ALIASES
    path: Path | None = None
    parallel: int = 8
    threads: int | None = None
    context: int | None = None
    # The most tokens one answer may have, as OpenAI's models have (a 135M model rambles on).
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Seconds allowed to connect, to the first byte of the answer, and for the whole answer."""

    connect: float = 10.0
    first_byte: float = 60.0
    total: float = 600.0


@dataclass(frozen=True, kw_only=True)
class ParamRules:
    """How one deployment changes a request's top-level fields on their way to the upstream."""

    drop: frozenset[str] = frozenset()
    rename: dict[str, str] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.drop or self.rename or self.set)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {self.rename.get(k, k): v for k, v in body.items() if k not in self.drop}
        body.update(self.set)
        return body


@dataclass(frozen=True, kw_only=True)
class OpenAIModelConfig:
    """A model relayed to an OpenAI-compatible upstream (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    name: str
    base_url: str
    model: str  # the upstream's name for it
    api_key: Secret | None = None
    aliases: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Ask the upstream for usage in streams; off for upstreams that reject stream_options.
    stream_usage: bool = True
    weight: float = 1.0
    max_concurrency: int | None = None
    params: ParamRules = field(default_factory=ParamRules)


@dataclass(frozen=True, kw_only=True)
class AnthropicModelConfig:
    """A model relayed to Anthropic's Messages API."""

    name: str
    model: str  # the upstream's name for it
    base_url: str = "https://api.anthropic.com"
    api_key: Secret | None = None
    aliases: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    # The Messages API requires max_tokens; this is sent when the client set none.
    max_tokens: int = 4096
    weight: float = 1.0
    max_concurrency: int | None = None


ModelConfig = LocalModelConfig | OpenAIModelConfig | AnthropicModelConfig
#: the ``provider:`` value of each kind of model entry
PROVIDER_TYPES: dict[type[ModelConfig], str] = {
    LocalModelConfig: "local",
    OpenAIModelConfig: "openai",
    AnthropicModelConfig: "anthropic",
}


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    keys: tuple[Secret, ...] = ()
    # the key of the admin API; generated and printed once when neither config nor env sets it
    admin_key: Secret | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    # SQLAlchemy async URL of the store; None: a SQLite file in data_dir
    database_url: str | None = None
    # where rate limits and budgets count, shared by every instance; None: in this process
    redis_url: str | None = None
    # one row per request in the store; off, requests are not metered
    usage_ledger: bool = True
    models: tuple[ModelConfig, ...] = (LocalModelConfig(),)
    # model name -> the models to try, in order, when all of its deployments failed
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # a deployment failing this many times in a row rests this many seconds
    cooldown_failures: int = 3
    cooldown_seconds: float = 30.0


def default_data_dir() -> Path:
    if env := os.environ.get("LLMRELAY_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "llmrelay"


def load_config(path: Path | None = None) -> Config:
    """Read the YAML file (if any) and ``LLMRELAY_API_KEY``; raise ``ConfigError`` if unusable."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a mapping")
        raw = _expand_env(raw)
    server = raw.get("server") or {}
    keys = [Secret(k) for k in raw.get("keys") or ()]
    if env_key := os.environ.get("LLMRELAY_API_KEY"):
        keys.append(Secret(env_key))
    admin_key = os.environ.get("LLMRELAY_ADMIN_KEY") or raw.get("admin_key")
    database_url = os.environ.get("LLMRELAY_DATABASE_URL") or raw.get("database_url")
    if database_url and _sqlite_in_memory(database_url):
        raise ConfigError(
            f"database_url {database_url!r}: keys and usage need a file to outlive a stop"
        )
    kwargs: dict[str, Any] = {
        "host": server.get("host", DEFAULT_HOST),
        "port": int(server.get("port", DEFAULT_PORT)),
        "max_body_bytes": int(server.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
        "keys": tuple(keys),
        "admin_key": Secret(admin_key) if admin_key else None,
        "database_url": database_url,
        "redis_url": os.environ.get("LLMRELAY_REDIS_URL") or raw.get("redis_url"),
        "usage_ledger": bool(raw.get("usage_ledger", True)),
    }
    if "data_dir" in raw:
        kwargs["data_dir"] = Path(raw["data_dir"])
    if "models" in raw:
        kwargs["models"] = tuple(_model(entry) for entry in raw["models"])
    names = {m.name for m in kwargs.get("models", Config().models)}
    names |= {a for m in kwargs.get("models", Config().models) for a in m.aliases}
    fallbacks = raw.get("fallbacks") or {}
    for model, others in fallbacks.items():
        if unknown := {model, *others} - names:
            raise ConfigError(f"fallbacks name models that are not configured: {sorted(unknown)}")
    kwargs["fallbacks"] = {model: tuple(others) for model, others in fallbacks.items()}
    cooldown = raw.get("cooldown") or {}
    try:
        kwargs["cooldown_failures"] = int(cooldown.get("failures", 3))
        kwargs["cooldown_seconds"] = float(cooldown.get("seconds", 30.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cooldown: {exc}") from exc
    return Config(**kwargs)


def _sqlite_in_memory(database_url: str) -> bool:
    try:
        return sqlite_in_memory(database_url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url: {exc}") from exc


def _model(entry: dict[str, Any]) -> ModelConfig:
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"each model needs at least a name: {entry!r}")
    provider = entry.get("provider", "local")
    parsers: dict[str, Callable[..., ModelConfig]] = {
        "local": _local_model,
        "openai": _openai_model,
        "anthropic": _anthropic_model,
    }
    if provider not in parsers:
        raise ConfigError(f"model {entry['name']}: unknown provider {provider!r}")
    settings = {k: v for k, v in entry.items() if k != "provider"}
    try:
        return parsers[provider](**settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {entry['name']}: {exc}") from exc


def _local_model(
    *,
    name: str,
    aliases: list[str] | None = None,
    path: str | None = None,
    weight: float = 1.0,
    **rest: Any,
) -> LocalModelConfig:
    return LocalModelConfig(
        name=name,
        aliases=tuple(aliases or ()),
        path=Path(path) if path else None,
        weight=float(weight),
        **{k: int(v) for k, v in rest.items()},
    )


def _openai_model(
    *,
    base_url: str,
    stream_usage: bool = True,
    params: dict[str, Any] | None = None,
    **common: Any,
) -> OpenAIModelConfig:
    return OpenAIModelConfig(
        **_remote(base_url=base_url, **common),
        stream_usage=bool(stream_usage),
        params=_param_rules(params or {}),
    )


def _anthropic_model(
    *, base_url: str = "https://api.anthropic.com", max_tokens: int = 4096, **common: Any
) -> AnthropicModelConfig:
    return AnthropicModelConfig(**_remote(base_url=base_url, **common), max_tokens=int(max_tokens))


def _remote(
    *,
    name: str,
    base_url: str,
    model: str | None = None,
    api_key: str | None = None,
    aliases: list[str] | None = None,
    timeouts: dict[str, float] | None = None,
    weight: float = 1.0,
    max_concurrency: int | None = None,
) -> dict[str, Any]:
    """The settings every relayed model has, whatever its provider."""
    return {
        "name": name,
        "base_url": base_url.rstrip("/"),
        "model": model or name,
        "api_key": Secret(api_key) if api_key else None,
        "aliases": tuple(aliases or ()),
        "timeouts": Timeouts(**{k: float(v) for k, v in (timeouts or {}).items()}),
        "weight": float(weight),
        "max_concurrency": _concurrency(max_concurrency),
    }


def _concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if int(value) < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {value}")
    return int(value)


def _param_rules(raw: dict[str, Any]) -> ParamRules:
    if unknown := set(raw) - {"drop", "rename", "set"}:
        raise ValueError(f"params has unknown entries {sorted(unknown)} (drop, rename, set)")
    rules = ParamRules(
        drop=frozenset(raw.get("drop") or ()),
        rename=dict(raw.get("rename") or {}),
        set=dict(raw.get("set") or {}),
    )
    if "model" in rules.drop | set(rules.rename) | set(rules.set):
        raise ValueError("params may not change model (set the deployment's model instead)")
    return rules


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
