"""Legacy ``POST /v1/completions`` with the official SDK: the built-in model (a raw prompt, no
chat template) and a relayed OpenAI-compatible upstream; every answer and chunk checked
against OpenAI's schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import API_KEY, Server, configured_server, sdk_client
from tests.ledger import ledger_row
from tests.spec import EMBEDDINGS, ValidatingTransport, validate
from tests.upstream import ANSWERING_MODEL, STREAM_PIECES, Upstream, relay_models

MODEL = "gpt-4o-mini"
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = relay_models(upstream, ["answer"])
    lines += [
        "  - name: relay-capped",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    max_output_tokens: 50",
        "  - name: relay-claude",
        "    provider: anthropic",
        f"    base_url: {upstream.base_url.removesuffix('/v1')}",
    ]
    with configured_server(tmp_path_factory.mktemp("completions"), lines) as server:
        yield server


def post(server: Server, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(
        f"{server.base_url}/completions",
        json=body,
        headers={"authorization": f"Bearer {API_KEY}"},
        timeout=60,
    )


def test_a_raw_prompt_is_continued(client: openai.OpenAI, server: Server) -> None:
    answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0)
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.model == "smollm2-135m-instruct"
    choice = answer.choices[0]
    assert choice.text and choice.finish_reason in ("stop", "length") and choice.logprobs is None
    assert answer.usage is not None and answer.usage.prompt_tokens == 5  # no chat template
    assert 0 < answer.usage.completion_tokens <= 12
    # a raw prompt goes on where it stopped: greedy, the same twice
    again = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0)
    assert again.choices[0].text == choice.text


def test_prompts_times_n_choices_in_order(client: openai.OpenAI) -> None:
    prompts = ["One, two,", "Red, green,"]
    answer = client.completions.create(
        model=MODEL, prompt=prompts, n=2, max_tokens=4, temperature=0.8, seed=7
    )
    assert [c.index for c in answer.choices] == [0, 1, 2, 3]
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 16  # each choice ran to its max_tokens
    single = [client.completions.create(model=MODEL, prompt=p, max_tokens=1) for p in prompts]
    assert answer.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in single)  # type: ignore[union-attr]


def test_logprobs_in_the_legacy_shape(client: openai.OpenAI) -> None:
    answer = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=5, logprobs=3, temperature=0
    )
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.token_logprobs
    assert "".join(logprobs.tokens) == answer.choices[0].text
    assert logprobs.text_offset[0] == len(PROMPT)  # offsets count the prompt's text
    for token, logprob, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs or [], strict=True
    ):
        assert top[token] == logprob and 3 <= len(top) <= 4  # the chosen one is always there
        assert logprob <= 0


def test_echo_and_a_stream_with_usage(client: openai.OpenAI, server: Server) -> None:
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt=PROMPT,
            max_tokens=6,
            echo=True,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].text == PROMPT  # the echo comes first
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text.startswith(PROMPT) and len(text) > len(PROMPT)
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 5
    assert len({c.id for c in chunks}) == 1
    whole = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=0, echo=True)
    assert whole.choices[0].text == PROMPT and whole.choices[0].finish_reason == "length"


def test_a_stream_without_usage_asked_has_none_and_is_metered(server: Server) -> None:
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 4, "stream": True}
    response = post(server, body)
    assert response.text.endswith("data: [DONE]\n\n")
    assert '"usage":{' not in response.text
    row = ledger_row(server, response.headers["x-request-id"])
    assert row["endpoint"] == "completions" and row["stream"]
    assert row["prompt_tokens"] == 5 and 0 < row["completion_tokens"] <= 4
    assert 0 < row["ttft_ms"] <= row["latency_ms"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"suffix": "and that is all."}, "suffix"),
        ({"echo": True, "logprobs": 1}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"n": 99}, "n"),
        ({"max_tokens": 9000}, "prompt"),
        ({"prompt": [[1, 2, 9999999]]}, "prompt"),
        ({"prompt": [1, "a"]}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"logprobs": 6}, "logprobs"),
        ({"logit_bias": {"9999999": 5}}, "logit_bias"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_what_the_engine_cannot_do_is_a_400_naming_its_param(
    server: Server, body: dict[str, Any], param: str
) -> None:
    response = post(server, {"model": MODEL, "prompt": PROMPT, **body})
    assert response.status_code == 400, response.text
    error = response.json()
    validate("ErrorResponse", error, EMBEDDINGS)
    assert error["error"]["param"] == param


def test_a_relayed_upstream_answers_and_streams(
    relay: Server, upstream: Upstream, transport: ValidatingTransport
) -> None:
    with sdk_client(relay, transport) as sdk:
        relayed_answers_and_streams(sdk, upstream)


def relayed_answers_and_streams(sdk: openai.OpenAI, upstream: Upstream) -> None:
    answer = sdk.completions.create(model="relay-answer", prompt="Say hi", max_tokens=7)
    assert answer.choices[0].text == "Hello, world!" and answer.model == ANSWERING_MODEL
    assert upstream.requests[-1] == {"model": "answer", "prompt": "Say hi", "max_tokens": 7}
    chunks = list(sdk.completions.create(model="relay-answer", prompt="Say hi", stream=True))
    assert [c.choices[0].text for c in chunks] == [*STREAM_PIECES, ""]
    # asked for usage on the way up, for the ledger; the client did not ask for it
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)
    sdk.completions.create(model="relay-capped", prompt="Say hi", max_tokens=5000)
    assert upstream.requests[-1]["max_tokens"] == 50
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.completions.create(model="relay-claude", prompt="Say hi")
    assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_a_relayed_stream_is_metered_with_the_upstreams_usage(relay: Server) -> None:
    response = post(relay, {"model": "relay-answer", "prompt": "Hi", "stream": True})
    row = ledger_row(relay, response.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        9,
        5,
        "reported",
    )
    assert row["model_served"] == ANSWERING_MODEL and row["endpoint"] == "completions"
