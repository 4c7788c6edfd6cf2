"""``Periodic``: the key cache's refresh and the limiter's settlements run on it."""

from __future__ import annotations

import asyncio

from llmrelay.gateway.periodic import Periodic


async def test_a_failed_turn_does_not_end_the_work() -> None:
    turns = 0

    async def work() -> None:
        nonlocal turns
        turns += 1
        if turns == 1:
            raise ConnectionError("the database is away for a while")

    periodic = Periodic(0.01, work, "test work")
    periodic.start()
    await asyncio.sleep(0.2)
    await periodic.stop()
    stopped_at = turns
    await asyncio.sleep(0.05)
    assert stopped_at >= 3, "turns after the failed one"
    assert turns == stopped_at, "stop ends it"
