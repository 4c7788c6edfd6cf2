"""The gateway pipeline: who calls, may they, then which backend answers, and what it cost.

Read it top to bottom, the same for every API a request comes in by: ``authenticate`` (401),
``admit`` (403 for the model, 429 for limits and budgets), then ``answer`` or ``stream``, which
meter the request into the ledger however it ends (``end``) and settle what admitting it
charged to the tokens it used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from typing import NoReturn

from llmrelay.errors import LLMRelayError, PermissionDeniedError, UnavailableError
from llmrelay.gateway.auth import KeyChecker
from llmrelay.gateway.limits import Admission, Limiter
from llmrelay.gateway.metering import Meter
from llmrelay.outcome import Outcome
from llmrelay.pricing.price import Price
from llmrelay.providers.base import Call, StreamItem
from llmrelay.router.router import Answer, HeldStream, Router
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger


class Gateway:
    """``metering``: whether requests are written to the ledger (the operator may turn it off);
    ``observed``: whether the request log or the metrics read how requests ended (the meter
    finds it)."""

    def __init__(
        self,
        keys: KeyChecker,
        router: Router,
        ledger: Ledger,
        limiter: Limiter,
        *,
        metering: bool,
        observed: bool = False,
    ) -> None:
        self.keys = keys
        self.router = router
        self.ledger = ledger
        self.limiter = limiter
        self.metering = metering
        self.observed = observed
        self.in_flight = 0  # admitted requests not ended yet

    def authenticate(
        self, authorization: str | None, api_key: str | None = None
    ) -> KeyRecord | None:
        """The caller's stored key (None: a key from the config), or a 401."""
        return self.keys.authenticate(authorization, api_key)

    def admit(self, caller: KeyRecord | None, call: Call, body_size: int) -> Awaitable[Admission]:
        """A 403 unless the caller may use the model; a 429 if it is over a limit or budget.
        (Not a coroutine itself: it hands on the limiter's, one fewer on every request.)"""
        try:
            self.authorize(caller, call.model)
            output = self.router.output_tokens(call.model, call.max_output)
            price = self._worst_price(caller, call.model)
        except LLMRelayError as exc:
            return self._refuse(caller, exc)
        return self.limiter.admit(caller, body_size, output * call.choices, price)

    def _worst_price(self, caller: KeyRecord | None, model: str) -> Price | None:
        """For a key with a money budget, the dearest price of the model's deployments; a 403
        if one has no price (what it costs could not be kept within the budget)."""
        if caller is None or not caller.budget_nanousd:
            return None
        price = self.router.worst_price(model)
        if price is None:
            raise PermissionDeniedError(
                f"The model `{model}` has no price, and this API key has a budget in money: "
                "ask the operator to price it.",
                code="model_not_priced",
            )
        return price

    def authorize(self, caller: KeyRecord | None, model: str) -> None:
        """A 403 unless the caller may use the model (as asked for, or as a wildcard maps it)."""
        self.keys.authorize(caller, model, self.router.mapped(model))

    async def _refuse(self, caller: KeyRecord | None, exc: LLMRelayError) -> NoReturn:
        await self.tell_limits(caller, exc)
        raise exc

    async def limit_headers(self, caller: KeyRecord | None) -> dict[str, str]:
        """Where the caller's rate limits stand, for a response that was not charged."""
        return await self.limiter.standing(caller)

    async def tell_limits(self, caller: KeyRecord | None, exc: LLMRelayError) -> None:
        """An error before admission still tells the caller where its limits stand."""
        _with_headers(exc, await self.limiter.standing(caller))

    def models_for(self, caller: KeyRecord | None) -> list[str]:
        return [m for m in self.router.model_names() if self.keys.may_use(caller, m)]

    async def answer(self, call: Call, admission: Admission, outcome: Outcome) -> Answer:
        meter = self._meter(call, admission, outcome)
        try:
            answer = await self.router.complete(call, outcome)
        except BaseException as exc:
            self.end(meter, admission, outcome, exc)
            raise
        self.end(meter, admission, outcome)
        return answer

    async def stream(self, call: Call, admission: Admission, outcome: Outcome) -> MeteredStream:
        """The stream, to show its meter each item and tell how it ended."""
        meter = self._meter(call, admission, outcome)
        try:
            chunks = await self.router.stream(call, outcome)
        except BaseException as exc:
            self.end(meter, admission, outcome, exc)
            raise
        return MeteredStream(self, chunks, meter, admission, outcome)

    def _meter(self, call: Call, admission: Admission, outcome: Outcome) -> Meter | None:
        """The request's meter (None where nothing is metered: no ledger, nothing to settle)."""
        self.in_flight += 1
        if not (self.metering or self.observed or admission.charges):
            return None
        return Meter(self.ledger if self.metering else None, call.chat, outcome)

    def end(
        self,
        meter: Meter | None,
        admission: Admission,
        outcome: Outcome,
        exc: BaseException | None = None,
    ) -> None:
        """Meter a request however it ended, and settle its admission with the tokens it used.
        Cancelled: its client left (billed for what the provider had made, if it could tell), or
        the server is stopping, which is the request's failure. (Not a coroutine wrapping the
        call: the try in each caller costs nothing on the way through.)"""
        self.in_flight -= 1
        if isinstance(exc, asyncio.CancelledError) and not outcome.disconnected:
            exc = stopping()
        elif isinstance(exc, LLMRelayError):
            _with_headers(exc, admission.headers)
        elif not isinstance(exc, Exception):
            exc = None  # cancelled because the client left: no failure
        if meter is not None:
            admission.settle(meter.finish(exc), outcome.cost or 0)

    async def drained(self, seconds: float) -> None:
        """Wait, at most ``seconds``, for the requests in flight to end."""
        deadline = time.monotonic() + seconds
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


class MeteredStream:
    """A stream with its meter: the HTTP edge shows it each item (``saw``) and, once, how the
    stream ended (``ended``). ``native``: items in the client's own API."""

    __slots__ = ("_admission", "_ended", "_gateway", "_meter", "_outcome", "chunks", "native")

    def __init__(
        self,
        gateway: Gateway,
        chunks: HeldStream,
        meter: Meter | None,
        admission: Admission,
        outcome: Outcome,
    ) -> None:
        self._gateway = gateway
        self.chunks = chunks
        self.native = chunks.native
        self._meter = meter
        self._admission = admission
        self._outcome = outcome
        self._ended = False

    def saw(self, item: StreamItem) -> None:
        if self._meter is not None:
            self._meter.saw(item)

    async def ended(self, failure: BaseException | None = None) -> None:
        """Meter the stream (billed for what was forwarded if no usage was recorded)."""
        if self._ended:
            return
        self._ended = True
        if self._meter is not None:
            await self._meter.count_forwarded()
        self._gateway.end(self._meter, self._admission, self._outcome, failure)


def stopping() -> UnavailableError:
    return UnavailableError(
        "The server is shutting down. Please try again.", code="server_shutting_down"
    )


def _with_headers(exc: Exception, headers: Mapping[str, str]) -> Exception:
    """The error, telling the caller where its limits stand as well (its own headers win)."""
    if isinstance(exc, LLMRelayError):
        exc.headers = {**headers, **exc.headers}
    return exc
