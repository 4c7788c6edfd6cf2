"""``Limiter``: a key's requests and tokens per minute, and its token budget.

The counts live in this process, or on Redis when a Redis URL is configured so that every
instance on that Redis counts against one limit (``gateway/counters.py``):

- requests and tokens per minute: fixed windows, each clock minute, counted in one step (constant
  cost at any rate; a moving window costs in proportion to the rate, a sliding counter almost
  twice as much); a request is charged 1, and its estimated tokens (its size / 4 plus its
  maximum output) when it is admitted, corrected to the real count when it ends;
- the budget: a counter per budget period (ever, the UTC day or the UTC month), charged the
  request's worst case (its size in bytes, plus its maximum output, plus the chat template) before
  it runs and corrected to the real count when it ends, so parallel requests cannot overspend it
  by more than one reservation. The counter starts from the ledger's total for the period;
- the money budget, the same way in nano-dollars: the worst case is those tokens at the
  dearest prices of the model's deployments, corrected to the request's cost when it ends.

A request is charged to all three in one call to the counters; the first that it would pass
refuses it (a refused request's tokens are given back; it still counts as a request).

Every response to a known key tells where its windows stand in OpenAI's ``x-ratelimit-*``
headers; a key without a limit reports ``UNLIMITED`` for it.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from llmrelay.errors import QuotaExceededError, RateLimitError, UnavailableError
from llmrelay.gateway.counters import Charge, Counter, Counters
from llmrelay.pricing.price import Price, usd
from llmrelay.store.keys import KeyRecord
from llmrelay.store.ledger import Ledger

#: tokens the chat template may add around the messages (roles, a default system prompt)
TEMPLATE_TOKENS = 64
_MINUTE = 60
_DAY = 86400
_FOREVER = 10 * 365 * _DAY
_WINDOW_EXPIRY = 2 * _MINUTE  # a window's counter outlives its minute (clocks differ a little)
_REQUESTS, _TOKENS = (
    (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}", f"x-ratelimit-reset-{kind}")
    for kind in ("requests", "tokens")
)
#: what a key reports as the limit, and what remains of it, where it has none: the largest 32-bit
#: integer, so that a client that reads the header as a number reads "plenty"
UNLIMITED = 2**31 - 1
_UNLIMITED_HEADERS: MappingProxyType[str, str] = MappingProxyType(
    {
        name: value
        for names in (_REQUESTS, _TOKENS)
        for name, value in zip(names, (str(UNLIMITED), str(UNLIMITED), "0s"), strict=True)
    }
)
_WINDOWS = {"total": "in all", "day": "today (UTC)", "month": "this month (UTC)"}


class Admission:
    """What admitting a request decided: the headers to send, and what to correct when it ends."""

    __slots__ = ("charges", "counters", "headers", "money", "wait")

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.headers: Mapping[str, str] = _UNLIMITED_HEADERS
        # the charges to correct when the request ends: its tokens window and its budget...
        self.charges: list[Charge] = []
        # ...and its money budget
        self.money: list[Charge] = []
        self.wait = 0.0  # seconds until the key's windows (both the same clock minute) reset

    def settle(self, used: int, cost: int = 0) -> None:
        """Correct what admitting the request charged to the tokens it used and what they cost
        in nano-dollars (once)."""
        if self.charges:
            self.counters.settle(self.charges, used)
            self.charges = []
        if self.money:
            self.counters.settle(self.money, cost)
            self.money = []


class _Window(NamedTuple):
    """One of a key's per-minute windows, as its headers tell it."""

    names: tuple[str, str, str]  # its limit's, remaining's and reset's headers
    limit: int
    limit_text: str
    counter: Counter


class _Plan:
    """What admitting a key's requests in one clock minute needs that is the same for each: its
    counters, its one-request charge, the kinds of its charges in order, its windows. Made
    again when the minute turns or the key changes (a changed key is a new record)."""

    __slots__ = ("budget", "kinds", "minute", "money", "record", "request", "tokens", "windows")

    def __init__(self, record: KeyRecord, minute: int, counters: Counters) -> None:
        self.record = record
        self.minute = minute
        self.request: Charge | None = None
        self.tokens: Counter | None = None
        self.budget: Counter | None = None
        self.money: Counter | None = None
        kinds = []
        windows = []
        if record.rpm:
            kinds.append("requests")
            requests = counters.counter(f"llmrelay/requests/{record.id}/{minute}", _WINDOW_EXPIRY)
            self.request = (requests, 1, record.rpm)
            windows.append(_Window(_REQUESTS, record.rpm, str(record.rpm), requests))
        if record.tpm:
            kinds.append("tokens")
            tokens = counters.counter(f"llmrelay/tokens/{record.id}/{minute}", _WINDOW_EXPIRY)
            self.tokens = tokens
            windows.append(_Window(_TOKENS, record.tpm, str(record.tpm), tokens))
        self.windows = tuple(windows)
        if record.budget_tokens:
            kinds.append("budget")
            period, _, expiry = _period_at(record.budget_period or "total", minute)
            key = f"llmrelay/budget/{record.id}/{period}/{record.budget_tokens}"
            self.budget = counters.counter(key, expiry)
        if record.budget_nanousd:
            kinds.append("money")
            period, _, expiry = _period_at(record.budget_period or "total", minute)
            key = f"llmrelay/budget-usd/{record.id}/{period}/{record.budget_nanousd}"
            self.money = counters.counter(key, expiry)
        self.kinds = tuple(kinds)


class Limiter:
    def __init__(self, ledger: Ledger, counters: Counters) -> None:
        self._ledger = ledger
        self._counters = counters
        self._seeded: set[str] = set()
        self._seeding = asyncio.Lock()
        self._plans: dict[str, _Plan] = {}  # by key id

    async def start(self) -> None:
        self._counters.start()

    async def aclose(self) -> None:
        await self._counters.aclose()

    async def admit(
        self, caller: KeyRecord | None, body_size: int, output: int, price: Price | None = None
    ) -> Admission:
        """Charge the request to the caller's limits and budgets, or raise a 429. ``output``:
        the longest answer the request may get (all its choices); ``price``: the dearest of
        its model's deployments (for a money budget)."""
        admission = Admission(self._counters)
        if caller is None or not (
            caller.rpm or caller.tpm or caller.budget_tokens or caller.budget_nanousd
        ):
            return admission
        now = time.time()
        minute = int(now) // _MINUTE
        admission.wait = (minute + 1) * _MINUTE - now
        rpm, tpm, budget = caller.rpm, caller.tpm, caller.budget_tokens
        estimate = body_size // 4 + output
        if tpm and estimate > tpm:
            admission.headers = await self.standing(caller)
            raise _rate_limited(
                admission,
                f"Request too large for tokens per minute (TPM) on this API key: limit {tpm}, "
                f"requested {estimate}. Ask for fewer tokens (max_tokens) or send a shorter "
                "prompt.",
                kind="tokens",
                never=True,
            )
        plan = self._current_plan(caller, minute) or await self._new_plan(caller, minute)
        charges = [plan.request] if plan.request else []
        # (a plan has the counter of each limit its key has)
        if tpm and plan.tokens:
            charges.append((plan.tokens, estimate, tpm))
        if budget and plan.budget:
            charges.append((plan.budget, body_size + output + TEMPLATE_TOKENS, budget))
        money = caller.budget_nanousd
        if money and plan.money and price is not None:
            worst = price.worst(body_size + TEMPLATE_TOKENS, output)
            charges.append((plan.money, worst, money))
        counts, refused = await self._counters.charge(charges)
        made = charges if refused is None else charges[:refused]
        if made and made[-1][0] is plan.money:  # corrected by the cost, the rest by tokens
            admission.money, made = made[-1:], made[:-1]
        admission.charges = made[1:] if rpm else made  # tokens are corrected, a request is one
        if refused is not None:
            admission.settle(0)  # a refused request's tokens were not used
            admission.headers = await self.standing(caller)
            raise self._refusal(
                plan.kinds[refused], charges[refused], counts[refused], admission, caller
            )
        admission.headers = _headers(plan, counts, _duration(admission.wait))
        return admission

    async def standing(self, caller: KeyRecord | None) -> dict[str, str]:
        """The headers of the caller's windows as they stand, for a response that charged
        nothing."""
        if caller is None:
            return _UNLIMITED_HEADERS.copy()
        now = time.time()
        minute = int(now) // _MINUTE
        plan = self._current_plan(caller, minute) or await self._new_plan(caller, minute)
        counts = [await self._counters.get(window.counter) for window in plan.windows]
        return _headers(plan, counts, _duration((minute + 1) * _MINUTE - now))

    def _current_plan(self, caller: KeyRecord, minute: int) -> _Plan | None:
        """The caller's plan if it is still the one for ``minute`` (a lookup, not a coroutine:
        it is on every request)."""
        plan = self._plans.get(caller.id)
        if plan is None or plan.minute != minute or plan.record is not caller:
            return None
        return plan

    async def _new_plan(self, caller: KeyRecord, minute: int) -> _Plan:
        """The caller's plan for ``minute``, its budget's counter started from the ledger."""
        plan = _Plan(caller, minute, self._counters)
        if plan.budget and plan.budget.key not in self._seeded:
            await self._seed(caller, plan.budget, minute, self._ledger.spent)
        if plan.money and plan.money.key not in self._seeded:
            await self._seed(caller, plan.money, minute, self._ledger.spent_nanousd)
        # current only once seeded: the requests that arrive meanwhile wait for the seeding
        # (in _seed) rather than charge a budget that does not count what was spent yet
        self._plans[caller.id] = plan
        return plan

    def _refusal(
        self, kind: str, charge: Charge, used: int, admission: Admission, caller: KeyRecord
    ) -> RateLimitError | QuotaExceededError:
        _, cost, limit = charge
        if kind == "requests":
            return _rate_limited(
                admission,
                f"Rate limit reached for requests per minute (RPM) on this API key: limit "
                f"{limit}, used {used}, requested 1.",
            )
        if kind == "tokens":
            return _rate_limited(
                admission,
                f"Rate limit reached for tokens per minute (TPM) on this API key: limit "
                f"{limit}, used {used}, requested {cost}.",
                kind="tokens",
            )
        window = _WINDOWS[caller.budget_period or "total"]
        if kind == "money":
            return QuotaExceededError(
                f"This API key has used its budget (${usd(limit)} {window}); this request "
                f"could cost up to ${usd(cost)} more.",
                headers={**admission.headers, "x-should-retry": "false"},
            )
        return QuotaExceededError(
            f"This API key has used its token budget ({limit} tokens {window}); this "
            f"request could need up to {cost} more.",
            headers={**admission.headers, "x-should-retry": "false"},
        )

    async def _seed(
        self,
        caller: KeyRecord,
        budget: Counter,
        minute: int,
        ledger_spent: Callable[[str, datetime | None], Awaitable[int]],
    ) -> None:
        """Start the period's counter from the ledger's ``ledger_spent`` (a 503 while the ledger
        cannot be read: a budget that is not known cannot be kept)."""
        _, since, _ = _period_at(caller.budget_period or "total", minute)

        async def spent() -> int:
            await self._ledger.flush()
            try:
                return await ledger_spent(caller.id, since)
            except Exception as exc:
                raise UnavailableError(
                    "This API key's budget cannot be checked right now. Please try again shortly.",
                    code="budget_unavailable",
                ) from exc

        async with self._seeding:
            if budget.key not in self._seeded:
                await self._counters.seed(budget, spent)
                self._seeded.add(budget.key)


def _headers(plan: _Plan, counts: list[int], reset: str) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers of a key whose windows hold ``counts`` (in the order of
    ``plan.windows``; a budget's count may follow)."""
    if len(plan.windows) == 2:  # both windows, the common case: one dict display
        (_, rpm, rpm_text, _), (_, tpm, tpm_text, _) = plan.windows
        requests, tokens = counts[0], counts[1]
        return {
            "x-ratelimit-limit-requests": rpm_text,
            "x-ratelimit-remaining-requests": str(rpm - requests) if requests < rpm else "0",
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": tpm_text,
            "x-ratelimit-remaining-tokens": str(tpm - tokens) if tokens < tpm else "0",
            "x-ratelimit-reset-tokens": reset,
        }
    headers = _UNLIMITED_HEADERS.copy()
    for window, used in zip(plan.windows, counts, strict=False):
        limit_name, remaining_name, reset_name = window.names
        headers[limit_name] = window.limit_text
        headers[remaining_name] = str(window.limit - used) if used < window.limit else "0"
        headers[reset_name] = reset
    return headers


@functools.lru_cache(maxsize=16)
def _period_at(name: str, minute: int) -> tuple[str, datetime | None, int]:
    """The budget period's id, its start (None: since ever), and how long its counter is kept
    (a day past the period's end, so that no instance finds it gone while still in it)."""
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
    if whole <= _MINUTE:
        return _SECONDS[whole]
    return f"{whole // 60}m{whole % 60}s"


_SECONDS = [f"{s}s" for s in range(_MINUTE)] + ["1m0s"]  # a window's resets, written once


def _rate_limited(
    admission: Admission, message: str, *, kind: str = "requests", never: bool = False
) -> RateLimitError:
    """The 429 for a window of ``kind``; ``never``: the request could not pass in any window."""
    headers = dict(admission.headers)
    if never:
        headers["x-should-retry"] = "false"
    else:
        wait = admission.wait
        message += f" Please try again in {_duration(wait)}."
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    error = RateLimitError(message, code="rate_limit_exceeded", headers=headers)
    error.type = kind
    return error
