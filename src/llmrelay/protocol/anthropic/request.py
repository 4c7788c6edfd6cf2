"""Anthropic's Messages API request (``POST /v1/messages``), decoded and validated once.

The fields the translation reads are typed; message content blocks, tools and the tool choice
stay JSON objects, read where they are translated (``to_chat.py``) or passed through untouched to
an Anthropic deployment. The API grows new fields often (``container``, ``output_config``, ...):
a field not known here is not refused, and reaches an Anthropic deployment as the client sent
it (a translated request leaves it out).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.decoding import decode
from llmrelay.protocol.request import TokenCount

Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]


class _Prompt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a request to generate and a request to count tokens share."""

    model: str
    messages: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


class MessagesRequest(_Prompt, kw_only=True, omit_defaults=True):
    max_tokens: TokenCount
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CountTokensRequest(_Prompt, kw_only=True, omit_defaults=True):
    """``POST /v1/messages/count_tokens``."""


_decoder = msgspec.json.Decoder(MessagesRequest)
_count_decoder = msgspec.json.Decoder(CountTokensRequest)


def parse_messages_request(body: bytes) -> MessagesRequest:
    request = decode(_decoder, body)
    _check_roles(request)
    return request


def parse_count_tokens_request(body: bytes) -> CountTokensRequest:
    request = decode(_count_decoder, body)
    _check_roles(request)
    return request


def _check_roles(request: _Prompt) -> None:
    for i, message in enumerate(request.messages):
        if message.get("role") not in ("user", "assistant"):
            raise InvalidRequestError(
                f"messages.{i}.role: Input should be 'user' or 'assistant'",
                param=f"messages[{i}].role",
            )
        content = message.get("content")
        if not isinstance(content, str | list):
            raise InvalidRequestError(
                f"messages.{i}.content: a string or a list of content blocks is required",
                param=f"messages[{i}].content",
            )
