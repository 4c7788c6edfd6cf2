"""Server-sent events as the Chat Completions API writes them: ``data: <json>`` and a blank line.

The one place that frames a payload and finds the payloads in received lines, for the stream
llmrelay sends, the streams upstreams send it, and the meter that reads what was forwarded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

DONE = b"[DONE]"


def frame(data: bytes) -> bytes:
    """One event carrying ``data`` (JSON text, or ``[DONE]``)."""
    return b"data: " + data + b"\n\n"


def data_payloads(lines: Iterable[bytes]) -> list[bytes]:
    """What the ``data:`` lines among ``lines`` carry (``[DONE]`` included), in order."""
    return [line[5:].strip() for line in lines if line.startswith(b"data:")]


def decoded(frames: bytes) -> list[dict[str, Any]]:
    """The JSON objects that framed events carry (``[DONE]``, and what is no JSON object, has
    none)."""
    objects = []
    for data in data_payloads(frames.split(b"\n")):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects
