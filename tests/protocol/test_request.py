"""Request validation at the edge, without a server."""

from __future__ import annotations

import orjson
import pytest

from llmrelay.errors import InvalidRequestError
from llmrelay.protocol.messages import AssistantMessage, role_of
from llmrelay.protocol.request import (
    ChatRequest,
    FunctionTool,
    NamedToolChoice,
    parse_chat_request,
)


def parse(**body: object) -> ChatRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    return parse_chat_request(orjson.dumps(body))


def test_every_role_and_content_shape() -> None:
    request = parse(
        messages=[
            {"role": "system", "content": "s"},
            {"role": "developer", "content": [{"type": "text", "text": "d"}]},
            {"role": "user", "content": [{"type": "text", "text": "u"}], "name": "ann"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
        ]
    )
    assert [role_of(m) for m in request.messages] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
    ]
    assistant = request.messages[3]
    assert isinstance(assistant, AssistantMessage) and assistant.tool_calls


def test_stop_and_limits() -> None:
    assert parse(stop="x").stop_list == ["x"]
    assert parse(stop=["a", "b"]).stop_list == ["a", "b"]
    assert parse(max_tokens=5).completion_limit == 5
    assert parse(max_tokens=5, max_completion_tokens=7).completion_limit == 7
    assert parse(stream=True, stream_options={"include_usage": True}).include_usage


def test_legacy_functions_become_tools() -> None:
    request = parse(
        functions=[{"name": "f", "parameters": {"type": "object"}}],
        function_call={"name": "f"},
    )
    assert isinstance(request.tools[0], FunctionTool)
    assert isinstance(request.tool_choice, NamedToolChoice)
    assert request.tool_choice.function.name == "f"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"temperature": 2.5}, "temperature", "<= 2"),
        ({"messages": [{"role": "user", "content": "x", "extra": 1}]}, None, None),
        ({"unknown_thing": 1}, "unknown_thing", "Unrecognized request argument"),
        ({"n": 129}, "n", "<= 128"),
    ],
)
def test_errors_name_the_param(body: dict, param: str | None, words: str | None) -> None:
    if param is None:  # unknown keys inside a message are tolerated, as OpenAI does
        parse(**body)
        return
    with pytest.raises(InvalidRequestError) as caught:
        parse(**body)
    assert caught.value.param == param
    assert words in caught.value.message
