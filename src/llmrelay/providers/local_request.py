"""From a ``ChatRequest`` to what the local engine runs: prompt tokens, sampling, grammar.

Everything the built-in engine cannot honour is refused here with a 400 naming the parameter,
never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrelay.engine.grammar import (
    AUTO_TOOL_TRIGGER,
    GrammarError,
    json_object_grammar,
    json_schema_grammar,
    tool_call_grammar,
)
from llmrelay.engine.local import LocalEngine
from llmrelay.engine.sampling import SamplingParams
from llmrelay.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    UnsupportedParameterError,
)
from llmrelay.protocol.messages import TextPart, UserMessage
from llmrelay.protocol.request import (
    ChatRequest,
    FunctionDef,
    FunctionTool,
    JsonObjectFormat,
    JsonSchemaFormat,
    NamedToolChoice,
)

_PART_NAMES = {"ImagePart": "image", "AudioPart": "audio", "FilePart": "file"}


@dataclass(frozen=True)
class EnginePlan:
    prompt: list[int]
    n: int
    params: SamplingParams
    tool_mode: str  # "text", "call" or "auto": how to read tool calls out of the output
    tool_names: tuple[str, ...] = ()  # the functions the output may call


def plan_request(
    request: ChatRequest, engine: LocalEngine, model_name: str, max_output_tokens: int
) -> EnginePlan:
    """Check the request against what the engine can do and translate it; raise a 400 if not."""
    _refuse_unsupported(request, model_name)
    tools, tool_mode, grammar, trigger, callable_functions = _tools_and_grammar(request)
    prompt = _prompt(request, engine, tools)
    n = request.n or 1
    if n > engine.slots:
        raise InvalidRequestError(
            f"Invalid value for 'n': this model generates at most {engine.slots} choices at once.",
            param="n",
        )
    return EnginePlan(
        prompt=prompt,
        n=n,
        params=SamplingParams(
            max_tokens=_max_tokens(request, len(prompt), engine.context_length, max_output_tokens),
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            seed=request.seed,
            logit_bias=_logit_bias(request, engine.n_vocab),
            stop=tuple(request.stop_list),
            logprobs=bool(request.logprobs),
            top_logprobs=request.top_logprobs or 0,
            grammar=grammar,
            grammar_trigger=trigger,
        ),
        tool_mode=tool_mode,
        tool_names=tuple(f.name for f in callable_functions),
    )


def _unsupported(param: str, what: str, model: str) -> UnsupportedParameterError:
    return UnsupportedParameterError(
        f"Unsupported parameter: '{param}' ({what}) is not supported with the model {model}.",
        param=param,
    )


def count_prompt(request: ChatRequest, engine: LocalEngine, model_name: str) -> int:
    """How many tokens the request's prompt takes, as its answer's usage would count them (the
    chat template's own included), whether or not the context holds them."""
    _refuse_unsupported(request, model_name)
    return len(_prompt(request, engine, _tools_and_grammar(request)[0]))


def _prompt(request: ChatRequest, engine: LocalEngine, tools: list[FunctionDef]) -> list[int]:
    """The prompt's tokens: the messages and tools in the model's chat template."""
    return engine.tokenize(engine.template.render(request.messages, tools))


def _refuse_unsupported(request: ChatRequest, model: str) -> None:
    for i, message in enumerate(request.messages):
        if isinstance(message, UserMessage) and not isinstance(message.content, str):
            for j, part in enumerate(message.content):
                if not isinstance(part, TextPart):
                    kind = _PART_NAMES[type(part).__name__]
                    raise _unsupported(f"messages[{i}].content[{j}]", f"{kind} input", model)
    if request.modalities and set(request.modalities) != {"text"}:
        raise _unsupported("modalities", "audio output", model)
    checks = {
        "audio": "audio output",
        "web_search_options": "web search",
        "reasoning_effort": "reasoning",
        "verbosity": "verbosity",
        "moderation": "moderation",
    }
    for param, what in checks.items():
        if getattr(request, param) is not None:
            raise _unsupported(param, what, model)
    for i, tool in enumerate(request.tools or ()):
        if not isinstance(tool, FunctionTool):
            raise _unsupported(f"tools[{i}]", "custom tools", model)
    if request.tool_choice is not None and not isinstance(
        request.tool_choice, (str, NamedToolChoice)
    ):
        raise _unsupported("tool_choice", "allowed_tools and custom tool choice", model)


def _tools_and_grammar(
    request: ChatRequest,
) -> tuple[list[FunctionDef], str, str | None, str | None, list[FunctionDef]]:
    """The tools to describe in the prompt, the tool mode, the grammar and its trigger, and the
    functions the output may call."""
    functions = [t.function for t in request.tools or () if isinstance(t, FunctionTool)]
    choice = request.tool_choice or ("auto" if functions else "none")
    if functions and choice != "none":
        if isinstance(choice, NamedToolChoice):
            called = [f for f in functions if f.name == choice.function.name]
        else:
            called = functions
        try:
            if choice == "auto":
                grammar = tool_call_grammar(called, tagged=True)
                return functions, "auto", grammar, AUTO_TOOL_TRIGGER, called
            return functions, "call", tool_call_grammar(called, tagged=False), None, called
        except GrammarError as exc:
            raise InvalidRequestError(f"Invalid schema for tools: {exc}", param="tools") from exc
    return [], "text", _format_grammar(request), None, []


def _format_grammar(request: ChatRequest) -> str | None:
    fmt = request.response_format
    try:
        if isinstance(fmt, JsonObjectFormat):
            return json_object_grammar()
        if isinstance(fmt, JsonSchemaFormat):
            return json_schema_grammar(fmt.json_schema.schema or {"type": "object"})
    except GrammarError as exc:
        raise InvalidRequestError(
            f"Invalid schema for response_format '{fmt.json_schema.name}': {exc}",  # type: ignore[union-attr]
            param="response_format",
        ) from exc
    return None


def _max_tokens(request: ChatRequest, prompt_tokens: int, context: int, default: int) -> int:
    """The request's limit, which the context must hold; ``default`` (or what the context has
    left) for a request that sets none."""
    limit = request.completion_limit
    if prompt_tokens + (limit or 1) <= context:
        return min(default, context - prompt_tokens) if limit is None else limit
    if limit:
        asked = (
            f"{prompt_tokens + limit} tokens ({prompt_tokens} in the messages, "
            f"{limit} in the completion)"
        )
    else:
        asked = f"{prompt_tokens} tokens in the messages"
    raise ContextLengthExceededError(
        f"This model's maximum context length is {context} tokens. However, you requested "
        f"{asked}. Please reduce the length of the messages or completion.",
        param="messages",
    )


def _logit_bias(request: ChatRequest, n_vocab: int) -> dict[int, float]:
    bias = {int(k): float(v) for k, v in (request.logit_bias or {}).items()}
    if bad := [t for t in bias if t >= n_vocab]:
        raise InvalidRequestError(
            f"Invalid key in 'logit_bias': token id {bad[0]} is out of this model's vocabulary "
            f"(0 to {n_vocab - 1}).",
            param="logit_bias",
        )
    return bias
