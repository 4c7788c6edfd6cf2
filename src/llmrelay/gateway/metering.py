"""``Meter``: times one request and writes its row in the usage ledger when it ends.

The HTTP edge shows a stream's meter each item on its way to the client, and tells it how the
stream ended: the usage chunk gives the figures; a stream that ends without one (the client
left, the upstream broke it) is billed for what was forwarded, counted with the built-in
tokenizer, tool-call arguments included (or, cut short on the built-in model, for the prompt
and tokens the model counted, in ``context.cut_short``). The admission is settled with the
real total, for limits and budgets (which meter a request even where the ledger is off).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from llmrelay import context
from llmrelay.errors import LLMRelayError
from llmrelay.gateway.limits import Admission
from llmrelay.protocol.events import data_payloads
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import StreamItem
from llmrelay.providers.counting import CountedUsage, chunk_deltas, counted_usage, said
from llmrelay.store.ledger import Ledger


class Meter:
    __slots__ = (
        "_admission",
        "_finished",
        "_forwarded",
        "_key_id",
        "_ledger",
        "_model",
        "_request",
        "_request_id",
        "_started",
        "_time",
        "_ttft_ms",
        "_usage",
    )

    def __init__(
        self,
        ledger: Ledger | None,
        request: ChatRequest,
        key_id: str | None,
        request_id: str,
        admission: Admission,
    ) -> None:
        self._ledger = ledger
        self._request = request
        self._key_id = key_id
        self._request_id = request_id
        self._admission = admission
        self._time = time.time()  # the row's time; the ledger turns it into its column's type
        self._started = time.perf_counter()
        self._ttft_ms: float | None = None
        self._finished = False
        # a stream's: what was sent, and the model and usage its chunks named
        self._forwarded: list[StreamItem] = []
        self._model: str | None = None
        self._usage: dict[str, Any] | None = None

    def saw(self, item: StreamItem) -> None:
        """A stream's item on its way to the client. Time to first token: the first item that
        carries generated text (the opening chunk with only the role does not)."""
        if self._ttft_ms is None and _generated(item):
            self._ttft_ms = (time.perf_counter() - self._started) * 1000
        if isinstance(item, dict):
            model, usage = item.get("model"), item.get("usage")
            if self._model is None and isinstance(model, str):
                self._model = model
            if usage and isinstance(usage, dict):
                self._usage = usage
        self._forwarded.append(item)

    async def stream_ended(self, failure: BaseException | None, *, disconnected: bool) -> None:
        """``finish`` for a stream: from its usage chunk; if it sent none, from the usage its
        provider counted when it was cut short (the built-in model's); else from what was
        forwarded, counted. (The HTTP edge calls ``saw`` and this rather than iterate the chunks
        through a metering generator: its hooks and steps cost more than the metering.)"""
        usage, model = self._usage, self._model
        if not usage and (cut := context.cut_short.get()) is not None:
            usage, model = cut.usage, model or cut.model
        if not usage and self._forwarded and not self._finished:
            usage = await counted_usage(self._request, chunk_deltas(_chunks(self._forwarded)))
        self.finish(usage, model, failure, disconnected)

    def client_left(self) -> None:
        """``finish`` for an answer cancelled because its client left: billed for what its
        provider had made, if it told (the built-in model does, in ``context.cut_short``)."""
        cut = context.cut_short.get()
        if cut is None:
            self.finish(disconnected=True)
        else:
            self.finish(cut.usage, cut.model, disconnected=True)

    def finish(
        self,
        usage: object = None,
        model: object = None,
        failure: BaseException | None = None,
        disconnected: bool = False,
    ) -> None:
        """Write the row, once. ``usage`` and ``model`` as the backend said them: a model that
        is no string is not recorded, and a count that is no number counts 0 (the client gets
        them as they were)."""
        if self._finished:
            return
        self._finished = True
        latency_ms = (time.perf_counter() - self._started) * 1000
        status, error_code = 200, None
        if failure is not None:
            if isinstance(failure, LLMRelayError):
                status, error_code = failure.status, failure.code or failure.type
            else:
                status, error_code = 500, "server_error"
        prompt = completion = 0
        source = "none"
        if usage and isinstance(usage, dict):
            prompt = _count(usage.get("prompt_tokens"))
            completion = _count(usage.get("completion_tokens"))
            source = "counted" if isinstance(usage, CountedUsage) else "reported"
        if self._ledger is not None:
            self._ledger.record(
                (
                    self._time,
                    self._request_id,
                    self._key_id,
                    self._request.model,
                    model if isinstance(model, str) else None,  # served
                    context.backend.get(),
                    prompt,
                    completion,
                    source,
                    status,
                    error_code,
                    1 if self._request.stream else 0,
                    self._ttft_ms,
                    latency_ms,
                    1 if disconnected else 0,
                )
            )
        self._admission.settle(prompt + completion)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


#: the fields of a delta that carry generated text, as an upstream frames them
_GENERATED = (b'"content":"', b'"arguments":"', b'"refusal":"')


def _generated(item: StreamItem) -> bool:
    if isinstance(item, dict):
        return any(said(choice.get("delta") or {}) for choice in item.get("choices") or ())
    # found with bytes.find: a regular expression tried at every quote of the JSON cost
    # 9k instructions a stream
    for field in _GENERATED:
        at = item.find(field)
        while at >= 0:
            at += len(field)
            if item[at : at + 1] != b'"':  # not an empty string
                return True
            at = item.find(field, at)
    return False


def _chunks(items: list[StreamItem]) -> list[dict[str, Any]]:
    """The chunk objects among stream items, framed ones decoded (an upstream's frame that is
    no JSON object has nothing to count)."""
    chunks: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            chunks.append(item)
            continue
        for data in data_payloads(item.split(b"\n")):
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:  # [DONE], or a broken frame
                continue
            if isinstance(chunk, dict):
                chunks.append(chunk)
    return chunks
