"""Chat completions through the official Python SDK, answered by the built-in model."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from openai.types.chat.chat_completion import Choice

from tests.spec import ValidatingTransport

MODEL = "gpt-4o-mini"
REAL_MODEL = "smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Say hello."}]
WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": WEATHER_PARAMS,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Get the local time in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"],
            },
        },
    },
]
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather like in Paris today?"}]


def test_normal_completion(client: openai.OpenAI, transport: ValidatingTransport) -> None:
    response = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=30)
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == REAL_MODEL
    assert response.system_fingerprint
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 30
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert transport.checked == 1


def test_stream(client: openai.OpenAI, transport: ValidatingTransport) -> None:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=20, stream=True)
    )
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices for c in chunks), "no usage chunk unless asked"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.model == REAL_MODEL for c in chunks)
    assert transport.checked == len(chunks)


def test_stream_with_usage_matches_the_text(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 12 or chunks[-2].choices[0].finish_reason == "stop"
    whole = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=12, temperature=0
    )
    assert whole.usage == last.usage
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert streamed == whole.choices[0].message.content


def test_n_choices(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL, messages=HELLO, n=2, max_tokens=25, seed=7
    )
    assert [c.index for c in response.choices] == [0, 1]
    assert response.choices[0].message.content != response.choices[1].message.content
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, n=2, max_tokens=10, stream=True
    )
    finished = {c.choices[0].index for c in stream if c.choices[0].finish_reason}
    assert finished == {0, 1}


def test_seed_gives_the_same_answer(client: openai.OpenAI) -> None:
    def ask(seed: int) -> str:
        response = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=40, seed=seed, temperature=1.0
        )
        return response.choices[0].message.content or ""

    first = ask(1234)
    assert ask(1234) == first
    assert any(ask(seed) != first for seed in (1, 2, 3))


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_completion_tokens=5,
    )
    assert response.choices[0].finish_reason == "length"
    assert response.usage and response.usage.completion_tokens == 5


def test_stop_string_is_never_sent(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 20 separated by commas."}]
    free = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=60, temperature=0
    )
    text = free.choices[0].message.content or ""
    assert "7" in text, text
    stop = text[text.index("7") : text.index("7") + 2]
    stopped = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=60, temperature=0, stop=[stop, "zzz"]
    )
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=60, temperature=0, stop=stop, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text[: text.index(stop)]


def test_logprobs(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, logprobs=True, top_logprobs=3, temperature=0
    )
    choice = response.choices[0]
    assert choice.logprobs and choice.logprobs.content
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    for token in choice.logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        # greedy decoding picks the most likely token
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob, abs=1e-4)
        assert bytes(token.bytes or []).decode() == token.token


def test_logit_bias_forbids_a_token(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=3, logprobs=True, temperature=0
    )
    assert first.choices[0].logprobs and first.choices[0].logprobs.content
    token = first.choices[0].logprobs.content[0]
    tokens = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=3,
        temperature=0,
        logprobs=True,
        logit_bias={str(_token_id(client, token.token)): -100},
    )
    assert tokens.choices[0].logprobs and tokens.choices[0].logprobs.content
    assert tokens.choices[0].logprobs.content[0].token != token.token


def _token_id(client: openai.OpenAI, token: str) -> int:
    # SmolLM2's vocabulary is GPT-2 style byte-level BPE; look the token up in the GGUF
    from llama_cpp._internals import LlamaModel

    from llmrelay.engine.model import builtin_model_path

    params = LlamaModel.default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(builtin_model_path()), params=params, verbose=False)
    ids = model.tokenize(token.encode(), add_bos=False, special=False)
    model.close()
    assert len(ids) == 1
    return ids[0]


def test_json_schema_output_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 30},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "hobbies": {
                "type": "array",
                "items": {"type": "string", "maxLength": 20},
                "maxItems": 3,
            },
        },
        "required": ["name", "age", "hobbies"],
        "additionalProperties": False,
    }
    for seed in (1, 2, 3):
        response = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Describe a person as JSON."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": schema, "strict": True},
            },
            seed=seed,
            max_tokens=300,
        )
        assert response.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(response.choices[0].message.content or ""), schema)


def test_json_object_output_parses(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give a JSON object with a key 'greeting'."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=400,
    )
    assert response.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(response.choices[0].message.content or ""), dict)


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_call_validates(client: openai.OpenAI, choice: object) -> None:
    for seed in (1, 2):
        response = client.chat.completions.create(
            model=MODEL, messages=WEATHER_QUESTION, tools=TOOLS, tool_choice=choice, seed=seed
        )
        result = response.choices[0]
        assert result.finish_reason == "tool_calls"
        assert result.message.tool_calls and len(result.message.tool_calls) == 1
        call = result.message.tool_calls[0]
        assert call.id.startswith("call_")
        if isinstance(choice, dict):
            assert call.function.name == "get_weather"
        params = next(
            t["function"]["parameters"]
            for t in TOOLS
            if t["function"]["name"] == call.function.name
        )
        jsonschema.validate(json.loads(call.function.arguments), params)


@pytest.mark.parametrize("max_tokens", [2, 14])
def test_a_forced_call_cut_short_is_returned_as_far_as_it_got(
    client: openai.OpenAI, max_tokens: int
) -> None:
    """Cut within the call's name (2 tokens) or its arguments (14): a partial call with
    finish_reason "length", JSON and streamed (LangChain's with_structured_output got None
    from an empty answer)."""
    forced = {"type": "function", "function": {"name": "get_weather"}}
    asked = {"model": MODEL, "messages": WEATHER_QUESTION, "tools": TOOLS, "seed": 4}
    answer = client.chat.completions.create(**asked, tool_choice=forced, max_tokens=max_tokens)
    result = answer.choices[0]
    assert result.finish_reason == "length"
    assert result.message.tool_calls and len(result.message.tool_calls) == 1
    call = result.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert bool(call.function.arguments) == (max_tokens > 2), "the arguments made so far"
    stream = client.chat.completions.create(
        **asked, tool_choice=forced, max_tokens=max_tokens, stream=True
    )
    names, arguments, finish = [], "", None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or ():
            names += [delta_call.function.name] if delta_call.function.name else []
            arguments += delta_call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (names, arguments, finish) == (["get_weather"], call.function.arguments, "length")


def test_streamed_tool_call_is_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL,
        messages=WEATHER_QUESTION,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        seed=3,
    ) as stream:
        deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 2, "arguments arrive in fragments"
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.parsed_arguments is None or isinstance(
        call.function.parsed_arguments, dict
    )
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_PARAMS)
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL, messages=WEATHER_QUESTION, tools=TOOLS, tool_choice="none", max_tokens=30
    )
    assert not response.choices[0].message.tool_calls
    assert response.choices[0].message.content


def _final_choice(client: openai.OpenAI, stream: bool, **kwargs: object) -> Choice:
    if not stream:
        return client.chat.completions.create(**kwargs).choices[0]  # type: ignore[call-overload]
    try:
        with client.chat.completions.stream(**kwargs) as events:  # type: ignore[arg-type]
            return events.get_final_completion().choices[0]
    except openai.LengthFinishReasonError as exc:
        return exc.completion.choices[0]


def _assert_valid_call(choice: Choice) -> None:
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    tool = next(t for t in TOOLS if t["function"]["name"] == call.function.name)
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_auto_may_answer_in_text(client: openai.OpenAI, stream: bool) -> None:
    for seed in range(3):
        choice = _final_choice(
            client, stream, model=MODEL, messages=HELLO, tools=TOOLS, seed=seed, max_tokens=40
        )
        if choice.message.tool_calls:
            _assert_valid_call(choice)
        else:
            assert choice.message.content
            assert "<tool_call>" not in choice.message.content


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_auto_may_call_a_tool(client: openai.OpenAI, stream: bool) -> None:
    # The 135M model is not trained for tools and does not open a call on its own. Biasing the
    # tokens of "<tool_call>" (<, tool, _, call, >) makes it open one; from there the lazy grammar
    # must hold the call to a tool's schema, although the bias still pulls every string to them.
    opening = {str(token): 100 for token in (44, 19324, 79, 4350, 46)}
    choice = _final_choice(
        client,
        stream,
        model=MODEL,
        messages=WEATHER_QUESTION,
        tools=TOOLS,
        temperature=0,
        max_tokens=80,
        logit_bias=opening,
    )
    _assert_valid_call(choice)
    assert not choice.message.content


def test_conversation_with_tool_results(client: openai.OpenAI) -> None:
    messages = [
        {"role": "developer", "content": "You are terse."},
        *WEATHER_QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city":"Paris","unit":"celsius"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": [{"type": "text", "text": "21 C, sunny"}],
        },
    ]
    response = client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, tool_choice="none", max_tokens=30
    )
    assert response.choices[0].message.content


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    # the built-in models, each followed by its alias
    assert ids == [REAL_MODEL, MODEL, "all-minilm-l6-v2", "text-embedding-3-small"]
    assert client.models.retrieve(MODEL).id == MODEL


def test_a_repeated_prompt_reuses_its_cache(client: openai.OpenAI) -> None:
    system = "You are a concise assistant for a travel agency. " * 6  # about 70 tokens
    messages = [{"role": "system", "content": system}, *HELLO]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=20, temperature=0
    )
    again = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=20, temperature=0
    )
    assert first.usage and again.usage
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    cached = again.usage.prompt_tokens_details
    # the cache is reused in whole 32-token chunks, and the last prompt token is evaluated again
    assert cached and cached.cached_tokens == (again.usage.prompt_tokens - 1) // 32 * 32
    assert cached.cached_tokens > 0
    assert again.choices[0].message.content == first.choices[0].message.content
    follow_up = [
        *messages,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Again, please."},
    ]
    turn = client.chat.completions.create(model=MODEL, messages=follow_up, max_tokens=5)
    assert turn.usage and turn.usage.prompt_tokens_details
    assert turn.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens // 32 * 32


def test_top_p_near_zero_keeps_only_the_likeliest_token(client: openai.OpenAI) -> None:
    greedy = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=20, temperature=0
    )
    for seed in (1, 2):
        nucleus = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=20, temperature=1.5, top_p=1e-6, seed=seed
        )
        assert nucleus.choices[0].message.content == greedy.choices[0].message.content


def test_penalties_discourage_repetition(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "List ten fruits, one per line, as a numbered list."}]

    def repeats(**penalty: float) -> int:
        response = client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=40, temperature=0, logprobs=True, **penalty
        )
        assert response.choices[0].logprobs and response.choices[0].logprobs.content
        tokens = [t.token for t in response.choices[0].logprobs.content]
        return max(tokens.count(t) for t in set(tokens))

    plain = repeats()
    assert repeats(frequency_penalty=2.0) < plain
    assert repeats(presence_penalty=2.0) < plain
