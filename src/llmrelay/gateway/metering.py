"""``Meter``: times one request and writes its outcome to the usage ledger when it ends.

The HTTP edge shows a stream's meter each item on its way to the client (``saw``), for the time
to first token and for what was forwarded. The usage is what the provider recorded in the
request's ``Outcome`` (the backend's figures, or, cut short on the built-in model, the prompt and
the tokens the model made); a stream that ends without any (the client left, the upstream broke
it) is billed for what was forwarded, counted with the built-in tokenizer, tool-call arguments
included.
"""

from __future__ import annotations

import time
from typing import Any

from llmrelay.errors import LLMRelayError
from llmrelay.outcome import Outcome, Usage
from llmrelay.protocol.events import decoded
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import StreamItem
from llmrelay.providers.counting import chunk_deltas, counted_usage, said
from llmrelay.store.ledger import Ledger


class Meter:
    __slots__ = ("_finished", "_forwarded", "_ledger", "_outcome", "_request", "_ttft_ms")

    def __init__(
        self, ledger: Ledger | None, request: ChatRequest | None, outcome: Outcome
    ) -> None:
        """``request``: the chat request, to count a stream's prompt by (None: a request passed
        through natively, whose prompt is not counted)."""
        self._ledger = ledger
        self._request = request
        self._outcome = outcome
        self._ttft_ms: float | None = None
        self._finished = False
        self._forwarded: list[StreamItem] = []  # a stream's items, as they were sent

    def saw(self, item: StreamItem) -> None:
        """A stream's item on its way to the client. Time to first token: the first item that
        carries generated text (the opening chunk with only the role does not)."""
        if self._ttft_ms is None and _generated(item):
            self._ttft_ms = (time.perf_counter() - self._outcome.started) * 1000
        self._forwarded.append(item)

    async def count_forwarded(self) -> None:
        """For a stream that ended with no usage recorded: count what was forwarded."""
        outcome = self._outcome
        if outcome.usage is None and self._forwarded and not self._finished:
            chunks = _chunks(self._forwarded)
            for chunk in chunks[:1]:
                outcome.served_by(chunk.get("model"))
            counted = await counted_usage(self._request, chunk_deltas(chunks))
            outcome.usage = Usage.of(counted, source="counted")

    def finish(self, failure: BaseException | None = None) -> int:
        """Write the row, once; the tokens the request used (to settle its admission)."""
        if self._finished:
            return 0
        self._finished = True
        outcome = self._outcome
        if failure is not None:
            if isinstance(failure, LLMRelayError):
                outcome.status, outcome.error_code = failure.status, failure.code or failure.type
            else:
                outcome.status, outcome.error_code = 500, "server_error"
        usage = outcome.usage
        price = outcome.price
        if usage is None or not usage.total:
            outcome.cost = 0
        elif price is not None:
            outcome.cost = price.cost(usage)
        outcome.ttft_ms = self._ttft_ms
        outcome.latency_ms = (time.perf_counter() - outcome.started) * 1000
        if self._ledger is not None:
            self._ledger.record(
                {
                    "created_at": outcome.time,
                    "request_id": outcome.request_id,
                    "key_id": outcome.key_id,
                    "endpoint": outcome.endpoint,
                    "model_requested": outcome.model_requested,
                    "model_served": outcome.model_served,
                    "backend": outcome.deployment,
                    "prompt_tokens": usage.prompt_tokens if usage else 0,
                    "completion_tokens": usage.completion_tokens if usage else 0,
                    "cached_tokens": usage.cached_tokens if usage else 0,
                    "cache_write_tokens": usage.cache_write_tokens if usage else 0,
                    "cost_nanousd": outcome.cost,
                    "usage_source": usage.source if usage else "none",
                    "status": outcome.status,
                    "error_code": outcome.error_code,
                    "stream": 1 if outcome.stream else 0,
                    "ttft_ms": self._ttft_ms,
                    "latency_ms": outcome.latency_ms,
                    "disconnected": 1 if outcome.disconnected else 0,
                }
            )
        return usage.total if usage else 0


#: the fields that carry generated text, as a backend frames them: a chat delta's, a legacy
#: completion's ``text``, and in a stream of the client's own API the Responses API's string
#: ``delta`` and Anthropic's ``text`` and ``partial_json``
_GENERATED = (
    b'"content":"',
    b'"arguments":"',
    b'"refusal":"',
    b'"text":"',
    b'"delta":"',
    b'"partial_json":"',
)


def _generated(item: StreamItem) -> bool:
    if isinstance(item, dict):
        return any(said(delta) for delta in chunk_deltas([item]))
    # found with bytes.find, which a regular expression tried at every quote would not match
    # in speed
    for field in _GENERATED:
        at = item.find(field)
        while at >= 0:
            at += len(field)
            if item[at : at + 1] != b'"':  # not an empty string
                return True
            at = item.find(field, at)
    return False


def _chunks(items: list[StreamItem]) -> list[dict[str, Any]]:
    """The chunk objects among stream items, framed ones decoded."""
    chunks: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            chunks.append(item)
        else:
            chunks += decoded(item)
    return chunks
