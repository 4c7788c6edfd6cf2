"""Retries onto another deployment, fallbacks to other models, cooldown and recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import Server, configured_server, post_chat
from tests.upstream import STREAM_PIECES, Upstream

HELLO = [{"role": "user", "content": "hi"}]
COOLDOWN_SECONDS = 1.0


def _deployment(name: str, base_url: str, upstream_model: str, weight: float = 1) -> list[str]:
    return [
        f"  - name: {name}",
        "    provider: openai",
        f"    base_url: {base_url}",
        f"    model: {upstream_model}",
        f"    weight: {weight}",
        "    timeouts: {connect: 2, first_byte: 2, total: 5}",
    ]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = upstream.base_url
    # the failing deployment weighs 1000 to 1, so it is nearly always tried first
    lines = ["models:"]
    lines += _deployment("pair", url, "broken", 1000) + _deployment("pair", url, "answer")
    lines += _deployment("limited-pair", url, "limited", 1000)
    lines += _deployment("limited-pair", url, "answer")
    lines += _deployment("strict-pair", url, "bad-param", 1000)
    lines += _deployment("strict-pair", url, "answer")
    lines += _deployment("alone", url, "broken") + _deployment("backup", url, "answer")
    lines += _deployment("resting", url, "flaky", 1000) + _deployment("resting", url, "answer")
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
