"""From a LiteLLM proxy config (``model_list`` and its settings) to llmrelay's.

LiteLLM names a deployment's protocol in its model (``openai/gpt-4o``,
``anthropic/claude-sonnet-4-5``, ``hosted_vllm/Qwen/Qwen3-8B``); the OpenAI-compatible ones
become ``provider: openai`` with the provider's base URL, Anthropic ``provider: anthropic``.
``os.environ/NAME`` becomes ``${NAME}``. What llmrelay has no equivalent for is listed, not
guessed at.
"""

from __future__ import annotations

from typing import Any

#: OpenAI-compatible providers of LiteLLM, and their base URL where LiteLLM knows it
OPENAI_COMPATIBLE: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "text-completion-openai": "https://api.openai.com/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "ollama": "http://localhost:11434",
    "ollama_chat": "http://localhost:11434",
    "hosted_vllm": None,
    "vllm": None,
    "lm_studio": None,
    "openai_like": None,
    "custom_openai": None,
    "llamafile": None,
}
_OLLAMA = ("ollama", "ollama_chat")  # LiteLLM's Ollama base URL has no /v1; its OpenAI API does


def translate(litellm: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """llmrelay's settings for a LiteLLM config, and what could not be carried over."""
    left_out: list[str] = []
    models = []
    for entry in litellm["model_list"]:
        model = _model(entry, left_out)
        if model is not None:
            models.append(model)
    settings: dict[str, Any] = {}
    general = litellm.get("general_settings") or {}
    if master := general.get("master_key"):
        # LiteLLM's master key both administers and calls models; llmrelay keeps the two apart
        settings["admin_key"] = _value(master)
        settings["keys"] = [_value(master)]
    settings["models"] = models
    router = {**(litellm.get("litellm_settings") or {}), **(litellm.get("router_settings") or {})}
    names = {m["name"] for m in models}
    fallbacks: dict[str, list[str]] = {}
    for rule in router.get("fallbacks") or ():
        for name, others in (rule or {}).items():
            kept = [other for other in others if other in names]
            if name in names and kept:
                fallbacks[name] = kept
            if name not in names or len(kept) < len(others):
                left_out.append(f"fallbacks of {name}: {others} (models not in model_list)")
    if fallbacks:
        settings["fallbacks"] = fallbacks
    cooldown: dict[str, float] = {}
    if "allowed_fails" in router:
        cooldown["failures"] = int(router["allowed_fails"])  # an int in YAML
    if "cooldown_time" in router:
        cooldown["seconds"] = float(router["cooldown_time"])
    if cooldown:
        settings["cooldown"] = cooldown
    handled = {"fallbacks", "allowed_fails", "cooldown_time"}
    left_out += [f"router/litellm setting {k}" for k in router if k not in handled]
    left_out += [f"general_settings.{k}" for k in general if k != "master_key"]
    left_out += [
        f"{section} (set limits per key with `llmrelay keys`)"
        for section in ("environment_variables", "guardrails", "callbacks")
        if section in litellm
    ]
    return settings, left_out


def _model(entry: dict[str, Any], left_out: list[str]) -> dict[str, Any] | None:
    name = entry.get("model_name")
    params = entry.get("litellm_params") or {}
    provider, _, upstream = str(params.get("model", "")).partition("/")
    if not upstream:
        provider, upstream = "openai", provider
    if provider == "anthropic":
        model: dict[str, Any] = {"name": name, "provider": "anthropic", "model": upstream}
        if "api_base" in params:
            model["base_url"] = params["api_base"]
    elif provider in OPENAI_COMPATIBLE:
        base_url = params.get("api_base") or OPENAI_COMPATIBLE[provider]
        if base_url is None:
            left_out.append(f"model {name}: {provider} needs an api_base")
            return None
        if provider in _OLLAMA and not base_url.rstrip("/").endswith("/v1"):
            base_url = base_url.rstrip("/") + "/v1"
        model = {"name": name, "provider": "openai", "base_url": base_url, "model": upstream}
    else:
        left_out.append(f"model {name}: provider {provider} is not OpenAI-compatible")
        return None
    if "api_key" in params:
        model["api_key"] = _value(params["api_key"])
    timeouts = {}
    if "timeout" in params:
        timeouts["total"] = float(params["timeout"])
    if "stream_timeout" in params:
        timeouts["first_byte"] = float(params["stream_timeout"])
    if timeouts:
        model["timeouts"] = timeouts
    if "max_tokens" in params:
        model["max_output_tokens"] = int(params["max_tokens"])
    if "weight" in params:
        model["weight"] = float(params["weight"])
    if "max_parallel_requests" in params:
        model["max_concurrency"] = int(params["max_parallel_requests"])
    handled = {"model", "api_base", "api_key", "timeout", "stream_timeout", "max_tokens"}
    handled |= {"weight", "max_parallel_requests"}
    left_out += [f"model {name}: litellm_params.{k}" for k in params if k not in handled]
    return model


def _value(value: Any) -> Any:
    """LiteLLM's ``os.environ/NAME`` as llmrelay's ``${NAME}``."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return "${" + value.removeprefix("os.environ/") + "}"
    return value
