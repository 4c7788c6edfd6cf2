"""``guarded_protocol``: uvicorn's HTTP protocol (httptools), made to hold up against slow and
greedy clients.

Uvicorn itself waits for a request's head as long as a client takes, and takes a head of any
size: a client that trickles one header line every few seconds holds its connection (and a file
descriptor) for ever, and enough of them leave none for the clients being served, or for the
upstream connections that serve them. Here:

- a connection that has not sent a whole request head within ``head_timeout`` seconds of
  connecting (or of starting its next request) gets a 408 and is closed;
- a head larger than ``max_head_bytes`` gets a 431 and is closed;
- at most ``max_connections`` are open: a new one beyond that makes the connection that has
  waited longest for a request (still sending its head, or idle between requests) make way, and
  is refused with a 503 only when every connection is in a request;
- a response sent before the request's body was all read (an error, say) closes the connection,
  rather than keep reading what may trickle in for ever.

A body that trickles is the route's to cut off (``api/body.py``), with a 408 it can explain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    head_timeout: float
    max_head_bytes: int
    max_connections: int


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head that is too large."""


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, holding to ``limits``."""
    return type("GuardedHttpToolsProtocol", (_Guarded,), {"limits": limits, "waiting": {}})


class _Guarded(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits]
    #: the server's connections that wait for a request (its head, or between requests), by
    #: when they began to wait: the first makes way when there are too many connections
    waiting: ClassVar[dict[_Guarded, None]]

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self._close_with(503)
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:
            self._await_head()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        unread_body = self.cycle is not None and self.cycle.more_body and not self.pipeline
        super().on_response_complete()
        if unread_body:
            self.transport.close()
        elif not self.transport.is_closing():
            self.waiting[self] = None  # idle until its next request: first to make way

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # the parser stopped at our callback's error: not a bad request
            self._close_with(431)
        else:
            super().send_400_response(msg)

    def _await_head(self) -> None:
        self.waiting[self] = None
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.waiting.pop(self, None)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._close_with(408)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request; False if none waits."""
        for oldest in self.waiting:
            oldest._close_with(503)
            return True
        return False

    def _close_with(self, status: int) -> None:
        """Answer with a bare ``status`` (if the transport still takes it) and close."""
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.write(
                STATUS_LINE[status] + b"content-length: 0\r\nconnection: close\r\n\r\n"
            )
            self.transport.close()
