"""``LocalCounters``: the in-process counts behind rate limits and budgets."""

from __future__ import annotations

import asyncio

from llmrelay.gateway.counters import LocalCounters


async def test_a_charge_counts_until_its_limit() -> None:
    counters = LocalCounters()
    rpm, tokens = (counters.counter("rpm", 60), 1, 2), (counters.counter("tokens", 60), 300, 1000)
    assert await counters.charge([rpm, tokens]) == ([1, 300], None)
    assert await counters.charge([rpm, tokens]) == ([2, 600], None)
    assert await counters.charge([rpm, tokens]) == ([2], 0), "a third passes the RPM"
    assert await counters.get(tokens[0]) == 600, "a refused request charges nothing after it"
    counters.settle([tokens], 50)  # each of the two used 50
    counters.settle([tokens], 50)
    again = counters.counter("tokens", 60)
    assert again is tokens[0], "a counter is found by its name"
    assert await counters.charge([(again, 900, 1000)]) == ([1000], None)
    assert await counters.charge([(again, 1, 1000)]) == ([1000], 0)


async def charge(counters: LocalCounters, key: str, expiry: int, cost: int) -> int:
    counts, _ = await counters.charge([(counters.counter(key, expiry), cost, 10**9)])
    return counts[0]


async def test_a_counter_counts_until_it_expires() -> None:
    counters = LocalCounters()
    assert await charge(counters, "a", 1, 5) == 5
    assert await charge(counters, "a", 1, 2) == 7
    assert await charge(counters, "b", 60, 1) == 1, "counters are apart"
    a = counters.counter("a", 1)
    await asyncio.sleep(1.05)
    assert await counters.get(a) == 0
    assert await charge(counters, "a", 1, 4) == 4, "an expired counter starts again"
    assert await counters.get(counters.counter("b", 60)) == 1


async def test_a_budget_starts_from_what_was_spent() -> None:
    counters = LocalCounters()
    budget = counters.counter("budget", 60)

    async def spent() -> int:
        return 700

    await counters.seed(budget, spent)
    assert await counters.charge([(budget, 300, 1000)]) == ([1000], None)
    assert await counters.charge([(budget, 1, 1000)]) == ([1000], 0)


async def test_expired_counters_are_swept() -> None:
    counters = LocalCounters()
    for n in range(100):
        await charge(counters, f"key-{n}", 1, 1)
    await asyncio.sleep(1.05)
    counters._table._next_sweep = 0  # the next call sweeps (otherwise once a minute)
    await charge(counters, "fresh", 60, 1)
    assert set(counters._table.counts) == {"fresh"}
