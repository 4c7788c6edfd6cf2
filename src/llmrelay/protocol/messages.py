"""Message and content-part types of a chat request (``ChatCompletionRequestMessage``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


class _Part(msgspec.Struct, omit_defaults=True, tag_field="type", forbid_unknown_fields=False):
    pass


class TextPart(_Part, tag="text"):
    text: str


class ImageURL(msgspec.Struct, omit_defaults=True):
    url: str
    detail: str | None = None


class ImagePart(_Part, tag="image_url"):
    image_url: ImageURL


class InputAudio(msgspec.Struct, omit_defaults=True):
    data: str
    format: str


class AudioPart(_Part, tag="input_audio"):
    input_audio: InputAudio


class FilePart(_Part, tag="file"):
    file: dict[str, Any]


class RefusalPart(_Part, tag="refusal"):
    refusal: str


UserPart = TextPart | ImagePart | AudioPart | FilePart
AssistantPart = TextPart | RefusalPart


class FunctionCall(msgspec.Struct, omit_defaults=True):
    name: str
    arguments: str


class ToolCall(msgspec.Struct, omit_defaults=True, tag_field="type", tag="function"):
    id: str
    function: FunctionCall


class _Message(msgspec.Struct, omit_defaults=True, tag_field="role"):
    pass


class SystemMessage(_Message, tag="system"):
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Message, tag="developer"):
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Message, tag="user"):
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Message, tag="assistant"):
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(_Message, tag="tool"):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Message, tag="function"):
    content: str | None
    name: str


Message = (
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage
)
Messages = Annotated[list[Message], msgspec.Meta(min_length=1)]


def text_of(content: str | list[Any] | None) -> str:
    """The text of a message's content, its text and refusal parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.text if isinstance(part, TextPart) else getattr(part, "refusal", "")
        for part in content
    )


def role_of(message: Message) -> str:
    """The ``role`` a message was sent with (msgspec keeps it as the struct's tag)."""
    return str(type(message).__struct_config__.tag)
