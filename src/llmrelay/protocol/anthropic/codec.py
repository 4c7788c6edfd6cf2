"""``MessagesCodec``: Anthropic's Messages API answers and streams, from a chat backend's
(built and translated here) or from an Anthropic deployment's (passed on as they are)."""

from __future__ import annotations

from typing import Any

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.anthropic.events import MessageEvents, event
from llmrelay.protocol.anthropic.objects import error_body, message_object, new_id
from llmrelay.protocol.anthropic.request import MessagesRequest
from llmrelay.protocol.codec import Passthrough, StreamEncoder
from llmrelay.protocol.translated import Translated


class MessagesCodec:
    endpoint = "messages"

    def __init__(self, request: MessagesRequest, translated: Translated) -> None:
        self._request = request
        self._translated = translated
        self.message_id = new_id()

    def answer(self, body: dict[str, Any], native: bool) -> dict[str, Any]:
        return body if native else message_object(body, self.message_id)

    def encoder(self, native: bool) -> StreamEncoder:
        if native:
            return Passthrough(lambda error: event(error_body(error)))
        return MessageEvents(self.message_id, self._request.model)

    def rename(self, error: InvalidRequestError) -> None:
        self._translated.rename(error)
