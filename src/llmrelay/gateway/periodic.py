"""``Periodic``: background work repeated every so many seconds while the server runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``work`` every ``seconds`` from ``start`` to ``stop``. A failed turn is logged and
    the next one comes all the same (a database or Redis may be away for a while)."""

    def __init__(self, seconds: float, work: Callable[[], Awaitable[None]], what: str) -> None:
        self._seconds = seconds
        self._work = work
        self._what = what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._seconds)
            try:
                await self._work()
            except Exception:
                log.exception("%s failed; trying again in %s s", self._what, self._seconds)
