"""What the engine thread reports to the event loop about one choice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str
    logprobs: list[dict[str, object]] | None
    tokens: int  # the choice's generated tokens so far, this text's included


@dataclass(frozen=True, slots=True)
class Finished:
    index: int
    reason: str
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused


@dataclass(frozen=True, slots=True)
class Failed:
    message: str


Event = TextDelta | Finished | Failed
