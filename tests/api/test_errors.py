"""Every error the server gives, with OpenAI's status, type, code and param."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import API_KEY, Server, post_chat
from tests.spec import validate

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hi"}]


def error_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    validate("ErrorResponse", body)
    return body["error"]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"presence_penalty": 2.1}, "presence_penalty"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "many"}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"12": 101}}, "logit_bias"),
        ({"logit_bias": {"999999": 5}}, "logit_bias"),
        ({"seed": 2**64}, "seed"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"frobnicate": True}, "frobnicate"),
        ({"model": None}, "model"),
    ],
)
def test_invalid_parameter_names_its_param(
    server: Server, patch: dict[str, Any], param: str
) -> None:
    error = error_of(post_chat(server, {"model": MODEL, "messages": HELLO, **patch}), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_missing_fields(server: Server) -> None:
    assert error_of(post_chat(server, {"messages": HELLO}), 400)["param"] == "model"
    assert error_of(post_chat(server, {"model": MODEL}), 400)["param"] == "messages"


def test_named_tool_choice_must_name_a_tool(server: Server) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {
        "model": MODEL,
        "messages": HELLO,
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "g"}},
    }
    assert error_of(post_chat(server, body), 400)["param"] == "tool_choice"


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[1, 2]", '{"model": "\u00e9'.encode(), b'{"model": "\xff"}']
)
def test_malformed_json(server: Server, body: bytes) -> None:
    error = error_of(post_chat(server, body), 400)
    assert error["type"] == "invalid_request_error"


def test_missing_key(server: Server) -> None:
    error = error_of(post_chat(server, {"model": MODEL, "messages": HELLO}, key=None), 401)
    assert error["code"] is None
    assert "API key" in error["message"]


def test_wrong_key_is_not_echoed(server: Server) -> None:
    wrong = "sk-wrong-key-0123456789abcdefghijklmnop"
    error = error_of(post_chat(server, {"model": MODEL, "messages": HELLO}, key=wrong), 401)
    assert error["code"] == "invalid_api_key"
    assert wrong not in error["message"]


def test_sdk_sees_typed_errors(client: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-9", messages=HELLO)  # type: ignore[arg-type]
    assert not_found.value.code == "model_not_found"
    assert not_found.value.request_id and not_found.value.request_id.startswith("req_")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=HELLO, temperature=5)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        wrong.models.list()
    assert auth.value.code == "invalid_api_key"


def test_context_length_exceeded(server: Server) -> None:
    long = [{"role": "user", "content": "hello " * 9000}]
    error = error_of(post_chat(server, {"model": MODEL, "messages": long}), 400)
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert "8192" in error["message"]
    error = error_of(
        post_chat(server, {"model": MODEL, "messages": HELLO, "max_tokens": 8190}), 400
    )
    assert error["code"] == "context_length_exceeded"


def test_an_answer_may_be_as_long_as_the_context_holds(server: Server) -> None:
    # more than the model's output cap (1024), which only applies when a request sets no limit
    # (up to 2,000 tokens: half a minute on an idle machine, longer on a busy one)
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 2000}
    answer = post_chat(server, body, timeout=300)
    assert answer.status_code == 200, answer.text
    validate("CreateChatCompletionResponse", answer.json())
    body = {"model": MODEL, "messages": HELLO, "max_completion_tokens": 8192}
    error = error_of(post_chat(server, body), 400)
    assert (error["param"], error["code"]) == ("messages", "context_length_exceeded")
    assert "8192" in error["message"]


def test_oversized_body(server: Server) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]}
    error = error_of(post_chat(server, body), 413)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA"},
                            },
                        ],
                    }
                ]
            },
            "messages[0].content[1]",
        ),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"n": 64}, "n"),
    ],
)
def test_what_the_model_cannot_do_is_refused(
    server: Server, patch: dict[str, Any], param: str
) -> None:
    error = error_of(post_chat(server, {"model": MODEL, "messages": HELLO, **patch}), 400)
    assert error["param"] == param


def test_unknown_route_and_method(server: Server) -> None:
    response = httpx2.get(f"{server.base_url}/nothing-here", timeout=10)
    assert error_of(response, 404)["message"] == "Invalid URL (GET /v1/nothing-here)"
    response = httpx2.get(f"{server.base_url}/chat/completions", timeout=10)
    assert error_of(response, 405)["type"] == "invalid_request_error"


def test_model_lookup(server: Server) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    response = httpx2.get(f"{server.base_url}/models/gpt-4o-mini", headers=headers, timeout=10)
    assert response.status_code == 200
    validate("Model", response.json())
    response = httpx2.get(f"{server.base_url}/models", headers=headers, timeout=10)
    validate("ListModelsResponse", response.json())
    response = httpx2.get(f"{server.base_url}/models/nope", headers=headers, timeout=10)
    assert error_of(response, 404)["code"] == "model_not_found"
    assert httpx2.get(f"{server.base_url}/models", timeout=10).status_code == 401


DEEP = "[" * 1000 + "]" * 1000
NESTED_100 = '{"a":' * 100 + "1" + "}" * 100


@pytest.mark.parametrize(
    ("field", "param"),
    [
        ('"prediction": {"type": "content", "content": %s}', "prediction"),
        (
            '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
            '{"type": "object", "properties": {"a": %s}}}}]',
            "tools",
        ),
        (
            '"response_format": {"type": "json_schema", "json_schema": {"name": "x", '
            '"schema": {"a": %s}}}',
            "response_format",
        ),
    ],
)
@pytest.mark.parametrize(("nested", "named"), [(DEEP, "top"), (NESTED_100, "full")])
def test_json_nested_too_deep_is_a_400_naming_its_param(
    server: Server, field: str, param: str, nested: str, named: str
) -> None:
    """Nested past what can be decoded (1,000), or past the limit (64) but decodable: either
    way a 400, never a RecursionError further on."""
    start = f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "hi"}}], '
    body = start + field.replace("%s", nested) + "}"
    error = error_of(post_chat(server, body.encode()), 400)
    if named == "top":  # too deep to decode: the top-level field
        assert error["param"] == param
    else:  # decoded: the whole path
        assert error["param"] in {
            "prediction",
            "tools[0].function.parameters",
            "response_format.json_schema.schema",
        }
        assert error["param"].startswith(param)
    assert "nested deeper than 64" in error["message"]
    assert "Traceback" not in server.log.read_text()


def test_counts_beyond_what_a_counter_holds_are_a_400(server: Server) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 4611686018427387904, "n": 2}
    assert error_of(post_chat(server, body), 400)["param"] == "max_tokens"
    body = {"model": MODEL, "messages": HELLO, "max_completion_tokens": 2**31}
    assert error_of(post_chat(server, body), 400)["param"] == "max_completion_tokens"
