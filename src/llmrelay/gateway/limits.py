"""``Limiter``: a key's requests and tokens per minute, and its token budget.

The counts live in this process (``LocalCounters``), or on Redis when a Redis URL is configured,
through the ``limits`` package's storage, so that every instance on that Redis counts against one
limit:

- requests and tokens per minute: fixed windows, each clock minute, counted in one step (constant
  cost at any rate; a moving window costs in proportion to the rate, a sliding counter almost
  twice as much); a request is charged 1, and its estimated tokens (its size / 4 plus its
  maximum output) when it is admitted, corrected to the real count when it ends;
- the budget: a counter per budget period (ever, the UTC day or the UTC month), charged the
  request's worst case (its size in bytes, plus its maximum output, plus the chat template) before
  it runs and corrected to the real count when it ends, so parallel requests cannot overspend it
  by more than one reservation. The counter starts from the ledger's total for the period.

Corrections are gathered and applied every ``SETTLE_SECONDS``, not one storage call per request;
a request that would be refused first applies the corrections its counter is owed. Until then a
counter holds a little more than was used: it can refuse early, never admit too much.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from limits.aio.storage import Storage
from limits.storage import storage_from_string

from llmrelay.errors import QuotaExceededError, RateLimitError
from llmrelay.gateway.periodic import Periodic
from llmrelay.protocol.request import ChatRequest
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger

#: tokens the chat template may add around the messages (roles, a default system prompt)
TEMPLATE_TOKENS = 64
SETTLE_SECONDS = 0.1
_MINUTE = 60
_DAY = 86400
_FOREVER = 10 * 365 * _DAY
_HEADER_NAMES = {
    kind: (
        f"x-ratelimit-limit-{kind}",
        f"x-ratelimit-remaining-{kind}",
        f"x-ratelimit-reset-{kind}",
    )
    for kind in ("requests", "tokens")
}
_WINDOWS = {"total": "in all", "day": "today (UTC)", "month": "this month (UTC)"}


class Counters(Protocol):
    """Where the counts live: ``LocalCounters``, or a ``limits`` storage."""

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def get(self, key: str) -> int: ...


class LocalCounters:
    """Counters in this process, each dropped ``expiry`` seconds after it began.

    Not ``limits``' memory storage: that one starts an asyncio task on nearly every call to look
    for expired counters, and looks through all of them (4.7 µs a call in a tight loop, where
    that task never got to run; more in the server). Here a call is two dictionary lookups, and
    expired counters are swept once a minute.
    """

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, when it expires)
        self._next_sweep = 0.0

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        count, expires = self._counts.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + expiry
        self._counts[key] = (count := count + amount), expires
        return count

    async def get(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if expires > time.time() else 0

    def _sweep(self, now: float) -> None:
        self._counts = {k: entry for k, entry in self._counts.items() if entry[1] > now}
        self._next_sweep = now + _MINUTE


class Admission:
    """What admitting a request decided: the headers to send, and how to settle it."""

    __slots__ = ("charges", "headers", "waits")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        # (counter, its expiry, what was charged) of the tokens window and of the budget
        self.charges: list[tuple[str, int, int]] = []
        # seconds until each window of the key resets
        self.waits: dict[str, float] = {}


class Limiter:
    def __init__(self, ledger: Ledger, redis_url: str | None = None) -> None:
        self._ledger = ledger
        self._counters = _shared_counters(redis_url) if redis_url else LocalCounters()
        self._owed: dict[str, tuple[int, int]] = {}  # counter -> (its expiry, correction)
        self._seeded: set[str] = set()
        self._seeding = asyncio.Lock()
        self._settling = Periodic(SETTLE_SECONDS, self._apply_owed, "applying settlements")

    async def start(self) -> None:
        self._settling.start()

    async def aclose(self) -> None:
        await self._settling.stop()
        await self._apply_owed()

    async def admit(
        self, caller: KeyRecord | None, request: ChatRequest, body_size: int, max_output: int
    ) -> Admission:
        """Charge the request to the caller's limits and budget, or raise a 429."""
        admission = Admission()
        if caller is None:
            return admission
        output = (request.max_completion_tokens or request.max_tokens or max_output) * (
            request.n or 1
        )
        if rpm := caller.rpm:
            allowed, _ = await self._charge(admission, "requests", caller.id, rpm, 1)
            if not allowed:
                raise _rate_limited(
                    admission,
                    "requests",
                    f"Rate limit reached for requests per minute (RPM) on this API key: limit "
                    f"{rpm}, used {rpm}, requested 1.",
                )
        if tpm := caller.tpm:
            estimate = body_size // 4 + output
            if estimate > tpm:
                raise _rate_limited(
                    admission,
                    "tokens",
                    f"Request too large for tokens per minute (TPM) on this API key: limit "
                    f"{tpm}, requested {estimate}. Ask for fewer tokens (max_tokens) or send a "
                    "shorter prompt.",
                    never=True,
                )
            allowed, used = await self._charge(admission, "tokens", caller.id, tpm, estimate)
            if not allowed:
                raise _rate_limited(
                    admission,
                    "tokens",
                    f"Rate limit reached for tokens per minute (TPM) on this API key: limit "
                    f"{tpm}, used {used}, requested {estimate}.",
                )
        if caller.budget_tokens:
            try:
                await self._reserve_budget(caller, body_size + output + TEMPLATE_TOKENS, admission)
            except QuotaExceededError:
                self.settle(admission, 0)
                raise
        return admission

    async def standing(self, caller: KeyRecord | None) -> dict[str, str]:
        """The headers of the caller's windows as they stand, for a response that charged
        nothing."""
        headers: dict[str, str] = {}
        if caller is None:
            return headers
        now = time.time()
        minute = int(now // _MINUTE)
        for kind, limit in (("requests", caller.rpm), ("tokens", caller.tpm)):
            if limit:
                used = await self._counters.get(_window(kind, caller.id, minute))
                _set_headers(headers, kind, limit, used, (minute + 1) * _MINUTE - now)
        return headers

    def settle(self, admission: Admission, used: int) -> None:
        """Owe each counter the difference between what admitting charged and ``used``."""
        for key, expiry, charged in admission.charges:
            if used != charged:
                self._owe(key, expiry, used - charged)

    def _owe(self, key: str, expiry: int, amount: int) -> None:
        self._owed[key] = expiry, self._owed.get(key, (0, 0))[1] + amount

    async def _apply_owed(self) -> None:
        owed, self._owed = self._owed, {}
        try:
            for key in list(owed):
                expiry, amount = owed[key]
                await self._counters.incr(key, expiry, amount)
                del owed[key]
        finally:  # what could not be applied (Redis away) is still owed
            for key, (expiry, amount) in owed.items():
                self._owe(key, expiry, amount)

    async def _charge_within(
        self, key: str, expiry: int, cost: int, limit: int
    ) -> tuple[bool, int]:
        """Add ``cost`` to a counter unless that passes ``limit`` even with what the counter is
        owed applied. Whether it was added, and the counter's count."""
        used = await self._counters.incr(key, expiry, cost)
        if used > limit and key in self._owed:
            used = await self._counters.incr(key, expiry, self._owed.pop(key)[1])
        if used <= limit:
            return True, used
        return False, await self._counters.incr(key, expiry, -cost)

    async def _charge(
        self, admission: Admission, kind: str, key_id: str, limit: int, cost: int
    ) -> tuple[bool, int]:
        """Charge ``cost`` to the key's window of ``kind`` for this minute, unless that would
        pass ``limit``; set the headers either way. Whether it was charged, and the window's
        count."""
        now = time.time()
        minute = int(now // _MINUTE)
        key, expiry = _window(kind, key_id, minute), 2 * _MINUTE
        allowed, used = await self._charge_within(key, expiry, cost, limit)
        if allowed and kind == "tokens":  # settled on the real count; a request stays one
            admission.charges.append((key, expiry, cost))
        wait = admission.waits[kind] = (minute + 1) * _MINUTE - now
        _set_headers(admission.headers, kind, limit, used, wait)
        return allowed, used

    async def _reserve_budget(self, caller: KeyRecord, reserve: int, admission: Admission) -> None:
        budget = caller.budget_tokens or 0
        period, since, expiry = _period(caller.budget_period or "total")
        key = f"llmrelay/budget/{caller.id}/{period}/{budget}"
        if key not in self._seeded:
            await self._seed(caller.id, key, since, expiry)
        allowed, _ = await self._charge_within(key, expiry, reserve, budget)
        if not allowed:
            window = _WINDOWS[caller.budget_period or "total"]
            raise QuotaExceededError(
                f"This API key has used its token budget ({budget} tokens {window}); this "
                f"request could need up to {reserve} more.",
                headers={**admission.headers, "x-should-retry": "false"},
            )
        admission.charges.append((key, expiry, reserve))

    async def _seed(self, key_id: str, key: str, since: datetime | None, expiry: int) -> None:
        """Start the period's counter from the ledger, once for all instances sharing it."""
        async with self._seeding:
            if key in self._seeded:
                return
            if await self._counters.incr(key + "/seeded", expiry) == 1:
                await self._ledger.flush()
                spent = await self._ledger.spent(key_id, since)
                if spent:
                    await self._counters.incr(key, expiry, spent)
            self._seeded.add(key)


def _window(kind: str, key_id: str, minute: int) -> str:
    return f"llmrelay/{kind}/{key_id}/{minute}"


def _set_headers(headers: dict[str, str], kind: str, limit: int, used: int, wait: float) -> None:
    limit_name, remaining_name, reset_name = _HEADER_NAMES[kind]
    headers[limit_name] = str(limit)
    headers[remaining_name] = str(max(limit - used, 0))
    headers[reset_name] = _duration(wait)


def _shared_counters(redis_url: str) -> Counters:
    storage = storage_from_string(f"async+{redis_url}")
    assert isinstance(storage, Storage)  # the async+ scheme makes one
    return storage


def _period(name: str) -> tuple[str, datetime | None, int]:
    """The budget period's id, its start (None: since ever), and how long its counter is kept
    (a day past the period's end, so that no instance finds it gone while still in it)."""
    return _period_at(name, int(time.time()) // 60)


@functools.lru_cache(maxsize=16)
def _period_at(name: str, minute: int) -> tuple[str, datetime | None, int]:
    now = datetime.fromtimestamp(minute * 60, UTC).replace(tzinfo=None)
    if name == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        period = start.strftime("%Y-%m-%d")
    elif name == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        period = start.strftime("%Y-%m")
    else:
        return "total", None, _FOREVER
    return period, start, int((end - now).total_seconds()) + _DAY


def _duration(seconds: float) -> str:
    """As OpenAI writes it: ``450ms``, ``12s``, ``1m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def _rate_limited(
    admission: Admission, kind: str, message: str, *, never: bool = False
) -> RateLimitError:
    """The 429 for a window of ``kind``; ``never``: the request could not pass in any window."""
    headers = dict(admission.headers)
    if never:
        headers["x-should-retry"] = "false"
    else:
        wait = admission.waits[kind]
        message += f" Please try again in {_duration(wait)}."
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    error = RateLimitError(message, code="rate_limit_exceeded", headers=headers)
    error.type = kind
    return error
