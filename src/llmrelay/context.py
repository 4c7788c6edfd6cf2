"""What any layer may want to know of the request being served, without passing it down."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str] = ContextVar("request_id", default="-")
#: the deployment that answered the request being served (set by the router), for the ledger
backend: ContextVar[str | None] = ContextVar("backend", default=None)
#: the usage of an answer cut off before its end (its client left), as the provider making it
#: counted it; read by the meter of a request that was cancelled
cut_usage: ContextVar[dict[str, Any] | None] = ContextVar("cut_usage", default=None)
