"""``Outcome``: how one request went, filled in by the layers that learn it, written by the meter.

The HTTP edge makes it (which endpoint, which model was asked for, whether it streams, who asks)
and marks a client that left; the router names the deployment it tries; the provider that
answers records the model that answered and the usage, also of an answer cut short; the meter
times it and writes it to the ledger as one row. Nothing of it travels in context variables.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmrelay.pricing.price import Price


class Usage:
    """Tokens one request used, and where the figures come from: ``reported`` by the backend or
    ``counted`` by llmrelay (the backend reported none)."""

    __slots__ = (
        "cache_write_tokens",
        "cached_tokens",
        "completion_tokens",
        "prompt_tokens",
        "source",
    )

    def __init__(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        source: str = "reported",
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens  # prompt tokens read from a cache
        self.cache_write_tokens = cache_write_tokens  # prompt tokens written to one (Anthropic)
        self.source = source

    @classmethod
    def of(cls, usage: object, source: str = "reported") -> Usage | None:
        """Chat Completions' ``usage`` object as a backend sent it: a count that is no number
        counts 0 (the client gets the object as it was), and what is no object is none."""
        if not isinstance(usage, dict) or not usage:
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        return cls(
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            cached_tokens=_count(cached),
            source=source,
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def response_usage(usage: object) -> Usage | None:
    """The Responses API's ``usage`` object as a backend sent it."""
    if not isinstance(usage, dict) or not usage:
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        _count(usage.get("input_tokens")),
        _count(usage.get("output_tokens")),
        cached_tokens=_count(cached),
    )


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


class Outcome:
    """One request's outcome. ``endpoint``: the API it came in by (``chat``, ``responses``...)."""

    __slots__ = (
        "cost",
        "deployment",
        "disconnected",
        "endpoint",
        "error_code",
        "key_id",
        "key_name",
        "latency_ms",
        "model_requested",
        "model_served",
        "price",
        "request_id",
        "started",
        "status",
        "stream",
        "time",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        request_id: str,
        endpoint: str,
        model: str,
        stream: bool,
        key_id: str | None,
        key_name: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.endpoint = endpoint
        self.model_requested = model
        self.stream = stream
        self.key_id = key_id
        self.key_name = key_name
        self.time = time.time()  # the row's time; the ledger turns it into its column's type
        self.started = time.perf_counter()
        #: the deployment that answered, failed last, or was answering when the client left
        self.deployment: str | None = None
        self.model_served: str | None = None
        #: the answering deployment's price (None: it has none, and the request is unpriced)
        self.price: Price | None = None
        self.usage: Usage | None = None
        self.disconnected = False
        # how it ended, as the meter finds when it does
        self.status = 200
        self.error_code: str | None = None
        self.cost: int | None = None  # nano-dollars; None: tokens used at no known price
        self.ttft_ms: float | None = None
        self.latency_ms = 0.0

    def served_by(self, model: Any) -> None:
        """The model an answer names (a backend's ``model`` that is no string is not kept)."""
        if self.model_served is None and isinstance(model, str):
            self.model_served = model
