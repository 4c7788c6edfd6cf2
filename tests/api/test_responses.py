"""The Responses API with the official SDK: every answer and event checked against OpenAI's
schemas (``tests/spec.py``), through the built-in model, a scripted OpenAI-compatible upstream,
a scripted Anthropic upstream and a ``responses: native`` upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import jsonschema
import openai
import pytest

from tests.conftest import API_KEY, Server, configured_server
from tests.ledger import ledger_row
from tests.spec import RESPONSES, ValidatingTransport, sse_events, validate, validate_event
from tests.upstream import (
    CLAUDE_MODEL,
    NATIVE_ID,
    NATIVE_RESPONSE,
    NATIVE_STREAM,
    Upstream,
    relay_models,
)

MODEL = "gpt-4o-mini"
ADMIN_KEY = "sk-admin-responses-" + "r" * 30
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
FORCED = {"type": "function", "name": "get_weather"}


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Relayed models: OpenAI-compatible (translated), Anthropic (translated), native."""
    lines = relay_models(upstream, ["answer", "tools", "tools-stream", "bad-param"])
    lines += [
        "  - name: relay-claude",
        "    provider: anthropic",
        f"    base_url: {upstream.base_url.removesuffix('/v1')}",
        "    model: claude-answer",
        "  - name: relay-native",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: native-upstream",
        "    responses: native",
    ]
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}
    with configured_server(tmp_path_factory.mktemp("responses"), lines, env) as server:
        yield server


def post(server: Server, body: dict[str, Any], key: str = API_KEY) -> httpx2.Response:
    return httpx2.post(
        f"{server.base_url}/responses",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_a_plain_answer(client: openai.OpenAI, transport: ValidatingTransport) -> None:
    response = client.responses.create(
        model=MODEL, input="Say hello.", instructions="Be brief.", max_output_tokens=400
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.model == "smollm2-135m-instruct", "the model that answered"
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert transport.checked >= 1


def test_a_length_stop_is_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Tell a long story.", max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_a_forced_call_then_its_output(client: openai.OpenAI, server: Server) -> None:
    called = client.responses.create(
        model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice=FORCED
    )
    (call,) = [item for item in called.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    answered = client.responses.create(
        model=MODEL,
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER],
        max_output_tokens=60,
    )
    assert answered.output_text
    assert answered.previous_response_id == called.id
    # the conversation so far was the prompt: most of it was in the model's cache
    assert answered.usage is not None and answered.usage.input_tokens > called.usage.input_tokens
    assert answered.usage.input_tokens_details.cached_tokens > 0


def test_json_schema_output_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=MODEL,
        input="Make up a person.",
        text={
            "format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}
        },
        max_output_tokens=200,
    )
    jsonschema.validate(json.loads(response.output_text), schema)
    assert response.text.format.type == "json_schema"


def test_the_stream_helper_accumulates_it(client: openai.OpenAI) -> None:
    asked = {"model": MODEL, "input": "Say hi.", "temperature": 0, "max_output_tokens": 300}
    with client.responses.stream(**asked) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.status == "completed" and final.output_text and final.usage is not None


def test_a_streamed_call_comes_as_argument_deltas(server: Server) -> None:
    body = {"model": MODEL, "input": "Weather in Tokyo?", "tools": [WEATHER]}
    raw = post(server, {**body, "tool_choice": FORCED, "stream": True})
    events = [(name, json.loads(data)) for name, data in sse_events(raw.content)]
    kinds = [name for name, _ in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for n, e in events if n == "response.function_call_arguments.done")
    jsonschema.validate(json.loads(done["arguments"]), WEATHER["parameters"])
    numbers = [event["sequence_number"] for _, event in events]
    assert numbers == list(range(len(numbers))), "sequence numbers 0, 1, 2, ..."
    for name, event in events:
        assert name == event["type"]
        validate_event(event)
    completed = events[-1][1]["response"]
    assert completed["output"][0]["arguments"] == done["arguments"]
    assert completed["usage"]["output_tokens"] > 0


def test_a_stored_response_is_retrieved_listed_and_deleted(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="Hello!", max_output_tokens=20)
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Again?"}]}],
        max_output_tokens=20,
    )
    assert client.responses.retrieve(first.id).output_text == first.output_text
    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]
    assert items.data[0].content[0].text == "Again?"  # type: ignore[union-attr]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model=MODEL, previous_response_id=first.id, input="And?")
    assert gone.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Hi", store=False, max_output_tokens=5)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_another_keys_response_is_not_found(relay: Server, sdk: openai.OpenAI) -> None:
    created = httpx2.post(
        f"{relay.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "other"},
    ).json()
    mine = sdk.responses.create(model="relay-answer", input="Hi")
    other = post(relay, {"model": "relay-answer", "input": "Hi", "previous_response_id": mine.id})
    assert other.status_code == 200, "the same key continues it"
    refused = post(
        relay,
        {"model": "relay-answer", "input": "Hi", "previous_response_id": mine.id},
        key=created["key"],
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"background": True}, "background"),
        ({"temperature": 3}, "temperature"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"colour": "red"}, "colour"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": "https://x/cat.png"},
                        ],
                    }
                ]
            },
            "input[0].content[1]",
        ),
    ],
)
def test_what_no_backend_can_do_is_a_400_naming_it(
    server: Server, patch: dict[str, Any], param: str
) -> None:
    refused = post(server, {"model": MODEL, "input": "Hi", **patch})
    assert refused.status_code == 400, refused.text
    validate("ErrorResponse", refused.json(), RESPONSES)
    assert refused.json()["error"]["param"] == param


def test_reasoning_and_include_are_accepted_where_no_backend_reasons(server: Server) -> None:
    accepted = post(
        server,
        {
            "model": MODEL,
            "input": "Hi",
            "reasoning": {"effort": "high", "summary": "auto"},
            "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
            "top_logprobs": 2,
            "truncation": "auto",
            "max_output_tokens": 5,
        },
    )
    assert accepted.status_code == 200, accepted.text
    validate("Response", accepted.json(), RESPONSES)
    text = accepted.json()["output"][0]["content"][0]
    assert text["logprobs"] and len(text["logprobs"][0]["top_logprobs"]) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_compatible_upstream_answers_by_translation(
    relay: Server, sdk: openai.OpenAI, upstream: Upstream, stream: bool
) -> None:
    if stream:
        with sdk.responses.stream(model="relay-answer", input="Hi", instructions="Be kind.") as s:
            list(s)
            response = s.get_final_response()
    else:
        response = sdk.responses.create(model="relay-answer", input="Hi", instructions="Be kind.")
    assert response.output_text == "Hello, world!"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 5)  # type: ignore[union-attr]
    sent = upstream.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert bool(sent.get("stream")) is stream


@pytest.mark.parametrize("model", ["relay-tools", "relay-tools-stream"])
def test_an_upstreams_tool_calls_become_function_call_items(
    relay: Server, sdk: openai.OpenAI, model: str
) -> None:
    tool = {**WEATHER, "name": "lookup" if "stream" in model else "get_weather"}
    if model.endswith("stream"):
        with sdk.responses.stream(model=model, input="Weather?", tools=[tool]) as stream:
            deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
            response = stream.get_final_response()
        assert len(deltas) == 5, "each fragment as the upstream sent it"
    else:
        response = sdk.responses.create(model=model, input="Weather?", tools=[tool])
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and all(call.call_id for call in calls)
    assert json.loads(calls[0].arguments)


def test_an_upstreams_400_names_the_responses_param(relay: Server) -> None:
    refused = post(relay, {"model": "relay-bad-param", "input": "Hi", "temperature": 0.5})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "temperature"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_answers_by_translation(
    relay: Server, sdk: openai.OpenAI, upstream: Upstream, stream: bool
) -> None:
    if stream:
        with sdk.responses.stream(model="relay-claude", input="Hi", instructions="Be kind.") as s:
            list(s)
            response = s.get_final_response()
    else:
        response = sdk.responses.create(model="relay-claude", input="Hi", instructions="Be kind.")
    assert response.output_text == "Hello, world!"
    assert response.model == CLAUDE_MODEL
    assert response.usage is not None and response.usage.input_tokens == 21
    assert upstream.requests[-1]["system"] == "Be kind."


def test_a_native_upstream_gets_the_request_as_sent_and_answers_byte_for_byte(
    relay: Server, upstream: Upstream
) -> None:
    body = {
        "model": "relay-native",
        "input": [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}],
        "tools": [{"type": "web_search"}],
        "reasoning": {"effort": "high"},
        "store": True,
    }
    answered = post(relay, body)
    assert answered.json() == NATIVE_RESPONSE
    assert upstream.requests[-1] == {**body, "model": "native-upstream"}
    streamed = post(relay, {**body, "stream": True})
    assert streamed.content == b"".join(NATIVE_STREAM)
    row = ledger_row(relay, streamed.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["endpoint"]) == (
        31,
        12,
        "responses",
    )
    # its id is the key's: retrieved, listed and deleted through the upstream
    for method, path in (("GET", ""), ("GET", "/input_items"), ("DELETE", "")):
        relayed = httpx2.request(
            method,
            f"{relay.base_url}/responses/{NATIVE_ID}{path}",
            headers={"authorization": f"Bearer {API_KEY}"},
        )
        assert relayed.status_code == 200, relayed.text
        assert upstream.requests[-1] == {
            "method": method,
            "path": f"/v1/responses/{NATIVE_ID}{path}",
        }


def test_the_ledger_records_the_endpoint(relay: Server, sdk: openai.OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(model="relay-answer", input="Hi")
    row = ledger_row(relay, raw.headers["x-request-id"])
    assert (row["endpoint"], row["prompt_tokens"], row["completion_tokens"]) == ("responses", 9, 5)
