"""``DisconnectWatch``: cancels the task serving a request when its client goes away.

Cancelling the task stops what it awaits: a local generation, an upstream call. The task then
tells that cancellation from any other (a shutdown) with ``took_back``, and takes it back: a
client that leaves is no error. One watcher task per request, for JSON answers and streams alike,
and only for a request that is still being served after ``WATCH_AFTER`` seconds (a timer until
then): most answers from a fast upstream are sent by then, and a watcher task started and cancelled
for each of them would weigh on every request. A client that leaves sooner is noticed then.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive

from llmrelay.outcome import Outcome

WATCH_AFTER = 0.1


class DisconnectWatch:
    """Marks the request's outcome ``disconnected`` when it cancels it."""

    __slots__ = ("_outcome", "_receive", "_task", "_timer", "_watcher", "finishing", "left")

    def __init__(self, receive: Receive, outcome: Outcome) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self._outcome = outcome
        self.left = False
        # set once the answer is all but sent: a disconnect from then on needs no cancelling
        self.finishing = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)

    def _start(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass  # (the request's body is read by now: nothing else can come)
        if not self.finishing:
            # in the same step as the cancel: whoever catches it can tell whose it was
            self.left = self._outcome.disconnected = True
            self._task.cancel()

    def took_back(self) -> bool:
        """For an ``except CancelledError``: whether the client's leaving caused it, in which case
        the cancellation is taken back."""
        if self.left:
            self._task.uncancel()
        return self.left

    def stop(self) -> None:
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
