"""Anthropic's Messages API with the official ``anthropic`` SDK (which parses every event and
raises on a malformed stream): through the built-in model, a scripted OpenAI-compatible upstream
(translated) and a scripted Anthropic upstream (passed through byte for byte); raw streams held
against the real captures in ../shared/spec/anthropic."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from tests.conftest import API_KEY, Server, configured_server
from tests.ledger import ledger_row
from tests.spec import SPEC_DIR, sse_events
from tests.upstream import ANSWERING_MODEL, CLAUDE_MODEL, STREAM_PIECES, Upstream, relay_models

MODEL = "gpt-4o-mini"  # the built-in model's alias
ADMIN_KEY = "sk-admin-messages-" + "m" * 30
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
#: a stream's events, ``ping`` aside, as Anthropic sends them
ORDER = re.compile(
    r"message_start( content_block_start( content_block_delta)* content_block_stop)*"
    r" message_delta message_stop"
)


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = relay_models(upstream, ["answer", "tools", "tools-stream", "bad-param"])
    lines += [
        "  - name: relay-claude",
        "    provider: anthropic",
        f"    base_url: {upstream.base_url.removesuffix('/v1')}",
        "    model: claude-answer",
        "  - name: relay-claude-tools",
        "    provider: anthropic",
        f"    base_url: {upstream.base_url.removesuffix('/v1')}",
        "    model: claude-tools",
        "model_map:",
        '  "claude-*": relay-answer',
    ]
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}
    with configured_server(tmp_path_factory.mktemp("messages"), lines, env) as server:
        yield server


Claude = Callable[..., anthropic.Anthropic]


@pytest.fixture
def claude() -> Iterator[Claude]:
    """Makes Anthropic's SDK clients pointed at a server (with a key), closed after the test."""
    made: list[anthropic.Anthropic] = []

    def make(server: Server, key: str = API_KEY) -> anthropic.Anthropic:
        made.append(anthropic.Anthropic(base_url=server.root, api_key=key, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        client.close()


def post(server: Server, body: dict[str, Any], **headers: str) -> httpx2.Response:
    sent = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", **headers}
    return httpx2.post(f"{server.root}/v1/messages", json=body, headers=sent, timeout=60)


def events(body: bytes) -> list[dict[str, Any]]:
    """A stream's events, each ``event:`` line checked against its data's type."""
    parsed = []
    for name, data in sse_events(body):
        event = json.loads(data)
        assert name == event["type"], f"event: {name} carries {event['type']}"
        parsed.append(event)
    return parsed


def check_order(stream: list[dict[str, Any]]) -> None:
    """The events in Anthropic's order, block indexes counting up from 0, one ``ping``."""
    kinds = [e["type"] for e in stream if e["type"] != "ping"]
    assert ORDER.fullmatch(" ".join(kinds)), kinds
    assert [e["type"] for e in stream].count("ping") == 1
    starts = [e["index"] for e in stream if e["type"] == "content_block_start"]
    assert starts == list(range(len(starts)))


def capture(name: str) -> list[dict[str, Any]]:
    body = (SPEC_DIR / "anthropic" / name).read_bytes()
    return events(body.rstrip(b"\n") + b"\n\n")  # the file has no blank line at its end


def shape(value: Any) -> Any:
    """The keys of an object, nested (what a client reads), not the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__ if value is not None else None


# the built-in model, translated


def test_a_message_from_the_builtin_model(server: Server, claude: Claude) -> None:
    message = claude(server).messages.create(
        model=MODEL,
        max_tokens=30,
        system="Be brief.",
        messages=HELLO,
        extra_body={"temperature": 0, "top_k": 40},  # this SDK no longer types them
    )
    assert message.type == "message" and message.role == "assistant"
    # the model that answered, as in every API llmrelay serves
    assert message.id.startswith("msg_") and message.model == "smollm2-135m-instruct"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 30


def test_a_stream_and_its_final_message(server: Server, claude: Claude) -> None:
    with claude(server).messages.stream(model=MODEL, max_tokens=20, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens > 0


def test_the_raw_stream_has_anthropics_events_in_order(server: Server) -> None:
    # 3 tokens: the model cannot end its answer first
    response = post(server, {"model": MODEL, "max_tokens": 3, "messages": HELLO, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response.content)
    check_order(stream)
    real = capture("basic_response.sse")
    for ours, theirs in ((stream[0], real[0]), (stream[-2], real[-2])):
        # message_start and message_delta as the capture has them (plus cache usage counts)
        usage = ours.get("message", ours)["usage"]
        assert set(shape(theirs.get("message", theirs)["usage"])) <= set(usage)
        assert set(shape(ours)) == set(shape(theirs))
    # a chat backend tells its input tokens at the end: message_delta has them
    assert stream[-2]["usage"]["input_tokens"] > 0 and stream[-2]["usage"]["output_tokens"] > 0
    assert stream[-2]["delta"]["stop_reason"] == "max_tokens"


def test_a_forced_tool_use_then_its_result(server: Server, claude: Claude) -> None:
    client = claude(server)
    forced = {"type": "tool", "name": "get_weather"}
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    message = client.messages.create(
        model=MODEL, max_tokens=60, messages=asked, tools=[WEATHER], tool_choice=forced
    )
    assert message.stop_reason == "tool_use"
    call = next(block for block in message.content if block.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict) and "city" in call.input
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}
    follow_up = [
        *asked,
        {"role": "assistant", "content": [b.model_dump() for b in message.content]},
        {"role": "user", "content": [result]},
    ]
    answer = client.messages.create(
        model=MODEL,
        max_tokens=30,
        messages=follow_up,
        tools=[WEATHER],
        tool_choice={"type": "none"},
    )
    assert answer.content[0].type == "text" and answer.stop_reason in ("end_turn", "max_tokens")


def test_count_tokens_counts_the_prompt(server: Server, claude: Claude) -> None:
    client = claude(server)
    short = client.messages.count_tokens(model=MODEL, messages=HELLO)
    more = [*HELLO, {"role": "assistant", "content": "Hello!"}, *HELLO]
    longer = client.messages.count_tokens(model=MODEL, messages=more)
    assert 0 < short.input_tokens < longer.input_tokens
    # the built-in engine counts the prompt its answers read, its chat template included (a
    # system prompt of the client's own stands in for the template's), whether cached or not
    system = "You answer in three languages, politely."
    for messages, prompt in ((HELLO, {}), (more, {"system": system})):
        counted = client.messages.count_tokens(model=MODEL, messages=messages, **prompt)
        for _ in range(2):  # (the second answer finds the prompt in the engine's cache)
            answer = client.messages.create(model=MODEL, max_tokens=1, messages=messages, **prompt)
            used = answer.usage  # (input_tokens leaves out what the prompt cache held)
            assert counted.input_tokens == used.input_tokens + (used.cache_read_input_tokens or 0)
    assert used.cache_read_input_tokens


def test_errors_in_anthropics_shape(server: Server, claude: Claude) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        claude(server, key="sk-wrong").messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude(server).messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
    assert missing.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {"type": "not_found_error", "message": missing.value.body["error"]["message"]},  # type: ignore[index]
    }
    bad = post(server, {"model": MODEL, "messages": HELLO})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in bad.json()["error"]["message"]
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(server).messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[
                {"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}
            ],
        )
    assert "image" in refused.value.message


# a scripted OpenAI-compatible upstream, translated


def test_tool_calls_of_an_openai_upstream_become_tool_use(
    relay: Server, upstream: Upstream, claude: Claude
) -> None:
    message = claude(relay).messages.create(
        model="relay-tools",
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER],
        tool_choice={"type": "any", "disable_parallel_tool_use": False},
        stop_sequences=["END"],
    )
    sent = upstream.requests[-1]
    assert sent["tool_choice"] == "required" and sent["stop"] == ["END"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert message.stop_reason == "tool_use" and message.model == ANSWERING_MODEL
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [c.input for c in calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 5)


def test_streamed_argument_fragments_become_input_json_deltas(
    relay: Server, claude: Claude
) -> None:
    response = post(
        relay,
        {
            "model": "relay-tools-stream",
            "max_tokens": 100,
            "messages": HELLO,
            "tools": [{**WEATHER, "name": "lookup"}],
            "stream": True,
        },
    )
    stream = events(response.content)
    check_order(stream)
    fragments = [
        e["delta"]["partial_json"]
        for e in stream
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"query": "weather in Paris and Tokyo"}
    assert stream[-2]["delta"]["stop_reason"] == "tool_use"
    # the SDK reads the same stream into a message
    with claude(relay).messages.stream(
        model="relay-tools-stream",
        max_tokens=100,
        messages=HELLO,
        tools=[{**WEATHER, "name": "lookup"}],
    ) as sdk_stream:
        final = sdk_stream.get_final_message()
    assert final.content[-1].input == {"query": "weather in Paris and Tokyo"}  # type: ignore[union-attr]


def test_a_claude_model_name_reaches_what_model_map_routes_it_to(relay: Server) -> None:
    response = post(
        relay, {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": HELLO, "stream": True}
    )
    stream = events(response.content)
    check_order(stream)
    text = "".join(e["delta"].get("text", "") for e in stream if e["type"] == "content_block_delta")
    assert text == "".join(STREAM_PIECES)
    assert stream[0]["message"]["model"] == ANSWERING_MODEL  # the model that answered
    row = ledger_row(relay, response.headers["x-request-id"])
    assert row["endpoint"] == "messages" and row["model_requested"] == "claude-sonnet-4-5"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 5)


def test_an_upstreams_400_names_the_messages_param(relay: Server, claude: Claude) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(relay).messages.create(
            model="relay-bad-param", max_tokens=5, messages=HELLO, extra_body={"temperature": 0.5}
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "temperature" in caught.value.message


# a scripted Anthropic upstream, passed through


def test_an_anthropic_upstream_gets_the_request_as_sent(relay: Server, upstream: Upstream) -> None:
    body = {
        "model": "relay-claude",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": HELLO,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"},
        "container": "a field this gateway has never heard of",
    }
    beta = "prompt-caching-2024-07-31"
    response = post(relay, body, **{"anthropic-beta": beta})
    assert response.status_code == 200
    assert upstream.requests[-1] == {**body, "model": "claude-answer"}
    assert upstream.headers[-1]["anthropic-beta"] == beta
    direct = httpx2.post(
        f"{upstream.base_url}/messages", json={**body, "model": "claude-answer"}, timeout=10
    )
    assert response.json() == direct.json()
    assert response.json()["model"] == CLAUDE_MODEL


def test_an_anthropic_upstreams_stream_is_passed_byte_for_byte(
    relay: Server, upstream: Upstream
) -> None:
    body = {"model": "relay-claude-tools", "max_tokens": 64, "messages": HELLO, "stream": True}
    response = post(relay, body)
    direct = httpx2.post(
        f"{upstream.base_url}/messages", json={**body, "model": "claude-tools"}, timeout=10
    )
    assert response.content == direct.content
    check_order(events(response.content))
    row = ledger_row(relay, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (21, 7)
    assert row["model_served"] == CLAUDE_MODEL
    assert 0 < row["ttft_ms"] <= row["latency_ms"]  # the first text_delta's time


def test_a_key_over_its_rate_limit_gets_anthropics_429(relay: Server, claude: Claude) -> None:
    created = httpx2.post(
        f"{relay.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "one a minute", "rpm": 1},
    ).json()
    client = claude(relay, key=created["key"])
    client.messages.create(model="relay-answer", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="relay-answer", max_tokens=5, messages=HELLO)
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(caught.value.response.headers["retry-after"]) > 0


def test_a_bearer_key_works_as_well_as_x_api_key(relay: Server) -> None:
    response = httpx2.post(
        f"{relay.root}/v1/messages?beta=true",
        json={"model": "relay-answer", "max_tokens": 5, "messages": HELLO},
        headers={"authorization": f"Bearer {API_KEY}", "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["type"] == "message"
