"""What any layer may want to know of the request being served, without passing it down."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="-")
#: the deployment that answered the request being served (set by the router), for the ledger
backend: ContextVar[str | None] = ContextVar("backend", default=None)
