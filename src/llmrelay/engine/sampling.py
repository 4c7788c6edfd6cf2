"""Per-choice sampling: a llama.cpp sampler chain built from the request, and logprobs."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from llama_cpp._internals import LlamaModel, LlamaSampler
from llama_cpp.llama_grammar import LlamaGrammar

# Penalties look back over this many tokens, enough for any answer this engine gives.
PENALTY_WINDOW = 1024


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """How one choice is sampled; built by the provider from the validated request."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None
    # With a trigger the grammar applies only once the output matches it (tool choice "auto").
    grammar_trigger: str | None = None


def build_sampler(model: LlamaModel, params: SamplingParams, index: int) -> LlamaSampler:
    """The sampler chain for choice ``index``; with a seed, choice i uses seed + i."""
    sampler = LlamaSampler()
    if params.logit_bias:
        sampler.add_logit_bias(model.n_vocab(), params.logit_bias)
    if params.presence_penalty or params.frequency_penalty:
        sampler.add_penalties(
            model.n_vocab(), PENALTY_WINDOW, 1.0, params.frequency_penalty, params.presence_penalty
        )
    if params.grammar:
        grammar = LlamaGrammar.from_string(params.grammar)
        if params.grammar_trigger:
            sampler.add_grammar_lazy_patterns(model, grammar, [params.grammar_trigger], [])
        else:
            sampler.add_grammar(model, grammar)
    if params.temperature <= 0:
        sampler.add_greedy()
        return sampler
    if params.top_p < 1.0:
        sampler.add_top_p(params.top_p, 1)
    sampler.add_temp(params.temperature)
    seed = random.getrandbits(32) if params.seed is None else (params.seed + index) % 2**32
    sampler.add_dist(seed)
    return sampler


def token_logprobs(
    logits: np.ndarray, token: int, top: int, piece_of: Callable[[int], bytes]
) -> dict[str, object]:
    """OpenAI's ``ChatCompletionTokenLogprob`` for ``token`` under the model's raw distribution."""
    shifted = logits - logits.max()
    logprobs = shifted - np.log(np.exp(shifted).sum())
    entry = _entry(piece_of(token), float(logprobs[token]))
    alternatives = []
    if top:
        best = np.argpartition(-logprobs, top)[:top]
        best = best[np.argsort(-logprobs[best])]
        alternatives = [_entry(piece_of(int(t)), float(logprobs[t])) for t in best]
    entry["top_logprobs"] = alternatives
    return entry


def _entry(piece: bytes, logprob: float) -> dict[str, object]:
    return {
        "token": piece.decode("utf-8", errors="replace"),
        "logprob": logprob,
        "bytes": list(piece),
    }
