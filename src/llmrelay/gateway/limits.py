"""``Limiter``: a key's requests and tokens per minute, and its token budget.

The counting is the ``limits`` package's, on its memory storage, or on Redis when a Redis URL is
configured, so that every instance on that Redis counts against one limit:

- requests and tokens per minute: fixed one-minute windows, counted on the storage in one step
  (constant cost at any rate; a moving window costs in proportion to the rate, a sliding counter
  almost twice as much); a request is charged 1, and its estimated tokens (its size / 4 plus its
  maximum output) when it is admitted, corrected to the real count when it ends;
- the budget: a counter per budget period (ever, the UTC day or the UTC month), charged the
  request's worst case (its size in bytes, plus its maximum output, plus the chat template) before
  it runs and corrected to the real count when it ends, so parallel requests cannot overspend it
  by more than one reservation. The counter starts from the ledger's total for the period.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from datetime import UTC, datetime, timedelta

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string

from llmrelay.errors import QuotaExceededError, RateLimitError
from llmrelay.protocol.request import ChatRequest
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger

#: tokens the chat template may add around the messages (roles, a default system prompt)
TEMPLATE_TOKENS = 64
_DAY = 86400
_FOREVER = 10 * 365 * _DAY
_WINDOWS = {"total": "in all", "day": "today (UTC)", "month": "this month (UTC)"}


class Admission:
    """What admitting a request decided: the headers to send, and how to settle it."""

    __slots__ = ("charges", "headers", "waits")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        # (storage key, its expiry, what was charged) of the tokens window and of the budget
        self.charges: list[tuple[str, int, int]] = []
        # seconds until each window of the key resets
        self.waits: dict[str, float] = {}


class Limiter:
    def __init__(self, ledger: Ledger, redis_url: str | None = None) -> None:
        self._ledger = ledger
        storage = storage_from_string(f"async+{redis_url}") if redis_url else MemoryStorage()
        assert isinstance(storage, Storage)
        self._storage = storage
        self._items: dict[tuple[str, int], RateLimitItemPerMinute] = {}  # (kind, limit)
        self._window_ends: dict[str, float] = {}
        self._seeded: set[str] = set()
        self._seeding = asyncio.Lock()

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
        if caller.rpm:
            await self._count_request(caller, admission)
        if caller.tpm:
            await self._charge_tokens(caller, body_size // 4 + output, admission)
        if caller.budget_tokens:
            try:
                await self._reserve_budget(caller, body_size + output + TEMPLATE_TOKENS, admission)
            except QuotaExceededError:
                await self.settle(admission, 0)
                raise
        return admission

    async def settle(self, admission: Admission, used: int) -> None:
        """Correct what was charged at admission to the real count."""
        for key, expiry, charged in admission.charges:
            if used != charged:
                await self._storage.incr(key, expiry, amount=used - charged)

    async def _count_request(self, caller: KeyRecord, admission: Admission) -> None:
        limit = caller.rpm or 0
        allowed, _ = await self._charge("requests", caller.id, limit, 1, admission)
        if not allowed:
            raise _rate_limited(
                "requests",
                f"Rate limit reached for requests per minute (RPM) on this API key: limit "
                f"{limit}, used {limit}, requested 1.",
                admission.waits["requests"],
                admission.headers,
            )

    async def _charge_tokens(self, caller: KeyRecord, estimate: int, admission: Admission) -> None:
        limit = caller.tpm or 0
        if estimate > limit:
            raise _rate_limited(
                "tokens",
                f"Request too large for tokens per minute (TPM) on this API key: limit "
                f"{limit}, requested {estimate}. Ask for fewer tokens (max_tokens) or "
                "send a shorter prompt.",
                None,
                admission.headers,
            )
        allowed, used = await self._charge("tokens", caller.id, limit, estimate, admission)
        if not allowed:
            raise _rate_limited(
                "tokens",
                f"Rate limit reached for tokens per minute (TPM) on this API key: limit "
                f"{limit}, used {used}, requested {estimate}.",
                admission.waits["tokens"],
                admission.headers,
            )

    async def _charge(
        self, kind: str, key_id: str, limit: int, cost: int, admission: Admission
    ) -> tuple[bool, int]:
        """Charge ``cost`` to the key's current one-minute window of ``kind``, unless that would
        pass ``limit``; set the headers either way. Whether it was charged, and the window's
        count."""
        item = self._items.get((kind, limit))
        if item is None:
            namespace = f"llmrelay-{kind}"
            item = self._items[kind, limit] = RateLimitItemPerMinute(limit, namespace=namespace)
        key, expiry = item.key_for(key_id), item.get_expiry()
        used = await self._storage.incr(key, expiry, amount=cost)
        opened, allowed = used == cost, used <= limit
        if allowed and kind == "tokens":  # settled on the real count; a request stays one
            admission.charges.append((key, expiry, cost))
        elif not allowed:  # a refused request is not charged
            used = await self._storage.incr(key, expiry, amount=-cost)
        end = await self._window_end(key, expiry, opened=opened)
        wait = admission.waits[kind] = max(end - time.time(), 0)
        admission.headers.update(_headers(kind, limit, limit - used, wait))
        return allowed, used

    async def _window_end(self, key: str, expiry: int, *, opened: bool) -> float:
        """When the window of ``key`` ends: remembered, or asked of the storage once per window
        (``opened``: this charge found the window empty, so it began now). On Redis each ask is
        a round trip."""
        now = time.time()
        end = self._window_ends.get(key, 0.0)
        if end <= now:
            end = now + expiry if opened else await self._storage.get_expiry(key)
            self._window_ends[key] = end
        return end

    async def _reserve_budget(self, caller: KeyRecord, reserve: int, admission: Admission) -> None:
        budget = caller.budget_tokens or 0
        period, since, expiry = _period(caller.budget_period or "total")
        key = f"llmrelay-budget/{caller.id}/{period}/{budget}"
        await self._seed(caller.id, key, since, expiry)
        used = await self._storage.incr(key, expiry, amount=reserve)
        if used > budget:
            await self._storage.incr(key, expiry, amount=-reserve)
            window = _WINDOWS[caller.budget_period or "total"]
            raise QuotaExceededError(
                f"This API key has used its token budget ({budget} tokens {window}); this "
                f"request could need up to {reserve} more.",
                headers={**admission.headers, "x-should-retry": "false"},
            )
        admission.charges.append((key, expiry, reserve))

    async def _seed(self, key_id: str, key: str, since: datetime | None, expiry: int) -> None:
        """Start the period's counter from the ledger, once for all instances sharing it."""
        if key in self._seeded:
            return
        async with self._seeding:
            if key in self._seeded:
                return
            if await self._storage.incr(key + "/seeded", expiry) == 1:
                await self._ledger.flush()
                spent = await self._ledger.spent(key_id, since)
                if spent:
                    await self._storage.incr(key, expiry, amount=spent)
            self._seeded.add(key)


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


def _headers(kind: str, limit: int, remaining: int, wait: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(remaining, 0)),
        f"x-ratelimit-reset-{kind}": _duration(wait),
    }


def _duration(seconds: float) -> str:
    """As OpenAI writes it: ``450ms``, ``12s``, ``1m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def _rate_limited(
    kind: str, message: str, wait: float | None, headers: dict[str, str]
) -> RateLimitError:
    headers = dict(headers)
    if wait is None:  # it can never pass
        headers["x-should-retry"] = "false"
    else:
        message += f" Please try again in {_duration(wait)}."
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    error = RateLimitError(message, code="rate_limit_exceeded", headers=headers)
    error.type = kind
    return error
