"""Relaying to an OpenAI-compatible upstream: a scripted one on loopback, the SDK in front."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from llmrelay.engine.tokens import count_tokens
from tests.conftest import (
    API_KEY,
    Server,
    configured_server,
    post_chat,
    start_server,
    stop_server,
)
from tests.net import free_port
from tests.upstream import (
    ANSWERING_MODEL,
    PIECE_DELAY,
    SCRIPTS,
    SLOW_REST_PAUSE,
    STREAM_PIECES,
    Upstream,
    relay_models,
)

UPSTREAM_KEY = "sk-upstream-secret-" + "u" * 30
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("relay")
    lines = relay_models(
        upstream,
        SCRIPTS,
        "api_key: ${UPSTREAM_KEY}",
        "timeouts: {connect: 2, first_byte: 1, total: 5}",
    )
    lines += [
        "  - name: relay-quiet",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: answer",
        "    stream_usage: false",
        "  - name: relay-shaped",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: answer",
        "    params:",
        "      drop: [temperature, seed]",
        "      rename: {max_tokens: max_completion_tokens}",
        "      set: {top_k: 40, chat_template_kwargs: {enable_thinking: false}}",
        "  - name: relay-capped",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: max-tokens",
        "    max_output_tokens: 1000",
    ]
    with configured_server(data, lines, {"UPSTREAM_KEY": UPSTREAM_KEY}) as server:
        yield server
    assert UPSTREAM_KEY not in server.log.read_text()


def test_answer_passes_through(sdk: openai.OpenAI, upstream: Upstream) -> None:
    response = sdk.chat.completions.create(
        model="relay-answer", messages=HELLO, temperature=0.3, max_tokens=7, user="u-1"
    )
    assert response.choices[0].message.content == "Hello, world!"
    assert response.model == ANSWERING_MODEL
    sent = upstream.requests[-1]
    assert sent == {
        "model": "answer",
        "messages": HELLO,
        "temperature": 0.3,
        "max_tokens": 7,
        "user": "u-1",
    }
    assert upstream.headers[-1]["Authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_parallel_tool_calls_pass_through(sdk: openai.OpenAI) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    response = sdk.chat.completions.create(model="relay-tools", messages=HELLO, tools=tools)
    calls = response.choices[0].message.tool_calls
    assert calls and [c.function.arguments for c in calls] == [
        '{"city":"Paris"}',
        '{"city":"Tokyo"}',
    ]
    assert response.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_is_forwarded_chunk_by_chunk(
    sdk: openai.OpenAI, upstream: Upstream, include_usage: bool
) -> None:
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    arrivals, pieces = [], []
    started = time.perf_counter()
    for chunk in sdk.chat.completions.create(
        model="relay-answer", messages=HELLO, stream=True, **kwargs
    ):
        arrivals.append(time.perf_counter() - started)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if not chunk.choices:
            assert include_usage and chunk.usage and chunk.usage.total_tokens == 14
    assert pieces == STREAM_PIECES
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}, (
        "usage is always asked for"
    )
    # the pieces arrive spread over the upstream's pauses, not all at the end
    assert arrivals[-1] - arrivals[1] >= PIECE_DELAY * (len(STREAM_PIECES) - 1)


def test_usage_request_can_be_turned_off(sdk: openai.OpenAI, upstream: Upstream) -> None:
    chunks = list(sdk.chat.completions.create(model="relay-quiet", messages=HELLO, stream=True))
    assert "stream_options" not in upstream.requests[-1]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world!"


def test_params_rules_drop_rename_and_set(sdk: openai.OpenAI, upstream: Upstream) -> None:
    sdk.chat.completions.create(
        model="relay-shaped", messages=HELLO, temperature=0.3, seed=1, max_tokens=7, top_p=0.5
    )
    assert upstream.requests[-1] == {
        "model": "answer",
        "messages": HELLO,
        "max_completion_tokens": 7,
        "top_p": 0.5,
        "top_k": 40,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_usage_is_counted_when_the_upstream_sends_none(sdk: openai.OpenAI) -> None:
    answer = sdk.chat.completions.create(model="relay-no-usage", messages=HELLO)
    assert answer.usage is not None
    hello_tokens = asyncio.run(count_tokens("Hello, world!"))[0]
    assert answer.usage.completion_tokens == hello_tokens
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + hello_tokens

    chunks = list(
        sdk.chat.completions.create(
            model="relay-no-usage",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == answer.usage.model_dump()
    assert chunks[-1].id == chunks[0].id and chunks[-1].model == ANSWERING_MODEL


def test_first_chunk_is_not_held_back(sdk: openai.OpenAI, upstream: Upstream) -> None:
    def first_and_last(client: openai.OpenAI, model: str) -> tuple[float, float]:
        started = time.perf_counter()
        arrivals = [
            time.perf_counter() - started
            for _ in client.chat.completions.create(model=model, messages=HELLO, stream=True)
        ]
        return arrivals[0], arrivals[-1]

    direct = openai.OpenAI(base_url=upstream.base_url, api_key="x")
    direct_first, _ = first_and_last(direct, "slow-rest")
    relayed_first, relayed_last = first_and_last(sdk, "relay-slow-rest")
    print(
        f"first chunk: direct {direct_first * 1000:.1f} ms, relayed {relayed_first * 1000:.1f} ms"
    )
    assert relayed_last >= SLOW_REST_PAUSE
    # the first chunk comes before the upstream's pause ends, not with the rest
    assert relayed_first < SLOW_REST_PAUSE / 2


def test_upstream_429_stays_429_with_its_retry_after(relay: Server) -> None:
    response = post_chat(relay, {"model": "relay-limited", "messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["retry-after-ms"] == "7000"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("relay-bad-param", openai.BadRequestError, 400),
        ("relay-broken", openai.InternalServerError, 502),
        ("relay-refuses-key", openai.InternalServerError, 502),
        ("relay-hang", openai.InternalServerError, 504),
    ],
)
def test_upstream_errors_are_mapped(
    sdk: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as caught:
        sdk.chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == status
    text = caught.value.response.text
    assert "127.0.0.1" not in text and "upstream-secret-host" not in text and "sk-upst" not in text
    if model == "relay-bad-param":
        assert caught.value.param == "temperature"


def test_an_upstream_that_echoes_its_key_does_not_show_it(sdk: openai.OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="relay-echo-key", messages=HELLO, stream=stream)
        text = caught.value.response.text
        assert UPSTREAM_KEY not in text
        assert "Key not valid for this model: Bearer ***" in caught.value.message


def test_a_deployment_lowers_what_a_client_asks_for_to_its_cap(sdk: openai.OpenAI) -> None:
    for asked, sent in ((32000, "1000"), (10, "10")):
        answer = sdk.chat.completions.create(model="relay-capped", messages=HELLO, max_tokens=asked)
        assert answer.choices[0].message.content == sent


def test_a_stream_cut_midway_ends_with_an_error_event(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(model="relay-cut", messages=HELLO, stream=True)
    pieces = []
    with pytest.raises(openai.APIError, match=r"broke the stream|ended the stream early"):
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["Hel"]


def test_unreachable_upstream(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  - name: gone\n    provider: openai\n"
        f"    base_url: http://127.0.0.1:{free_port()}/v1\n"
    )
    server = start_server(
        tmp_path, env={"LLMRELAY_API_KEY": API_KEY}, args=("--config", str(config))
    )
    try:
        response = post_chat(server, {"model": "gone", "messages": HELLO})
        assert response.status_code == 502
        assert "could not be reached" in response.json()["error"]["message"]
    finally:
        stop_server(server)
