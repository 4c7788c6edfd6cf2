"""``CreateResponse``: the body of ``POST /v1/responses``, decoded and validated once.

The top level is typed (ranges and types checked by msgspec, every field of the spec known, any
other refused as OpenAI refuses it); input items, tools and the text format stay JSON objects
here, read one by one where they are translated (``to_chat.py``) or passed through untouched to
a backend that speaks this API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from llmrelay.errors import InvalidRequestError, UnsupportedParameterError
from llmrelay.protocol.decoding import decode
from llmrelay.protocol.request import Temperature, TokenCount, TopP


class TextConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Every field of ``CreateResponse``, and ``client_metadata``."""

    model: str
    input: str | list[dict[str, Any]] = ""
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: TokenCount | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    background: bool | None = None
    service_tier: str | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    max_tool_calls: Annotated[int, msgspec.Meta(ge=1)] | None = None
    prompt: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    safety_identifier: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    conversation: str | dict[str, Any] | None = None
    context_management: Any = None
    moderation: dict[str, Any] | None = None
    #: what a client says of itself (Codex CLI sends it; OpenAI takes it), not passed on
    client_metadata: dict[str, Any] | None = None

    @property
    def stored(self) -> bool:
        """Whether the response is kept (``store`` defaults to true, as OpenAI's)."""
        return self.store is not False


_decoder = msgspec.json.Decoder(ResponsesRequest)


def parse_responses_request(body: bytes) -> ResponsesRequest:
    """Decode and validate a body; a 400 naming the param for what no backend can do."""
    request = decode(_decoder, body)
    if request.background:
        raise UnsupportedParameterError(
            "Unsupported parameter: 'background': llmrelay answers while the request waits.",
            param="background",
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if isinstance(request.input, list) and not request.input and not request.previous_response_id:
        raise InvalidRequestError("Invalid value for 'input': it is empty.", param="input")
    return request
