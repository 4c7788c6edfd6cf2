"""``RequestLog``: one line per API request on stderr, as text or as JSON lines.

Not through ``logging``: a line per request is the busiest log there is, and the logging
machinery (a record, its handlers, their locks) would outweigh the line itself.
Nor written as each request ends: the lines gather in memory and are written together every
``flush_seconds`` (or at ``MAX_LINES``), one system call for many lines (each call lets go of
the GIL, which the ledger's writer thread may then hold while the event loop waits). A crash
loses at most the last ``flush_seconds`` of lines (the ledger keeps every request, from its
spool). Retries, fallbacks and cooldowns are
logged by the router, through ``logging``, with the same request id.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, TextIO

import orjson

from llmrelay.gateway.periodic import Periodic
from llmrelay.observe.ended import Ended
from llmrelay.pricing.price import usd

#: lines kept at most before they are written
MAX_LINES = 2000


class RequestLog:
    def __init__(
        self, format: str = "text", stream: TextIO | None = None, flush_seconds: float = 0.2
    ) -> None:
        self._json = format == "json"
        self._stream = stream or sys.stderr
        self._lines: list[str] = []
        self._flushing = Periodic(flush_seconds, self._flush, "writing the request log")

    def __call__(self, ended: Ended, request_id: str) -> None:
        line = _json(ended, request_id) if self._json else _text(ended, request_id)
        self._lines.append(line)
        if len(self._lines) >= MAX_LINES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines = []
            self._stream.write(text)
            self._stream.flush()

    def start(self) -> None:
        self._flushing.start()

    async def stop(self) -> None:
        await self._flushing.stop()
        self.flush()  # the lines of the requests that ended last

    async def _flush(self) -> None:
        self.flush()


def _now() -> str:
    now = time.time()
    whole = int(now)
    return "%s.%03dZ" % (_second(whole), (now - whole) * 1000)  # noqa: UP031


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    """A second's time, formatted once for all the lines of that second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _json(ended: Ended, request_id: str) -> str:
    fields: dict[str, Any] = {
        "time": _now(),
        "request_id": request_id,
        "key_id": ended.key_id,
        "key_name": ended.key_name,
        "endpoint": ended.endpoint,
        "status": ended.status,
        "error_code": ended.error_code,
        "latency_ms": round(ended.latency_ms, 1),
    }
    outcome = ended.outcome
    if outcome is not None:
        usage = outcome.usage
        fields.update(
            model=outcome.model_requested,
            model_served=outcome.model_served,
            deployment=outcome.deployment,
            stream=outcome.stream,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            cost_usd=None if outcome.cost is None else usd(outcome.cost),
            ttft_ms=None if outcome.ttft_ms is None else round(outcome.ttft_ms, 1),
            disconnected=outcome.disconnected,
        )
    return orjson.dumps(fields).decode()


def _text(ended: Ended, request_id: str) -> str:
    """``time INFO request <id> key=<id>(<name>) <endpoint> model=... status=...``: the
    fields as ``name=value``, leaving out what is not known."""
    outcome = ended.outcome
    if ended.key_id is not None:
        who = f" key={ended.key_id}({ended.key_name})"
    else:
        who = "" if outcome is None else " key=config"
    error = f" error={ended.error_code}" if ended.error_code else ""
    latency = f"latency={ended.latency_ms:.1f}ms"
    head = f"{_now()} INFO request {request_id}{who} {ended.endpoint}"
    if outcome is None:
        return f"{head} status={ended.status}{error} {latency}"
    usage = outcome.usage
    used = f"tokens={usage.prompt_tokens}+{usage.completion_tokens}" if usage else "tokens=0+0"
    if usage and usage.cached_tokens:
        used += f" cached={usage.cached_tokens}"
    cost = "unpriced" if outcome.cost is None else "$" + usd(outcome.cost)
    served = f" model_served={outcome.model_served}" if outcome.model_served else ""
    deployment = f' deployment="{outcome.deployment}"' if outcome.deployment else ""
    stream = " stream" if outcome.stream else ""
    ttft = f" ttft={outcome.ttft_ms:.1f}ms" if outcome.ttft_ms is not None else ""
    left = " disconnected" if outcome.disconnected else ""
    return (
        f"{head} model={outcome.model_requested}{served}{deployment} status={ended.status}"
        f"{error} {used} cost={cost}{stream}{ttft} {latency}{left}"
    )
