"""What any layer may want to know of the request being served, without passing it down."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, NamedTuple

request_id: ContextVar[str] = ContextVar("request_id", default="-")
#: the deployment that answered the request being served, or failed last, or was answering when
#: its client left (set by the router), for the ledger
backend: ContextVar[str | None] = ContextVar("backend", default=None)


class CutShort(NamedTuple):
    """An answer cut off before its end (its client left), as the provider making it knew it."""

    usage: dict[str, Any]
    model: str  # the model that was answering


#: set by the provider whose answer was cut short; read by the meter of a request that was
#: cancelled
cut_short: ContextVar[CutShort | None] = ContextVar("cut_short", default=None)
