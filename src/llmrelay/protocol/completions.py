"""``POST /v1/completions`` (legacy): the request (``CreateCompletionRequest``), and the
``text_completion`` objects and legacy ``logprobs`` of its answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.decoding import decode
from llmrelay.protocol.request import Int64, Penalty, Stop, StreamOptions, Temperature, TopP
from llmrelay.protocol.response import random_id

#: a completion may be asked for none (with ``echo``: the prompt back, scored)
MaxTokens = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
MAX_PROMPTS = 2048


class CompletionsRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    model: str
    prompt: str | list[Any] | None = None
    best_of: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    echo: bool | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[int, msgspec.Meta(ge=-100, le=100)]] | None = None
    logprobs: Annotated[int, msgspec.Meta(ge=0, le=5)] | None = None
    max_tokens: MaxTokens | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    presence_penalty: Penalty | None = None
    seed: Int64 | None = None
    stop: Stop | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    user: str | None = None

    @property
    def limit(self) -> int:
        """The longest completion asked for (16 unless set, as OpenAI's)."""
        return 16 if self.max_tokens is None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def prompts(self) -> list[str | list[int]]:
        """Each prompt: a text, or token ids."""
        value = self.prompt
        if value is None or isinstance(value, str):
            return [value or ""]
        if all(isinstance(v, int) for v in value):
            return [value]
        return list(value)


_decoder = msgspec.json.Decoder(CompletionsRequest)


def parse_completions_request(body: bytes) -> CompletionsRequest:
    request = decode(_decoder, body)
    value = request.prompt
    if isinstance(value, list) and not _prompt_list(value):
        raise InvalidRequestError(
            "Invalid value for 'prompt': a string, an array of strings, an array of token ids, "
            f"or an array of such arrays (1 to {MAX_PROMPTS}).",
            param="prompt",
        )
    return request


def _prompt_list(value: list[Any]) -> bool:
    if not 1 <= len(value) <= MAX_PROMPTS:
        return False
    return (
        all(isinstance(v, str) for v in value)
        or all(_token(v) for v in value)
        or all(isinstance(v, list) and v and all(_token(t) for t in v) for v in value)
    )


def _token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class CompletionHeader:
    """What every object of one ``text_completion`` answer shares."""

    model: str
    system_fingerprint: str
    id: str = field(default_factory=lambda: random_id("cmpl-", 29))
    created: int = field(default_factory=lambda: int(time.time()))

    def object(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": choices,
            **extra,
        }


def text_choice(
    index: int, text: str, finish_reason: str | None, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}


def text_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class LegacyLogprobs:
    """The legacy ``logprobs`` of one choice (``tokens``, ``token_logprobs``, ``top_logprobs``
    as token -> logprob, ``text_offset`` in the prompt and completion's text), built from chat
    logprob entries as tokens come."""

    __slots__ = ("offset", "text_offset", "token_logprobs", "tokens", "top_logprobs")

    def __init__(self, offset: int) -> None:
        self.offset = offset  # where the next token's text begins
        self.tokens: list[str] = []
        self.token_logprobs: list[float] = []
        self.top_logprobs: list[dict[str, float]] = []
        self.text_offset: list[int] = []

    def add(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Take a delta's entries; the legacy object of these alone (for a stream's chunk)."""
        start = len(self.tokens)
        for entry in entries:
            token, logprob = entry["token"], entry["logprob"]
            top = {t["token"]: t["logprob"] for t in entry.get("top_logprobs") or ()}
            top.setdefault(token, logprob)  # the sampled token is always among them
            self.tokens.append(token)
            self.token_logprobs.append(logprob)
            self.top_logprobs.append(top)
            self.text_offset.append(self.offset)
            self.offset += len(token)
        return self.since(start)

    def since(self, start: int = 0) -> dict[str, Any]:
        return {
            "tokens": self.tokens[start:],
            "token_logprobs": self.token_logprobs[start:],
            "top_logprobs": self.top_logprobs[start:],
            "text_offset": self.text_offset[start:],
        }
