"""``guarded_protocol``: uvicorn's HTTP protocol (httptools), made to hold up against slow and
greedy clients.

Uvicorn itself waits for a request's head and body as long as a client takes, and takes a head
of any size: a client that trickles one header line every few seconds holds its connection (and a
file descriptor) for ever, and enough of them leave none for the clients being served, or for the
upstream connections that serve them. Here:

- a connection that has not sent a whole request head within ``head_timeout`` seconds of
  connecting (or of its last response) gets a 408 and is closed; an idle one is left to
  uvicorn's keep-alive timeout;
- a head larger than ``max_head_bytes`` gets a 431 and is closed;
- a body not all sent within ``body_timeout`` seconds more gets a 408 and is closed (the
  application reading it is told, through the scope's ``BODY_TIMED_OUT``);
- at most ``max_connections`` are open: a new one beyond that makes the connection that has
  waited longest since its last response (or its start) make way, and is refused with a 503 only
  when every connection is in a request;
- a response sent before the request's body was all read (an error, say) closes the connection,
  rather than keep reading what may trickle in for ever.

Each connection is kept in one dict, by when it last began to wait (ordered: the oldest first),
and a sweep ten times a second looks at those waiting longer than the head timeout and closes
those still sending a head or a body. A request costs one dict move (at its response's end) and
a look for the head's end in what arrives: no timer, and none of the parser's callbacks, which
would weigh on every request served.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: set in a request's scope when its body took longer than ``body_timeout``
BODY_TIMED_OUT = "llmrelay.body_timed_out"
_HEAD_END = b"\r\n\r\n"
_MESSAGES = {
    408: ("The request did not arrive in time.", "request_timeout"),
    431: ("The request's headers are too large.", "request_header_fields_too_large"),
    503: ("The server has too many connections. Please try again.", "server_overloaded"),
}


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    head_timeout: float
    max_head_bytes: int
    body_timeout: float
    max_connections: int


class _Waits:
    """A server's connections, by when each last began to wait for a request; swept."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.since: dict[_Guarded, float] = {}
        # often: a sweep that finds nothing late stops at the first connection, and the
        # connections to close are spread over many short sweeps, not held for one long one
        # that stalls the requests being served
        self._every = min(0.1, max(0.02, min(limits.head_timeout, limits.body_timeout) / 10))
        self._sweeping = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self._every, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        limits = self.limits
        head_deadline = now - limits.head_timeout
        body_deadline = head_deadline - limits.body_timeout
        late = []
        for connection, since in self.since.items():
            if since > head_deadline:
                break  # the rest began to wait later
            late.append((connection, since))
        for connection, since in late:
            connection.late(since > body_deadline)
        loop.call_later(self._every, self._sweep, loop)


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, holding to ``limits``."""
    return type("GuardedHttpToolsProtocol", (_Guarded,), {"waits": _Waits(limits)})


class _Guarded(HttpToolsProtocol):
    waits: ClassVar[_Waits]

    _head_bytes = 0  # of the head being received; None once its end is in
    _tail = b""  # the last bytes received, in case the head's end spans two reads

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        waits = self.waits
        waits.start(self.loop)
        if len(self.connections) > waits.limits.max_connections and not self._make_room():
            self._close_with(503)
            return
        waits.since[self] = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waits.since.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None:  # the head is arriving: how much of it is this
            end = (self._tail + data).find(_HEAD_END)
            received = self._head_bytes + (len(data) if end < 0 else end - len(self._tail))
            if received > self.waits.limits.max_head_bytes:
                self._close_with(431)
                return
            if end < 0:
                self._head_bytes, self._tail = received, data[-3:]
            else:
                self._head_bytes, self._tail = None, b""  # type: ignore[assignment]
        super().data_received(data)

    def on_response_complete(self) -> None:
        unread_body = self.cycle is not None and self.cycle.more_body and not self.pipeline
        super().on_response_complete()
        if unread_body:
            self.transport.close()
        elif not self.transport.is_closing():
            self._head_bytes = 0
            since = self.waits.since  # waiting again: to the end of the line
            since.pop(self, None)
            since[self] = self.loop.time()

    def late(self, in_body_time: bool) -> None:
        """This connection began to wait more than ``head_timeout`` ago: close it if it is
        still sending its head, or its body beyond ``body_timeout`` more."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # no request in: idle, or sending a head
            if self.timeout_keep_alive_task is None:  # (idle: uvicorn's keep-alive closes it)
                self._close_with(408)
        elif cycle.more_body and not in_body_time:
            cycle.scope[BODY_TIMED_OUT] = True  # type: ignore[literal-required]
            self._close_with(408)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a request; False if every
        connection is in a request."""
        for oldest in self.waits.since:
            cycle = oldest.cycle
            if cycle is None or cycle.response_complete:
                oldest._close_with(503)
                return True
        return False

    def _close_with(self, status: int) -> None:
        """Answer with ``status`` and an OpenAI-shaped error (if the transport still takes it),
        and close."""
        self.waits.since.pop(self, None)
        if self.transport.is_closing():
            return
        message, code = _MESSAGES[status]
        body = orjson.dumps(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error" if status < 500 else "server_error",
                    "param": None,
                    "code": code,
                }
            }
        )
        head = b"content-type: application/json\r\nconnection: close\r\n"
        head += b"content-length: %d\r\n\r\n" % len(body)
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()
