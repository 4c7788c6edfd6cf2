"""``Periodic``: background work repeated every so many seconds while the server runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``work`` every ``seconds`` from ``start`` to ``stop``. The next turn comes all the
    same after a failed one (a database or Redis may be away for a while): the first failure of
    a run of them is logged, and the turn that works again, not every one between."""

    def __init__(self, seconds: float, work: Callable[[], Awaitable[None]], what: str) -> None:
        self._seconds = seconds
        self._work = work
        self._what = what
        self._task: asyncio.Task[None] | None = None
        self._failing_since: float | None = None

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
            except Exception as exc:
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    log.warning(
                        "%s failed (%s: %s); trying again every %g s",
                        self._what,
                        type(exc).__name__,
                        exc,
                        self._seconds,
                    )
            else:
                if self._failing_since is not None:
                    failed_for = time.monotonic() - self._failing_since
                    log.info("%s works again after %.1f s", self._what, failed_for)
                    self._failing_since = None
