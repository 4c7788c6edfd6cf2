"""``run``: the HTTP server (uvicorn), with the connection guard and a bounded graceful stop."""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from llmrelay.api.guard import ConnectionLimits, guarded_protocol
from llmrelay.config import ServerConfig

#: descriptors kept for what is not a client's connection (the database, the spool, the model,
#: listening sockets, logs)
RESERVED_DESCRIPTORS = 256


def run(app: ASGIApp, server: ServerConfig, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM: then stop taking connections, wait for the requests in
    flight at most ``shutdown_timeout`` seconds, and end those still going (each is recorded,
    and its client told). A second SIGINT stops at once (the requests in flight are recorded
    all the same)."""
    limits = ConnectionLimits(
        head_timeout=server.head_timeout,
        max_head_bytes=server.max_head_bytes,
        body_timeout=server.body_timeout,
        max_connections=server.max_connections or default_max_connections(),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=server.shutdown_timeout,  # type: ignore[arg-type]
    )
    _Server(config).run()


class _Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit:  # uvicorn leaves requests and the application's stop undone then
            for task in self.server_state.tasks:
                task.cancel("forced stop")  # each request records itself as it ends
            await self.lifespan.shutdown()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, but for raising the signals again once it has stopped: its own handlers
        are back by then, and a SIGINT raised into them ends the process with a traceback."""
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def default_max_connections() -> int:
    """As many client connections as the process's descriptors allow, raised to the hard limit,
    with one left for each one's upstream connection and a reserve for the rest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # the system allows less than the hard limit says
            pass
    return max(64, (soft - RESERVED_DESCRIPTORS) // 2)
