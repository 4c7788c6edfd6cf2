"""The gateway pipeline: who calls, may they, then which backend answers, and what it cost.

Read it top to bottom: ``authenticate`` (401), ``admit`` (403 for the model, 429 for limits and
budgets), then ``complete`` or ``stream``, which meter the request into the ledger however it
ends and settle what admitting it charged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, NoReturn

from llmrelay.errors import LLMRelayError
from llmrelay.gateway.auth import KeyChecker
from llmrelay.gateway.limits import Admission, Limiter
from llmrelay.gateway.metering import Meter
from llmrelay.protocol.request import ChatRequest
from llmrelay.providers.base import ChunkStream
from llmrelay.router.router import Router
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger


class Gateway:
    """``metering``: whether requests are written to the ledger (the operator may turn it off)."""

    def __init__(
        self, keys: KeyChecker, router: Router, ledger: Ledger, limiter: Limiter, *, metering: bool
    ) -> None:
        self.keys = keys
        self.router = router
        self.ledger = ledger
        self.limiter = limiter
        self.metering = metering

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The caller's stored key (None: a key from the config), or a 401."""
        return self.keys.authenticate(authorization)

    def admit(
        self, caller: KeyRecord | None, request: ChatRequest, body_size: int
    ) -> Awaitable[Admission]:
        """A 403 unless the caller may use the model; a 429 if it is over a limit or budget.
        (Not a coroutine itself: it hands on the limiter's, one fewer on every request.)"""
        try:
            self.keys.authorize(caller, request.model)
            output = self.router.output_tokens(request.model, request.completion_limit)
        except LLMRelayError as exc:
            return self._refuse(caller, exc)
        return self.limiter.admit(caller, request, body_size, output)

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

    async def complete(
        self, caller: KeyRecord | None, request: ChatRequest, admission: Admission, request_id: str
    ) -> dict[str, Any]:
        if not (self.metering or admission.charges):
            return await self.router.complete(request)
        meter = self._meter(caller, request, admission, request_id)
        try:
            result = await self.router.complete(request)
        except BaseException as exc:
            _failed(meter, admission, exc)
            raise
        meter.finish(result.get("usage"), result.get("model"))
        return result

    async def stream(
        self, caller: KeyRecord | None, request: ChatRequest, admission: Admission, request_id: str
    ) -> tuple[ChunkStream, Meter | None]:
        """The chunks, and the meter to show them to (``saw``) and tell how they ended
        (``stream_ended``); None if nothing is metered."""
        if not (self.metering or admission.charges):
            return await self.router.stream(request), None
        meter = self._meter(caller, request, admission, request_id)
        try:
            chunks = await self.router.stream(request)
        except BaseException as exc:
            _failed(meter, admission, exc)
            raise
        return chunks, meter

    def _meter(
        self, caller: KeyRecord | None, request: ChatRequest, admission: Admission, request_id: str
    ) -> Meter:
        ledger = self.ledger if self.metering else None
        return Meter(ledger, request, caller.id if caller else None, request_id, admission)


def _failed(meter: Meter, admission: Admission, exc: BaseException) -> None:
    """Meter a request whose backend failed, or whose client went away first (cancelled: billed
    for what the provider had made, if it could tell). (Not a coroutine wrapping the call: the
    try in each caller costs nothing on the way through.)"""
    if isinstance(exc, asyncio.CancelledError):
        meter.client_left()
    elif isinstance(exc, Exception):
        meter.finish(failure=_with_headers(exc, admission.headers))


def _with_headers(exc: Exception, headers: Mapping[str, str]) -> Exception:
    """The error, telling the caller where its limits stand as well (its own headers win)."""
    if isinstance(exc, LLMRelayError):
        exc.headers = {**headers, **exc.headers}
    return exc
