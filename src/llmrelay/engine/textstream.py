"""Turning sampled tokens into text safely: whole UTF-8 characters, and no stop string leaked."""

from __future__ import annotations

import codecs


class StopMatcher:
    """Holds back text that may be the start of a stop string until it is known not to be.

    ``feed`` returns the text that is safe to send and whether a stop string was reached.
    """

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            safe = self._pending[: min(hits)]
            self._pending = ""
            return safe, True
        keep = self._held_suffix()
        safe = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep :]
        return safe, False

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest

    def _held_suffix(self) -> int:
        """The length of the longest tail of the pending text that begins some stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if stop.startswith(self._pending[-n:]):
                    best = n
                    break
        return best


class Detokenizer:
    """Bytes of token pieces in, complete characters out (a character may span tokens)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
