"""Relaying to Anthropic's Messages API: requests and answers translated both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import Server, configured_server
from tests.upstream import CLAUDE_MODEL, CLAUDE_SCRIPTS, STREAM_PIECES, Upstream

CLAUDE_KEY = "sk-ant-test-" + "k" * 30
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = ["models:"]
    for name in CLAUDE_SCRIPTS:
        lines += [
            f"  - name: {name}",
            "    provider: anthropic",
            f"    base_url: {upstream.base_url.removesuffix('/v1')}",
            "    api_key: ${CLAUDE_KEY}",
            "    max_tokens: 333",
        ]
    env = {"CLAUDE_KEY": CLAUDE_KEY}
    with configured_server(tmp_path_factory.mktemp("anthropic"), lines, env) as server:
        yield server


def test_request_is_translated(sdk: openai.OpenAI, upstream: Upstream) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_9", "content": "21 C"},
        {"role": "user", "content": "Thanks. And now?"},
    ]
    sdk.chat.completions.create(
        model="claude-answer",
        messages=messages,
        tools=TOOLS,
        tool_choice="required",
        stop=["END"],
        temperature=0.5,
    )
    sent = upstream.requests[-1]
    assert upstream.headers[-1]["x-api-key"] == CLAUDE_KEY
    assert upstream.headers[-1]["anthropic-version"] == "2023-06-01"
    assert sent["system"] == "Be brief."
    assert sent["max_tokens"] == 333
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 0.5
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_9", "content": "21 C"},
        {"type": "text", "text": "Thanks. And now?"},
    ]


def test_answer_and_usage(sdk: openai.OpenAI) -> None:
    response = sdk.chat.completions.create(
        model="claude-answer", messages=[{"role": "user", "content": "hi"}]
    )
    assert response.choices[0].message.content == "".join(STREAM_PIECES)
    assert response.choices[0].finish_reason == "stop"
    assert response.model == CLAUDE_MODEL
    assert response.usage and (response.usage.prompt_tokens, response.usage.completion_tokens) == (
        21,
        7,
    )


def test_stream(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="claude-answer",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert [c.choices[0].delta.content for c in chunks if c.choices][1:-1] == STREAM_PIECES
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens == 7


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_becomes_tool_calls(sdk: openai.OpenAI, stream: bool) -> None:
    kwargs = {
        "model": "claude-tools",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": TOOLS,
    }
    if stream:
        with sdk.chat.completions.stream(**kwargs) as events:  # type: ignore[arg-type]
            final = events.get_final_completion()
    else:
        final = sdk.chat.completions.create(**kwargs)  # type: ignore[arg-type]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "".join(STREAM_PIECES)
    calls = choice.message.tool_calls or []
    assert [c.id for c in calls] == ["toolu_01", "toolu_02"]
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]


def test_overloaded_is_a_502(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(
            model="claude-overloaded", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502


def test_what_messages_cannot_say_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="claude-answer", messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert caught.value.param == "n"
