"""``Ended``: one API request as it ended, for the request log and the metrics.

The HTTP edge leaves in the request's scope what it learnt: the ``Outcome`` of a request that
was admitted (filled in by the layers below and by the meter), or, for one refused before, the
caller and the error's code. ``RequestIdMiddleware`` makes this of it when the response is sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llmrelay.outcome import Outcome

OUTCOME_KEY = "llmrelay.outcome"
CALLER_KEY = "llmrelay.caller"
ERROR_KEY = "llmrelay.error_code"

#: the endpoint a path is of, by its start (the first that matches)
_ENDPOINTS = (
    ("/v1/chat/completions", "chat"),
    ("/v1/responses", "responses"),
    ("/v1/messages", "messages"),
    ("/v1/embeddings", "embeddings"),
    ("/v1/completions", "completions"),
    ("/v1/models", "models"),
    ("/admin/", "admin"),
)


def endpoint_of(path: str) -> str | None:
    """The endpoint of an API path; None for what is not the API (health, metrics, console)."""
    for start, name in _ENDPOINTS:
        if path.startswith(start):
            return name
    return None


class Ended:
    """The fields of a request's log line and metrics. ``outcome``: None for a request refused
    before it was admitted (401, 403, 429, a bad body) or that was no model request."""

    __slots__ = ("endpoint", "error_code", "key_id", "key_name", "latency_ms", "outcome", "status")

    def __init__(
        self, scope: Mapping[str, Any], endpoint: str, status: int, started: float
    ) -> None:
        outcome: Outcome | None = scope.get(OUTCOME_KEY)
        self.outcome = outcome
        self.endpoint = endpoint
        self.status = status
        if outcome is not None:
            self.key_id, self.key_name = outcome.key_id, outcome.key_name
            # a stream's status is 200 however it ended; its outcome tells
            self.status = outcome.status if outcome.status != 200 else status
            self.error_code = outcome.error_code
            self.latency_ms = outcome.latency_ms or (time.perf_counter() - started) * 1000
            return
        caller = scope.get(CALLER_KEY)
        self.key_id = caller.id if caller is not None else None
        self.key_name = caller.name if caller is not None else None
        self.error_code = scope.get(ERROR_KEY)
        self.latency_ms = (time.perf_counter() - started) * 1000
