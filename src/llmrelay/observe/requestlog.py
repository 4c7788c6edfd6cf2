"""``RequestLog``: one line per API request on stderr, as text or as JSON lines.

Written straight to the stream, not through ``logging``: a line per request is the busiest log
there is, and the logging machinery (a record, its handlers, their locks) would cost several
times what the line does. Retries, fallbacks and cooldowns are logged by the router, through
``logging``, with the same request id.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, TextIO

import orjson

from llmrelay.observe.ended import Ended
from llmrelay.store.ledger import usd


class RequestLog:
    def __init__(self, format: str = "text", stream: TextIO | None = None) -> None:
        self._json = format == "json"
        self._stream = stream or sys.stderr

    def __call__(self, ended: Ended, request_id: str) -> None:
        fields = _fields(ended, request_id)
        line = orjson.dumps(fields).decode() if self._json else _text(fields)
        self._stream.write(line + "\n")


def _fields(ended: Ended, request_id: str) -> dict[str, Any]:
    outcome = ended.outcome
    now = time.time()
    fields: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        + f".{int(now % 1 * 1000):03d}Z",
        "request_id": request_id,
        "key_id": ended.key_id,
        "key_name": ended.key_name,
        "endpoint": ended.endpoint,
        "status": ended.status,
        "error_code": ended.error_code,
        "latency_ms": round(ended.latency_ms, 1),
    }
    if outcome is None:
        return fields
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
    return fields


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    """A second's time, formatted once for all the lines of that second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _text(fields: dict[str, Any]) -> str:
    """``time INFO request <id> key=<id>(<name>) <endpoint> model=... status=...``: the
    fields as ``name=value``, leaving out what is not known."""
    parts = [fields["time"], "INFO request", fields["request_id"]]
    if fields["key_id"] is not None:
        parts.append(f"key={fields['key_id']}({fields['key_name']})")
    elif "model" in fields:
        parts.append("key=config")
    parts.append(fields["endpoint"])
    for name in ("model", "model_served", "deployment"):
        if fields.get(name) is not None:
            parts.append(
                f'{name}="{fields[name]}"' if " " in fields[name] else f"{name}={fields[name]}"
            )
    parts.append(f"status={fields['status']}")
    if fields["error_code"]:
        parts.append(f"error={fields['error_code']}")
    if "prompt_tokens" in fields:
        parts.append(f"tokens={fields['prompt_tokens']}+{fields['completion_tokens']}")
        if fields["cached_tokens"]:
            parts.append(f"cached={fields['cached_tokens']}")
        cost = fields["cost_usd"]
        parts.append("cost=unpriced" if cost is None else f"cost=${cost}")
        if fields["stream"]:
            parts.append("stream")
        if fields["ttft_ms"] is not None:
            parts.append(f"ttft={fields['ttft_ms']}ms")
    parts.append(f"latency={fields['latency_ms']}ms")
    if fields.get("disconnected"):
        parts.append("disconnected")
    return " ".join(parts)
