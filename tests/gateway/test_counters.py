"""``LocalCounters``: the in-process counts behind rate limits and budgets."""

from __future__ import annotations

import asyncio

from llmrelay.gateway.limits import LocalCounters


async def test_a_counter_counts_until_it_expires() -> None:
    counters = LocalCounters()
    assert await counters.incr("a", 1, 5) == 5
    assert await counters.incr("a", 1, -2) == 3
    assert await counters.incr("b", 60) == 1, "counters are apart"
    assert await counters.get("a") == 3
    await asyncio.sleep(1.05)
    assert await counters.get("a") == 0
    assert await counters.incr("a", 1, 4) == 4, "an expired counter starts again"
    assert await counters.get("b") == 1


async def test_expired_counters_are_swept() -> None:
    counters = LocalCounters()
    for n in range(100):
        await counters.incr(f"key-{n}", 1)
    await asyncio.sleep(1.05)
    counters._next_sweep = 0  # the next call sweeps (otherwise once a minute)
    await counters.incr("fresh", 60)
    assert set(counters._counts) == {"fresh"}
