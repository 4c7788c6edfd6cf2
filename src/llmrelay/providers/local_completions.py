"""Legacy completions on the built-in engine: each prompt as raw text (no chat template),
``n`` choices of each, answered whole or streamed as ``text_completion`` objects.

Prompts of one request are generated one after another (each prompt's choices together); the
engine batches them with every other request's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from llmrelay.engine.events import Finished, TextDelta
from llmrelay.engine.local import EngineError, LocalEngine
from llmrelay.engine.sampling import SamplingParams
from llmrelay.errors import ContextLengthExceededError, InvalidRequestError, LLMRelayError
from llmrelay.outcome import Outcome, Usage
from llmrelay.protocol.completions import (
    CompletionHeader,
    CompletionsRequest,
    LegacyLogprobs,
    text_choice,
    text_usage,
)


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    text: str  # what echo sends back


@dataclass(frozen=True)
class TextPlan:
    prompts: list[Prompt]
    n: int
    params: SamplingParams
    echo: bool

    def logprobs(self, prompt: Prompt) -> LegacyLogprobs | None:
        """A choice's logprobs, its offsets counted from the start of the prompt's text."""
        return LegacyLogprobs(len(prompt.text)) if self.params.logprobs else None

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p.tokens) for p in self.prompts)


def plan_completion(request: CompletionsRequest, engine: LocalEngine, model: str) -> TextPlan:
    """Check the request against what the engine can do; a 400 naming the parameter if not."""
    if request.suffix:
        raise _unsupported("suffix", "insertion", model)
    if request.best_of not in (None, 0, 1) and request.best_of != request.n:
        raise _unsupported("best_of", "best-of sampling", model)
    if request.echo and request.logprobs is not None:
        raise _unsupported("logprobs", "logprobs of an echoed prompt", model)
    n = request.n or 1
    if n > engine.slots:
        raise InvalidRequestError(
            f"Invalid value for 'n': this model generates at most {engine.slots} choices at once.",
            param="n",
        )
    prompts = [_prompt(p, engine) for p in request.prompts()]
    for prompt in prompts:
        if len(prompt.tokens) + request.limit > engine.context_length:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {engine.context_length} tokens, "
                f"however you requested {len(prompt.tokens) + request.limit} tokens "
                f"({len(prompt.tokens)} in your prompt; {request.limit} for the completion). "
                "Please reduce your prompt; or completion length.",
                param="prompt",
            )
    bias = {int(k): float(v) for k, v in (request.logit_bias or {}).items()}
    if bad := [t for t in bias if t >= engine.n_vocab]:
        raise InvalidRequestError(
            f"Invalid key in 'logit_bias': token id {bad[0]} is out of this model's vocabulary.",
            param="logit_bias",
        )
    params = SamplingParams(
        max_tokens=request.limit,
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        seed=request.seed,
        logit_bias=bias,
        stop=tuple([request.stop] if isinstance(request.stop, str) else request.stop or ()),
        logprobs=request.logprobs is not None,
        top_logprobs=request.logprobs or 0,
    )
    return TextPlan(prompts, n, params, bool(request.echo))


def _prompt(prompt: str | list[int], engine: LocalEngine) -> Prompt:
    if isinstance(prompt, str):
        tokens = engine.tokenize(prompt)
        if not tokens:
            raise InvalidRequestError("Invalid value for 'prompt': it is empty.", param="prompt")
        return Prompt(tokens, prompt)
    if bad := [t for t in prompt if t >= engine.n_vocab]:
        raise InvalidRequestError(
            f"Invalid value for 'prompt': token id {bad[0]} is out of this model's vocabulary "
            f"(0 to {engine.n_vocab - 1}).",
            param="prompt",
        )
    return Prompt(prompt, engine.detokenize(prompt))


def _unsupported(param: str, what: str, model: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Unsupported parameter: '{param}' ({what}) is not supported with the model {model}.",
        param=param,
        code="unsupported_parameter",
    )


class TextCompletion:
    """One request's generation: its events, and the tokens made so far (for the outcome)."""

    def __init__(self, engine: LocalEngine, plan: TextPlan, header: CompletionHeader) -> None:
        self._engine = engine
        self.plan = plan
        self.header = header
        self.generated = [0] * (len(plan.prompts) * plan.n)  # tokens, per choice
        self.prompts_read = 0  # tokens of the prompts whose generation began

    async def events(self) -> AsyncIterator[tuple[int, TextDelta | Finished]]:
        """Each event, with the index of its choice among all prompts' (``n`` a prompt)."""
        plan = self.plan
        for i, prompt in enumerate(plan.prompts):
            first = i * plan.n
            self.prompts_read += len(prompt.tokens)
            if plan.params.max_tokens == 0:  # nothing to generate: the prompt alone (echo)
                for j in range(plan.n):
                    yield first + j, Finished(j, "length", 0)
                continue
            try:
                async for event in self._engine.generate(prompt.tokens, plan.n, plan.params):
                    assert isinstance(event, TextDelta | Finished)
                    index = first + event.index
                    if isinstance(event, TextDelta):
                        self.generated[index] = event.tokens
                    else:
                        self.generated[index] = event.completion_tokens
                    yield index, event
            except EngineError as exc:
                raise LLMRelayError(str(exc)) from exc

    def usage(self) -> Usage:
        return Usage(self.prompts_read, sum(self.generated))

    def prompt_of(self, index: int) -> Prompt:
        return self.plan.prompts[index // self.plan.n]


async def complete_text(completion: TextCompletion, outcome: Outcome) -> dict[str, Any]:
    plan = completion.plan
    count = len(completion.generated)
    texts = [completion.prompt_of(i).text if plan.echo else "" for i in range(count)]
    logprobs = [plan.logprobs(completion.prompt_of(i)) for i in range(count)]
    finish: dict[int, str] = {}
    try:
        async for index, event in completion.events():
            if isinstance(event, TextDelta):
                texts[index] += event.text
                if (built := logprobs[index]) is not None:
                    built.add(event.logprobs or [])
            else:
                finish[index] = event.reason
    except asyncio.CancelledError:
        _record(outcome, completion)
        raise
    choices = [
        text_choice(i, texts[i], finish[i], built.since() if (built := logprobs[i]) else None)
        for i in range(count)
    ]
    _record(outcome, completion)
    used = completion.usage()
    return completion.header.object(
        choices, usage=text_usage(plan.prompt_tokens, used.completion_tokens)
    )


async def stream_text(
    completion: TextCompletion, outcome: Outcome
) -> AsyncGenerator[dict[str, Any], None]:
    """The chunks, ending with one of usage (``choices: []``), as chat streams do."""
    plan, header = completion.plan, completion.header
    count = len(completion.generated)
    logprobs = [plan.logprobs(completion.prompt_of(i)) for i in range(count)]
    if plan.echo:
        yield header.object(
            [text_choice(i, completion.prompt_of(i).text, None) for i in range(count)]
        )
    try:
        async for index, event in completion.events():
            if isinstance(event, TextDelta):
                built = logprobs[index]
                said = built.add(event.logprobs or []) if built is not None else None
                yield header.object([text_choice(index, event.text, None, said)])
            else:
                yield header.object([text_choice(index, "", event.reason)])
    except (GeneratorExit, asyncio.CancelledError):
        _record(outcome, completion)
        raise
    _record(outcome, completion)
    used = completion.usage()
    yield header.object([], usage=text_usage(plan.prompt_tokens, used.completion_tokens))


def _record(outcome: Outcome, completion: TextCompletion) -> None:
    """What was read and made, also of a completion whose client left."""
    used = completion.usage()
    if used.total:
        outcome.served_by(completion.header.model)
        outcome.usage = used
