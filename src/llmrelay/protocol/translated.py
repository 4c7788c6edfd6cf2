"""``Translated``: an inbound API's request as the chat request every backend answers, and how
to name a chat parameter (in a backend's 400) as the inbound request named it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from llmrelay.errors import InvalidRequestError, UnsupportedParameterError
from llmrelay.protocol.decoding import validation_error
from llmrelay.protocol.request import ChatRequest

_MESSAGE = re.compile(r"messages\[(\d+)\]")


class Untranslatable(Exception):
    """What the chat format cannot say, and where it is in the inbound request; ``native``:
    the setting of a deployment that would take it as it is."""

    def __init__(self, param: str, what: str, native: str) -> None:
        super().__init__(what)
        self.error = UnsupportedParameterError(
            f"Unsupported parameter: '{param}': {what} is answered only by a backend that speaks "
            f"this API itself ({native}), and this model has none.",
            param=param,
        )


@dataclass(frozen=True)
class Translated:
    """The chat request; or None, and the 400 that says why there is none. ``sources``: where
    each chat message came from in the inbound request; ``params``: how other chat parameters
    are named there (a pattern matched at the name's start, and its replacement)."""

    chat: ChatRequest | None
    error: InvalidRequestError | None = None
    sources: list[str] = field(default_factory=list)
    params: Mapping[str, str] = field(default_factory=dict)

    def rename(self, error: InvalidRequestError) -> None:
        """Name a chat request's parameter (a backend's 400) as the inbound request did."""
        param = error.param or ""
        if (match := _MESSAGE.match(param)) and int(match.group(1)) < len(self.sources):
            error.param = self.sources[int(match.group(1))] + param[match.end() :]
            return
        for chat, inbound in self.params.items():
            if (match := re.match(chat, param)) is not None:
                error.param = match.expand(inbound) + param[match.end() :]
                return


def translate(
    build: Callable[[list[str]], dict[str, Any]], params: Mapping[str, str]
) -> Translated:
    """The chat request that ``build`` writes (noting where each message came from in the list
    it is given), checked as a ``ChatRequest``; or the 400 that says why there is none, naming
    the parameter as the inbound request names it."""
    sources: list[str] = []
    try:
        body = build(sources)
    except Untranslatable as exc:
        return Translated(None, exc.error)
    try:
        return Translated(msgspec.convert(body, ChatRequest), None, sources, params)
    except msgspec.ValidationError as exc:
        error = validation_error(str(exc))
        Translated(None, None, sources, params).rename(error)
        return Translated(None, error)


def add_options(body: dict[str, Any], options: Mapping[str, Any], *, stream: bool | None) -> None:
    """Set on a chat request's ``body`` the ``options`` given (None: not given), and ask a
    stream for its usage (the meter's, and the translated stream's last event's)."""
    body.update({name: value for name, value in options.items() if value is not None})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
