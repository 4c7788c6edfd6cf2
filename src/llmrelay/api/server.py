"""``run``: the HTTP server (uvicorn), with the connection guard and a bounded graceful stop."""

from __future__ import annotations

import resource

import uvicorn
from starlette.types import ASGIApp

from llmrelay.api.guard import ConnectionLimits, guarded_protocol
from llmrelay.config import ServerConfig

#: descriptors kept for what is not a client's connection (the database, the spool, the model,
#: listening sockets, logs)
RESERVED_DESCRIPTORS = 256


def run(app: ASGIApp, server: ServerConfig, *, host: str, port: int) -> None:
    limits = ConnectionLimits(
        head_timeout=server.head_timeout,
        max_head_bytes=server.max_head_bytes,
        max_connections=server.max_connections or default_max_connections(),
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        log_level="info",
        access_log=False,
        # a stop waits this long for requests in flight, then cancels them (each is recorded
        # and, if it streams, told so in an error event)
        timeout_graceful_shutdown=server.shutdown_timeout,  # type: ignore[arg-type]
    )


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
