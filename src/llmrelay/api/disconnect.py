"""``DisconnectWatch``: cancels the task serving a request when its client goes away.

Cancelling the task stops what it awaits: a local generation, an upstream call. The task then
tells that cancellation from any other (a shutdown) with ``took_back``, and takes it back: a
client that leaves is no error. One watcher task per request, for JSON answers and streams alike.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive


class DisconnectWatch:
    __slots__ = ("_task", "_watcher", "finishing", "left")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.left = False
        # set once the answer is all but sent: a disconnect from then on needs no cancelling
        self.finishing = False
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        await until_disconnected(receive)
        if not self.finishing:
            # in the same step as the cancel: whoever catches it can tell whose it was
            self.left = True
            self._task.cancel()

    def took_back(self) -> bool:
        """For an ``except CancelledError``: whether the client's leaving caused it, in which case
        the cancellation is taken back."""
        if self.left:
            self._task.uncancel()
        return self.left

    def stop(self) -> None:
        self._watcher.cancel()


async def until_disconnected(receive: Receive) -> None:
    """Returns when the client has gone away (the request's body is read by then)."""
    while (await receive())["type"] != "http.disconnect":
        pass
