"""Where the counts behind rate limits and budgets live, and how a request is charged to them.

``LocalCounters`` keep them in this process; ``SharedCounters`` on Redis, through the ``limits``
package's storage, so that every instance on that Redis counts against one limit. Either way a
request is charged in one call (``charge``): each of its charges is added to its counter in
turn unless that would pass the counter's limit, and the first that would stops the rest.
Corrections after a request (``settle``) are applied at once here, and gathered on Redis.
"""

from __future__ import annotations

import time
from typing import Protocol

from limits.aio.storage import Storage
from limits.storage import storage_from_string

from llmrelay.gateway.periodic import Periodic

SETTLE_SECONDS = 0.1
_SWEEP_SECONDS = 60


class Counter:
    """One counter: its name, the seconds it lives from its first charge, and its count where
    this process keeps it (``LocalCounters``). A limiter holds on to the counters of a key's
    current window and charges them as they are, rather than find a local one by its name on
    every charge and every settling."""

    __slots__ = ("expires", "expiry", "key", "n")

    def __init__(self, key: str, expiry: int, expires: float = 0.0) -> None:
        self.key = key
        self.expiry = expiry
        self.expires = expires
        self.n = 0


#: a charge: the counter, the cost and the limit (a plain tuple: a NamedTuple's constructor
#: costs as much as the charge)
Charge = tuple[Counter, int, int]
#: what ``charge`` did: the counts after each charge it made, and for the one that would have
#: passed its limit (if any) the count it found; then that charge's index
Charged = tuple[list[int], int | None]


class Counters(Protocol):
    def counter(self, key: str, expiry: int) -> Counter:
        """The counter named ``key``, to charge; one that lives ``expiry`` seconds if it is
        new. (Good for as long as its window lasts, which must be less than ``expiry``.)"""

    async def charge(self, charges: list[Charge]) -> Charged: ...

    def settle(self, charges: list[Charge], used: int) -> None:
        """Correct each charge's counter by ``used`` less what the charge cost (what a request
        used against what admitting it charged)."""

    async def get(self, key: str) -> int: ...

    async def add(self, key: str, expiry: int, amount: int) -> int:
        """Add to a counter whatever its limit; its count after."""

    def start(self) -> None: ...

    async def aclose(self) -> None: ...


class LocalCounters:
    """Counters in this process, each dropped ``expiry`` seconds after it began.

    Not ``limits``' memory storage: that one starts an asyncio task on nearly every call to look
    for expired counters, and looks through all of them (4.7 µs a call in a tight loop, where
    that task never got to run; more in the server). Here a counter is looked up by name once a
    window, a charge adds to it, and expired counters are swept once a minute.
    """

    def __init__(self) -> None:
        self._counts: dict[str, Counter] = {}
        self._next_sweep = 0.0

    def counter(self, key: str, expiry: int) -> Counter:
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        counter = self._counts.get(key)
        if counter is None or counter.expires <= now:
            counter = self._counts[key] = Counter(key, expiry, now + expiry)
        return counter

    async def charge(self, charges: list[Charge]) -> Charged:
        counts: list[int] = []
        for counter, cost, limit in charges:
            count = counter.n + cost
            if count > limit:
                counts.append(counter.n)
                return counts, len(counts) - 1
            counter.n = count
            counts.append(count)
        return counts, None

    def settle(self, charges: list[Charge], used: int) -> None:
        for counter, cost, _ in charges:
            counter.n += used - cost

    async def add(self, key: str, expiry: int, amount: int) -> int:
        counter = self.counter(key, expiry)
        counter.n += amount
        return counter.n

    async def get(self, key: str) -> int:
        counter = self._counts.get(key)
        return counter.n if counter is not None and counter.expires > time.time() else 0

    def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        self._counts = {k: counter for k, counter in self._counts.items() if counter.expires > now}
        self._next_sweep = now + _SWEEP_SECONDS


class SharedCounters:
    """Counters on Redis (``limits``' async Redis storage), shared by every instance on it.

    A charge is one ``incr`` per counter, taken back if it passed the limit. Corrections are
    gathered and applied every ``SETTLE_SECONDS`` rather than one round trip per request; a
    charge that would be refused first applies what its counter is owed. Until then a counter
    holds a little more than was used: it can refuse early, never admit too much.
    """

    def __init__(self, redis_url: str) -> None:
        storage = storage_from_string(f"async+{redis_url}")
        assert isinstance(storage, Storage)  # the async+ scheme makes one
        self._storage = storage
        self._owed: dict[str, list[int]] = {}  # counter -> [its expiry, correction]
        self._settling = Periodic(SETTLE_SECONDS, self._apply_owed, "applying settlements")

    def counter(self, key: str, expiry: int) -> Counter:
        return Counter(key, expiry)  # its count is on Redis

    async def charge(self, charges: list[Charge]) -> Charged:
        counts: list[int] = []
        for index, (counter, cost, limit) in enumerate(charges):
            key, expiry = counter.key, counter.expiry
            used = await self._storage.incr(key, expiry, cost)
            if used > limit and key in self._owed:
                used = await self._storage.incr(key, expiry, self._owed.pop(key)[1])
            if used > limit:
                counts.append(await self._storage.incr(key, expiry, -cost))
                return counts, index
            counts.append(used)
        return counts, None

    def settle(self, charges: list[Charge], used: int) -> None:
        for counter, cost, _ in charges:
            if used != cost:
                self._owe(counter.key, counter.expiry, used - cost)

    def _owe(self, key: str, expiry: int, amount: int) -> None:
        if (owed := self._owed.get(key)) is not None:
            owed[1] += amount
        else:
            self._owed[key] = [expiry, amount]

    async def add(self, key: str, expiry: int, amount: int) -> int:
        return await self._storage.incr(key, expiry, amount)

    async def get(self, key: str) -> int:
        return await self._storage.get(key)

    def start(self) -> None:
        self._settling.start()

    async def aclose(self) -> None:
        await self._settling.stop()
        await self._apply_owed()

    async def _apply_owed(self) -> None:
        owed, self._owed = self._owed, {}
        try:
            for key in list(owed):
                expiry, amount = owed[key]
                await self._storage.incr(key, expiry, amount)
                del owed[key]
        finally:  # what could not be applied (Redis away) is still owed
            for key, (expiry, amount) in owed.items():
                self._owe(key, expiry, amount)
