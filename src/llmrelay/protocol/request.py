"""``CreateChatCompletionRequest``: decoded and validated once, at the edge, with msgspec.

``parse_chat_request(body)`` turns raw bytes into a ``ChatRequest`` or raises
``InvalidRequestError`` naming the offending ``param``, as OpenAI does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.decoding import decode
from llmrelay.protocol.messages import Messages

Temperature = Annotated[float, msgspec.Meta(ge=0, le=2)]
TopP = Annotated[float, msgspec.Meta(ge=0, le=1)]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
#: a count of tokens: what any model could be asked for, and what a counter (or Redis) can add
#: up without overflowing, times ``n``
TokenCount = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Stop = str | Annotated[list[str], msgspec.Meta(max_length=4)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class _Format(msgspec.Struct, omit_defaults=True, tag_field="type"):
    pass


class TextFormat(_Format, tag="text"):
    pass


class JsonObjectFormat(_Format, tag="json_object"):
    pass


class JsonSchema(msgspec.Struct, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class JsonSchemaFormat(_Format, tag="json_schema"):
    json_schema: JsonSchema


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat


class FunctionDef(msgspec.Struct, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(msgspec.Struct, omit_defaults=True, tag_field="type"):
    pass


class FunctionTool(_Tool, tag="function"):
    function: FunctionDef


class CustomTool(_Tool, tag="custom"):
    custom: dict[str, Any]


class NamedFunction(msgspec.Struct, omit_defaults=True):
    name: str


class NamedToolChoice(_Tool, tag="function"):
    function: NamedFunction


class NamedCustomChoice(_Tool, tag="custom"):
    custom: NamedFunction


class AllowedToolsChoice(_Tool, tag="allowed_tools"):
    allowed_tools: dict[str, Any]


FunctionList = Annotated[list[FunctionDef], msgspec.Meta(min_length=1, max_length=128)]
ToolChoice = (
    Literal["none", "auto", "required"] | NamedToolChoice | NamedCustomChoice | AllowedToolsChoice
)
FunctionCallChoice = Literal["none", "auto"] | NamedFunction


class ChatRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The body of ``POST /v1/chat/completions``, every field of the spec.

    Encoding it again gives what the client sent, less the fields it left unset.
    """

    model: str
    messages: Messages
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: Stop | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[int, msgspec.Meta(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    seed: Int64 | None = None
    response_format: ResponseFormat | None = None
    tools: list[FunctionTool | CustomTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: FunctionList | None = None
    function_call: FunctionCallChoice | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    moderation: dict[str, Any] | None = None
    safety_identifier: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


_decoder = msgspec.json.Decoder(ChatRequest)


def parse_chat_request(body: bytes) -> ChatRequest:
    """Decode and validate a request body; raise ``InvalidRequestError`` naming the param."""
    request = decode(_decoder, body)
    _check_consistency(request)
    return _with_legacy_functions(request)


def _check_consistency(request: ChatRequest) -> None:
    if request.top_logprobs and not request.logprobs:
        raise InvalidRequestError(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
            "'top_logprobs' is used.",
            param="top_logprobs",
        )
    if request.stream_options is not None and not request.stream:
        raise InvalidRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if request.tool_choice not in (None, "none", "auto") and not request.tools:
        raise InvalidRequestError(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
        )
    if request.tools and request.functions:
        raise InvalidRequestError(
            "'functions' and 'tools' cannot both be given; use 'tools'.", param="functions"
        )
    if isinstance(request.tool_choice, NamedToolChoice):
        names = {t.function.name for t in request.tools or () if isinstance(t, FunctionTool)}
        if request.tool_choice.function.name not in names:
            raise InvalidRequestError(
                f"Invalid value for 'tool_choice': no function named "
                f"'{request.tool_choice.function.name}' was specified in the 'tools' parameter.",
                param="tool_choice",
            )
    for key in request.logit_bias or {}:
        if not key.isdigit():
            raise InvalidRequestError(
                f"Invalid key in 'logit_bias': {key!r} is not a token id.", param="logit_bias"
            )


def _with_legacy_functions(request: ChatRequest) -> ChatRequest:
    """Map the deprecated ``functions``/``function_call`` onto ``tools``/``tool_choice``."""
    if not request.functions:
        return request
    choice: Any = request.function_call
    if isinstance(choice, NamedFunction):
        choice = NamedToolChoice(function=choice)
    return msgspec.structs.replace(
        request,
        tools=[FunctionTool(function=f) for f in request.functions],
        tool_choice=choice,
        functions=None,
        function_call=None,
    )
