"""Folding stream deltas into a whole ``message``, the way the SDKs do."""

from __future__ import annotations

from typing import Any


class MessageBuilder:
    """Applies one choice's deltas in order; ``message()`` is the assembled message."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.logprobs: list[dict[str, Any]] | None = None

    def add(self, delta: dict[str, Any], logprobs: list[dict[str, Any]] | None = None) -> None:
        if content := delta.get("content"):
            self._content.append(content)
        for call in delta.get("tool_calls") or ():
            known = self._calls.get(call["index"])
            if known is None:
                self._calls[call["index"]] = {
                    "id": call["id"],
                    "type": "function",
                    "function": dict(call["function"]),
                }
            else:
                known["function"]["arguments"] += call["function"].get("arguments", "")
        if logprobs is not None:
            self.logprobs = (self.logprobs or []) + logprobs

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self._content) if self._content or not self._calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        return message
