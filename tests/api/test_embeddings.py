"""``POST /v1/embeddings`` with the official SDK: the built-in all-MiniLM-L6-v2 (its vectors
mean something: related sentences come out closer), and a relayed OpenAI-compatible upstream;
every answer checked against OpenAI's schema."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx2
import numpy as np
import openai
import pytest

from tests.conftest import API_KEY, Server, configured_server, sdk_client
from tests.ledger import ledger_row
from tests.spec import EMBEDDINGS, ValidatingTransport, validate
from tests.upstream import EMBEDDING_MODEL, Upstream

MODEL = "text-embedding-3-small"  # the built-in model's alias
ADMIN_KEY = "sk-admin-embeddings-" + "e" * 30
#: (a sentence, one that says much the same, one about something else)
TRIPLES = [
    ("The cat sat on the mat.", "A kitten is lying on the rug.", "Interest rates rose again."),
    ("How do I reset my password?", "I forgot my login password.", "The recipe needs two eggs."),
    (
        "The train to Paris leaves at noon.",
        "Our rail trip to France starts midday.",
        "I like jazz.",
    ),
    ("He scored a goal in the final.", "The striker found the net in the cup final.", "Soup."),
    ("The server ran out of memory.", "The machine had no RAM left.", "Tulips bloom in spring."),
]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lines = [
        "models:",
        "  - name: relay-embeddings",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: upstream-embedder",
        "  - name: local-embeddings",
        "    provider: local-embeddings",
        "  - name: relay-chat",
        "    provider: openai",
        f"    base_url: {upstream.base_url}",
        "    model: answer",
    ]
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}
    with configured_server(tmp_path_factory.mktemp("embeddings"), lines, env) as server:
        yield server


def post(server: Server, body: dict[str, Any], key: str = API_KEY) -> httpx2.Response:
    return httpx2.post(
        f"{server.base_url}/embeddings",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )


def vectors(answer: Any) -> np.ndarray:
    return np.array([item.embedding for item in answer.data])


def test_related_sentences_come_out_closer_than_unrelated_ones(client: openai.OpenAI) -> None:
    texts = [text for triple in TRIPLES for text in triple]
    answer = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert answer.model == "all-minilm-l6-v2" and answer.object == "list"
    assert [item.index for item in answer.data] == list(range(len(texts)))
    found = vectors(answer).reshape(len(TRIPLES), 3, -1)
    assert found.shape[-1] == 384
    assert np.allclose(np.linalg.norm(found, axis=-1), 1, atol=1e-5), "unit vectors"
    for (sentence, related, unrelated), triple in zip(TRIPLES, found, strict=True):
        close, far = triple[0] @ triple[1], triple[0] @ triple[2]
        assert close > far + 0.2, (sentence, related, unrelated, close, far)


def test_an_input_gets_the_same_vector_alone_or_in_a_batch(client: openai.OpenAI) -> None:
    alone = client.embeddings.create(model=MODEL, input=TRIPLES[0][0], encoding_format="float")
    padded = [TRIPLES[2][1], TRIPLES[0][0], "x " * 100]  # a long one pads the batch
    batch = client.embeddings.create(model=MODEL, input=padded, encoding_format="float")
    assert np.allclose(vectors(alone)[0], vectors(batch)[1], atol=1e-5)
    assert alone.usage.prompt_tokens == alone.usage.total_tokens == 7  # the, cat, ..., "."


def test_float_and_base64_agree(client: openai.OpenAI, server: Server) -> None:
    floats = client.embeddings.create(model=MODEL, input="hello there", encoding_format="float")
    # what the SDK asks for when no format is given: base64, decoded by the SDK
    decoded = client.embeddings.create(model=MODEL, input="hello there")
    raw = post(server, {"model": MODEL, "input": "hello there", "encoding_format": "base64"})
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    unpacked = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.array_equal(vectors(floats)[0].astype(np.float32), unpacked)
    assert np.array_equal(vectors(decoded)[0], vectors(floats)[0])


def test_token_arrays_are_the_models_own_token_ids(client: openai.OpenAI) -> None:
    # all-MiniLM-L6-v2's vocabulary: "hello" is 7592, "there" 2045
    tokens = client.embeddings.create(model=MODEL, input=[[7592, 2045]], encoding_format="float")
    text = client.embeddings.create(model=MODEL, input="hello there", encoding_format="float")
    assert np.allclose(vectors(tokens)[0], vectors(text)[0], atol=1e-5)
    one = client.embeddings.create(model=MODEL, input=[7592, 2045], encoding_format="float")
    assert np.allclose(vectors(one)[0], vectors(text)[0], atol=1e-5)


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"input": "x", "dimensions": 256}, "dimensions", "dimensions"),
        ({"input": [[999999]]}, "input", "vocabulary"),
        ({"input": ""}, "input", "empty"),
        ({"input": []}, "input", "1 to 2048"),
        ({"input": ["a", 3]}, "input", "array of strings"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", "int8"),
        ({"input": "x", "colour": "red"}, "colour", "Unrecognized"),
        ({}, "input", "Missing required parameter"),
    ],
)
def test_bad_input_is_a_400_naming_its_param(
    server: Server, body: dict[str, Any], param: str, says: str
) -> None:
    response = post(server, {"model": MODEL, **body})
    assert response.status_code == 400, response.text
    error = response.json()
    validate("ErrorResponse", error, EMBEDDINGS)
    assert error["error"]["param"] == param and says in error["error"]["message"]


def test_a_chat_model_makes_no_embeddings_and_an_embedding_model_no_chat(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="gpt-4o-mini", input="x")
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    assert "embedding model" in caught.value.message


def test_embeddings_are_metered_as_input_alone(server: Server) -> None:
    response = post(server, {"model": MODEL, "input": ["one two three", "four"]})
    assert response.status_code == 200
    row = ledger_row(server, response.headers["x-request-id"])
    assert row["endpoint"] == "embeddings" and row["status"] == 200
    assert row["model_requested"] == MODEL and row["model_served"] == "all-minilm-l6-v2"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (4, 0)
    assert response.json()["usage"]["prompt_tokens"] == 4


def test_a_relayed_upstream_answers_as_it_sent(
    relay: Server, upstream: Upstream, transport: ValidatingTransport
) -> None:
    with sdk_client(relay, transport) as sdk:
        answer = sdk.embeddings.create(model="relay-embeddings", input=["a", "b"], dimensions=3)
    assert upstream.requests[-1]["model"] == "upstream-embedder"
    assert upstream.requests[-1]["dimensions"] == 3  # the upstream decides what it supports
    assert answer.model == EMBEDDING_MODEL
    assert [item.embedding for item in answer.data] == [[0.0, 0.5, -0.25], [1.0, 0.5, -0.25]]
    raw = post(relay, {"model": "relay-embeddings", "input": "a", "encoding_format": "float"})
    row = ledger_row(relay, raw.headers["x-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        6,
        0,
        "reported",
    )
    assert row["model_served"] == EMBEDDING_MODEL


def test_a_key_limited_to_other_models_gets_a_403(relay: Server) -> None:
    created = httpx2.post(
        f"{relay.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "chat only", "models": ["relay-chat"]},
    ).json()
    response = post(relay, {"model": "local-embeddings", "input": "x"}, key=created["key"])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
