"""Retries onto another deployment, fallbacks to other models, cooldown and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from tests.conftest import API_KEY, Server, configured_server, post_chat
from tests.upstream import STREAM_PIECES, Upstream

HELLO = [{"role": "user", "content": "hi"}]
COOLDOWN_SECONDS = 1.0
#: a weight that puts a deployment before one of weight 1 all but once in a million requests
#: (at 1000 to 1 it was once in a thousand: a test that sends several requests could fail by chance)
FIRST = 10**6


def _deployment(
    name: str, base_url: str, upstream_model: str, weight: float = 1, *extra: str
) -> list[str]:
    return [
        f"  - name: {name}",
        "    provider: openai",
        f"    base_url: {base_url}",
        f"    model: {upstream_model}",
        f"    weight: {weight}",
        "    timeouts: {connect: 2, first_byte: 2, total: 5}",
        *(f"    {line}" for line in extra),
    ]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = upstream.base_url
    # the failing deployment weighs FIRST to 1, so it is tried first
    lines = ["models:"]
    lines += _deployment("pair", url, "broken", FIRST) + _deployment("pair", url, "answer")
    lines += _deployment("limited-pair", url, "limited", FIRST)
    lines += _deployment("limited-pair", url, "answer")
    lines += _deployment("strict-pair", url, "bad-param", FIRST)
    lines += _deployment("strict-pair", url, "answer")
    lines += _deployment("alone", url, "broken") + _deployment(
        "backup", url, "answer", 1, "aliases: [spare]"
    )
    lines += _deployment("resting", url, "flaky", FIRST) + _deployment("resting", url, "answer")
    lines += _deployment("narrow", url, "answer", 1, "max_concurrency: 1")
    # the deployments of "spill" mark their requests (``user``) to tell which one answered
    lines += _deployment(
        "spill", url, "answer", FIRST, "max_concurrency: 1", "params: {set: {user: a}}"
    )
    lines += _deployment("spill", url, "answer", 1, "params: {set: {user: b}}")
    lines += ["fallbacks:", "  alone: [backup]"]
    lines += [f"cooldown: {{failures: 2, seconds: {COOLDOWN_SECONDS}}}"]
    with configured_server(tmp_path_factory.mktemp("router"), lines) as server:
        yield server


def _asked(upstream: Upstream, model: str) -> int:
    return sum(1 for r in upstream.requests if r["model"] == model)


@pytest.mark.parametrize("model", ["pair", "limited-pair"])
def test_a_failing_deployment_is_retried_on_the_other(
    sdk: openai.OpenAI, upstream: Upstream, model: str
) -> None:
    failing = "broken" if model == "pair" else "limited"
    before = _asked(upstream, failing)
    response = sdk.chat.completions.create(model=model, messages=HELLO)
    assert response.choices[0].message.content == "Hello, world!"
    chunks = list(sdk.chat.completions.create(model=model, messages=HELLO, stream=True))
    assert [c.choices[0].delta.content for c in chunks if c.choices][1:-1] == STREAM_PIECES
    assert _asked(upstream, failing) > before


def test_a_client_error_is_not_retried(sdk: openai.OpenAI, upstream: Upstream) -> None:
    answers_before = _asked(upstream, "answer")
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="strict-pair", messages=HELLO)
    assert _asked(upstream, "answer") == answers_before


def test_falls_back_to_another_model(sdk: openai.OpenAI, upstream: Upstream, relay: Server) -> None:
    response = sdk.chat.completions.create(model="alone", messages=HELLO)
    assert response.choices[0].message.content == "Hello, world!"
    assert "falling back to backup" in relay.log.read_text()


def test_cooldown_and_recovery(relay: Server, upstream: Upstream) -> None:
    upstream.flaky_down = True
    for _ in range(4):
        assert post_chat(relay, {"model": "resting", "messages": HELLO}).status_code == 200
    tried = _asked(upstream, "flaky")
    assert tried == 2, "after two failures in a row the deployment rests"
    time.sleep(COOLDOWN_SECONDS + 0.2)
    upstream.flaky_down = False
    assert post_chat(relay, {"model": "resting", "messages": HELLO}).status_code == 200
    assert _asked(upstream, "flaky") == tried + 1, "after its rest it is probed"
    assert "resting#0 (openai) is answering again" in relay.log.read_text()


def test_max_concurrency_queues_the_rest(sdk: openai.OpenAI, upstream: Upstream) -> None:
    upstream.most_in_flight = 0
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: _streamed_text(sdk, "narrow"), range(3)))
    assert answers == ["Hello, world!"] * 3
    assert upstream.most_in_flight == 1


def test_a_full_deployment_is_passed_over(sdk: openai.OpenAI, upstream: Upstream) -> None:
    with sdk.chat.completions.create(model="spill", messages=HELLO, stream=True) as held:
        next(iter(held))  # the preferred deployment is now full
        assert _streamed_text(sdk, "spill") == "Hello, world!"
        assert [r["user"] for r in upstream.requests[-2:]] == ["a", "b"]
    assert _streamed_text(sdk, "spill") == "Hello, world!"
    assert upstream.requests[-1]["user"] == "a", "its place was given back"


def test_a_client_leaving_gives_the_place_back(relay: Server, sdk: openai.OpenAI) -> None:
    for _ in range(3):
        with sdk.chat.completions.create(model="narrow", messages=HELLO, stream=True) as stream:
            next(iter(stream))
    quick = openai.OpenAI(base_url=relay.base_url, api_key=API_KEY, timeout=5, max_retries=0)
    assert _streamed_text(quick, "narrow") == "Hello, world!"


def test_health_shows_each_deployment(relay: Server) -> None:
    models = httpx2.get(f"{relay.root}/health").json()["models"]
    assert [d["deployment"] for d in models["spill"]] == ["spill#0 (openai)", "spill#1 (openai)"]
    assert models["spill"][0]["max_concurrency"] == 1
    assert {d["state"] for d in models["pair"]} <= {"ok", "resting"}
    assert set(models) == {"pair", "limited-pair", "strict-pair", "alone", "backup", "resting"} | {
        "narrow",
        "spill",
    }


def _streamed_text(client: openai.OpenAI, model: str) -> str:
    chunks = client.chat.completions.create(model=model, messages=HELLO, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
