"""Where the counts behind rate limits and budgets live, and how a request is charged to them.

``LocalCounters`` keep them in this process; ``SharedCounters`` on Redis, through the ``limits``
package's storage, so that every instance on that Redis counts against one limit. Either way a
request is charged in one call (``charge``): each of its charges is added to its counter in
turn unless that would pass the counter's limit, and the first that would stops the rest.
Corrections after a request (``settle``) are applied at once here, and gathered on Redis.

Redis may go away or stall: every call to it has a time limit, and once one fails the counters
are kept in this process (``redis_failure: local``, starting from the counts last seen on Redis)
or limited keys are refused (``closed``), until a probe finds Redis again; what was counted
meanwhile is then added to Redis. One warning when it goes, one line when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from limits.aio.storage import Storage
from limits.storage import storage_from_string

from llmrelay.errors import UnavailableError
from llmrelay.gateway.periodic import Periodic

log = logging.getLogger(__name__)
SETTLE_SECONDS = 0.1
PROBE_SECONDS = 1.0
_SWEEP_SECONDS = 60


class Counter:
    """One counter: its name, the seconds it lives from its first charge, and its count where
    this process keeps it: all of it (``LocalCounters``), or on Redis the count last seen there,
    and what was counted here while Redis was away (``unsynced``). A limiter holds on to the
    counters of a key's current window and charges them as they are, rather than find one by
    its name on every charge and every settling."""

    __slots__ = ("expires", "expiry", "key", "n", "unsynced")

    def __init__(self, key: str, expiry: int, expires: float = 0.0) -> None:
        self.key = key
        self.expiry = expiry
        self.expires = expires
        self.n = 0
        self.unsynced = 0


#: a charge: the counter, the cost and the limit (a plain tuple: a NamedTuple's constructor
#: costs as much as the charge)
Charge = tuple[Counter, int, int]
#: what ``charge`` did: the counts after each charge it made, and for the one that would have
#: passed its limit (if any) the count it found; then that charge's index
Charged = tuple[list[int], int | None]
#: the tokens a key has spent in a budget's period, as the ledger has them
Spent = Callable[[], Awaitable[int]]


class Counters(Protocol):
    def counter(self, key: str, expiry: int) -> Counter:
        """The counter named ``key``, to charge; one that lives ``expiry`` seconds if it is
        new. (Good for as long as its window lasts, which must be less than ``expiry``.)"""

    async def charge(self, charges: list[Charge]) -> Charged: ...

    def settle(self, charges: list[Charge], used: int) -> None:
        """Correct each charge's counter by ``used`` less what the charge cost (what a request
        used against what admitting it charged)."""

    async def get(self, counter: Counter) -> int: ...

    async def seed(self, counter: Counter, spent: Spent) -> None:
        """Start a budget's counter from what the ledger says was spent (once for all the
        instances that share it)."""

    def start(self) -> None: ...

    async def aclose(self) -> None: ...


class _Table:
    """Counters by name, each dropped ``expiry`` seconds after it began (swept once a minute)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}
        self._next_sweep = 0.0

    def counter(self, key: str, expiry: int) -> Counter:
        now = time.time()
        if now >= self._next_sweep:
            self.counts = {k: c for k, c in self.counts.items() if c.expires > now}
            self._next_sweep = now + _SWEEP_SECONDS
        counter = self.counts.get(key)
        if counter is None or counter.expires <= now:
            counter = self.counts[key] = Counter(key, expiry, now + expiry)
        return counter


def _charge_here(charges: list[Charge], unsynced: bool) -> Charged:
    """Charge counters kept in this process (``unsynced``: while Redis is away)."""
    counts: list[int] = []
    for counter, cost, limit in charges:
        count = counter.n + cost
        if count > limit:
            counts.append(counter.n)
            return counts, len(counts) - 1
        counter.n = count
        if unsynced:
            counter.unsynced += cost
        counts.append(count)
    return counts, None


class LocalCounters:
    """Counters in this process.

    Not ``limits``' memory storage: that one starts an asyncio task on nearly every call to look
    for expired counters, and looks through all of them. Here a counter is looked up by name once a
    window, a charge adds to it, and expired counters are swept once a minute.
    """

    def __init__(self) -> None:
        self._table = _Table()

    def counter(self, key: str, expiry: int) -> Counter:
        return self._table.counter(key, expiry)

    async def charge(self, charges: list[Charge]) -> Charged:
        return _charge_here(charges, unsynced=False)

    def settle(self, charges: list[Charge], used: int) -> None:
        for counter, cost, _ in charges:
            counter.n += used - cost

    async def get(self, counter: Counter) -> int:
        return counter.n if counter.expires > time.time() else 0

    async def seed(self, counter: Counter, spent: Spent) -> None:
        amount = await spent()  # (``n += await ...`` would read n before others charge it)
        counter.n += amount

    def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class SharedCounters:
    """Counters on Redis (``limits``' async Redis storage), shared by every instance on it.

    A charge is one ``incr`` per counter, taken back if it passed the limit. Corrections are
    gathered and applied every ``SETTLE_SECONDS`` rather than one round trip per request; a
    charge that would be refused first applies what its counter is owed. Until then a counter
    holds a little more than was used: it can refuse early, never admit too much.
    """

    def __init__(self, redis_url: str, *, timeout: float, failure: str = "local") -> None:
        storage = storage_from_string(f"async+{redis_url}")
        assert isinstance(storage, Storage)  # the async+ scheme makes one
        self._storage = storage
        self._timeout = timeout
        self._failure = failure
        self._table = _Table()
        self._owed: dict[str, list[int]] = {}  # counter -> [its expiry, correction]
        self._unseeded: dict[Counter, Spent] = {}  # budgets first seen while Redis was away
        self._away_since: float | None = None
        self._settling = Periodic(SETTLE_SECONDS, self._apply_owed, "applying settlements")
        self._probing = Periodic(PROBE_SECONDS, self._probe, "looking for Redis")

    def counter(self, key: str, expiry: int) -> Counter:
        return self._table.counter(key, expiry)

    async def charge(self, charges: list[Charge]) -> Charged:
        if self._away_since is None:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._charge_on_redis(charges)
            except Exception as exc:
                self._went_away(exc)
        if self._failure == "closed":
            raise UnavailableError(
                "Rate limits cannot be checked right now. Please try again shortly.",
                code="limits_unavailable",
            )
        return _charge_here(charges, unsynced=True)

    async def _charge_on_redis(self, charges: list[Charge]) -> Charged:
        counts: list[int] = []
        for index, (counter, cost, limit) in enumerate(charges):
            key, expiry = counter.key, counter.expiry
            used = await self._storage.incr(key, expiry, cost)
            if used > limit and key in self._owed:
                used = await self._storage.incr(key, expiry, self._owed.pop(key)[1])
            if used > limit:
                counter.n = await self._storage.incr(key, expiry, -cost)
                counts.append(counter.n)
                return counts, index
            counter.n = used
            counts.append(used)
        return counts, None

    def settle(self, charges: list[Charge], used: int) -> None:
        for counter, cost, _ in charges:
            if used == cost:
                continue
            if self._away_since is not None:
                counter.n += used - cost
                counter.unsynced += used - cost
            else:
                self._owe(counter.key, counter.expiry, used - cost)

    def _owe(self, key: str, expiry: int, amount: int) -> None:
        if (owed := self._owed.get(key)) is not None:
            owed[1] += amount
        else:
            self._owed[key] = [expiry, amount]

    async def get(self, counter: Counter) -> int:
        if self._away_since is None:
            try:
                async with asyncio.timeout(self._timeout):
                    counter.n = await self._storage.get(counter.key)
            except Exception as exc:
                self._went_away(exc)
        return counter.n

    async def seed(self, counter: Counter, spent: Spent) -> None:
        amount = await spent()  # before Redis is told: a ledger that fails changes nothing
        if self._away_since is None:
            try:
                await self._seed_on_redis(counter, amount)
                return
            except Exception as exc:
                self._went_away(exc)
        counter.n = max(counter.n, amount)
        self._unseeded[counter] = spent

    async def _seed_on_redis(self, counter: Counter, amount: int) -> None:
        key, expiry = counter.key, counter.expiry
        async with asyncio.timeout(self._timeout):
            first = await self._storage.incr(key + "/seeded", expiry, 1) == 1
            if first and amount:
                counter.n = await self._storage.incr(key, expiry, amount)

    def start(self) -> None:
        self._settling.start()
        self._probing.start()

    async def aclose(self) -> None:
        await self._settling.stop()
        await self._probing.stop()
        if self._away_since is None:
            await self._apply_owed()

    def _went_away(self, exc: Exception) -> None:
        if self._away_since is not None:
            return
        self._away_since = time.monotonic()
        kept = "counted in this process" if self._failure == "local" else "refused (503)"
        log.warning(
            "Redis is unreachable or slow (%s); requests of keys with limits are %s until it "
            "is back",
            _describe(exc),
            kept,
        )

    async def _apply_owed(self) -> None:
        if self._away_since is not None:
            return
        owed, self._owed = self._owed, {}
        try:
            for key in list(owed):
                expiry, amount = owed[key]
                async with asyncio.timeout(self._timeout):
                    await self._storage.incr(key, expiry, amount)
                del owed[key]
        except Exception as exc:
            self._went_away(exc)
        finally:  # what could not be applied is still owed
            for key, (expiry, amount) in owed.items():
                self._owe(key, expiry, amount)

    async def _probe(self) -> None:
        """While Redis is away: once it answers, add to it what was counted here meanwhile (and
        seed the budgets first seen meanwhile), then count on it again."""
        if self._away_since is None:
            return
        try:
            async with asyncio.timeout(self._timeout * 10):
                if not await self._storage.check():
                    return
            for counter, spent in list(self._unseeded.items()):
                await self._seed_on_redis(counter, await spent())
                del self._unseeded[counter]
            reconciled = await self._add_unsynced()
        except Exception:
            return
        log.info(
            "Redis is back after %.1f s; %d counters counted meanwhile were added to it",
            time.monotonic() - self._away_since,
            reconciled,
        )
        self._away_since = None  # no await since the last counter was found synced

    async def _add_unsynced(self) -> int:
        """Add every counter's unsynced count to Redis, until none is left (requests still
        count here meanwhile); how many counters were added."""
        added: set[str] = set()
        while pending := [c for c in self._table.counts.values() if c.unsynced]:
            for counter in pending:
                amount, counter.unsynced = counter.unsynced, 0
                try:
                    async with asyncio.timeout(self._timeout):
                        counter.n = await self._storage.incr(counter.key, counter.expiry, amount)
                except BaseException:
                    counter.unsynced += amount
                    raise
                added.add(counter.key)
        return len(added)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"
