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
    assert await counters.get("tokens") == 600, "a refused request charges nothing after it"
    counters.settle([tokens], 50)  # each of the two used 50
    counters.settle([tokens], 50)
    again = counters.counter("tokens", 60)
    assert again is tokens[0], "a counter is found by its name"
    assert await counters.charge([(again, 900, 1000)]) == ([1000], None)
    assert await counters.charge([(again, 1, 1000)]) == ([1000], 0)


async def test_a_counter_counts_until_it_expires() -> None:
    counters = LocalCounters()
    assert await counters.add("a", 1, 5) == 5
    assert await counters.add("a", 1, -2) == 3
    assert await counters.add("b", 60, 1) == 1, "counters are apart"
    await asyncio.sleep(1.05)
    assert await counters.get("a") == 0
    assert await counters.add("a", 1, 4) == 4, "an expired counter starts again"
    assert await counters.get("b") == 1


async def test_expired_counters_are_swept() -> None:
    counters = LocalCounters()
    for n in range(100):
        await counters.add(f"key-{n}", 1, 1)
    await asyncio.sleep(1.05)
    counters._next_sweep = 0  # the next call sweeps (otherwise once a minute)
    await counters.add("fresh", 60, 1)
    assert set(counters._counts) == {"fresh"}
