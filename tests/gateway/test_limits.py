"""Rate limits and budgets as clients meet them: 429s with OpenAI's bodies and headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import orjson
import pytest

from tests.conftest import API_KEY, Server, configured_server, start_server, stop_server
from tests.spec import ValidatingTransport, validate
from tests.upstream import SLOW_REST_PAUSE, Upstream, relay_models

ADMIN_KEY = "sk-admin-limits-" + "l" * 30
HELLO = [{"role": "user", "content": "hi"}]
UPSTREAM_USAGE = 14  # what the scripted upstream reports for each answer


def _relay_config(upstream: Upstream) -> list[str]:
    return relay_models(upstream, ["answer", "slow", "greedy"])


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("limits")
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}
    with configured_server(data, _relay_config(upstream), env) as server:
        yield server


def new_key(server: Server, **settings: Any) -> dict[str, Any]:
    response = httpx2.post(
        f"{server.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "limited", **settings},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def time_left_in_the_window(seconds: float = 10) -> None:
    """Waits, if need be, for a clock minute (a window) with ``seconds`` left in it: counts
    made before a minute turns are gone after it."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.1)


@pytest.fixture
def one_window() -> None:
    time_left_in_the_window()


@pytest.fixture
def sdk_for(relay: Server) -> Iterator[Any]:
    made: list[tuple[openai.OpenAI, ValidatingTransport]] = []

    def make(key: str, server: Server = relay) -> openai.OpenAI:
        transport = ValidatingTransport()
        http = httpx2.Client(transport=transport, timeout=30)
        client = openai.OpenAI(
            base_url=server.base_url, api_key=key, max_retries=0, http_client=http
        )
        made.append((client, transport))
        return client

    yield make
    for client, transport in made:
        client.close()
        assert not transport.failures, "\n".join(transport.failures)


def test_rpm_is_hit_exactly_at_its_count(relay: Server, sdk_for: Any, one_window: None) -> None:
    sdk = sdk_for(new_key(relay, rpm=5)["key"])
    for remaining in (4, 3, 2, 1, 0):
        raw = sdk.chat.completions.with_raw_response.create(model="relay-answer", messages=HELLO)
        assert raw.headers["x-ratelimit-limit-requests"] == "5"
        assert raw.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="relay-answer", messages=HELLO)
    error = caught.value
    validate("ErrorResponse", error.response.json())
    assert (error.code, error.type) == ("rate_limit_exceeded", "requests")
    assert "try again in" in error.message
    assert 0 < int(error.response.headers["retry-after"]) <= 60
    assert 0 < int(error.response.headers["retry-after-ms"]) <= 60000
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_tpm_admits_on_the_estimate_and_settles_on_the_real_count(
    relay: Server, sdk_for: Any, one_window: None
) -> None:
    sdk = sdk_for(new_key(relay, tpm=1000)["key"])
    with pytest.raises(openai.RateLimitError) as caught:  # could never fit in a minute
        sdk.chat.completions.create(model="relay-answer", messages=HELLO, max_tokens=1000)
    assert caught.value.type == "tokens" and "too large" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    first = sdk.chat.completions.with_raw_response.create(
        model="relay-answer", messages=HELLO, max_tokens=900
    )
    charged = 1000 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert charged >= 900, "admitted on its prompt plus its maximum"
    # admitting this one again needs the first settled at its real 14 tokens
    second = sdk.chat.completions.with_raw_response.create(
        model="relay-answer", messages=HELLO, max_tokens=900
    )
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000 - UPSTREAM_USAGE - charged
    # while one holds its estimate, another that would not fit beside it is refused
    with ThreadPoolExecutor(1) as pool:
        holding = pool.submit(
            sdk.chat.completions.create, model="relay-slow", messages=HELLO, max_tokens=600
        )
        time.sleep(SLOW_REST_PAUSE / 2)
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.chat.completions.create(model="relay-answer", messages=HELLO, max_tokens=600)
        assert holding.result().usage is not None
    assert caught.value.type == "tokens" and "retry-after" in caught.value.response.headers


def test_streams_carry_the_rate_limit_headers(relay: Server, sdk_for: Any) -> None:
    sdk = sdk_for(new_key(relay, rpm=100, tpm=100000)["key"])
    with sdk.chat.completions.with_streaming_response.create(
        model="relay-answer", messages=HELLO, stream=True
    ) as response:
        list(response.parse())
    for kind in ("requests", "tokens"):
        for field in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{field}-{kind}" in response.headers


def test_responses_that_charge_nothing_tell_where_the_limits_stand(
    relay: Server, sdk_for: Any, one_window: None
) -> None:
    sdk = sdk_for(new_key(relay, rpm=10, tpm=100000, models=["relay-answer"])["key"])
    sdk.chat.completions.create(model="relay-answer", messages=HELLO, max_tokens=100)
    listed = sdk.models.with_raw_response.list()
    one = sdk.models.with_raw_response.retrieve("relay-answer")
    with pytest.raises(openai.PermissionDeniedError) as denied:  # not among its models
        sdk.chat.completions.create(model="relay-slow", messages=HELLO)
    with pytest.raises(openai.BadRequestError) as invalid:
        sdk.chat.completions.create(model="relay-answer", messages=HELLO, temperature=5)
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.models.retrieve("relay-slow")
    for headers in (
        listed.headers,
        one.headers,
        denied.value.response.headers,
        invalid.value.response.headers,
        unknown.value.response.headers,
    ):
        assert headers["x-ratelimit-limit-requests"] == "10"
        assert headers["x-ratelimit-remaining-requests"] == "9", "only the answer was charged"
        assert headers["x-ratelimit-limit-tokens"] == "100000"
        assert 0 < 100000 - int(headers["x-ratelimit-remaining-tokens"]) <= 200  # settled or not
        assert headers["x-ratelimit-reset-requests"].endswith("s")


def test_keys_without_limits_report_them_unlimited(
    relay: Server, sdk_for: Any, one_window: None
) -> None:
    unlimited = str(2**31 - 1)
    keys = [
        (API_KEY, None),  # a key from the config
        (new_key(relay, budget_tokens=10**6)["key"], None),
        (new_key(relay, rpm=7)["key"], 7),
    ]
    for key, rpm in keys:
        sdk = sdk_for(key)
        answer = sdk.chat.completions.with_raw_response.create(model="relay-answer", messages=HELLO)
        with sdk.chat.completions.with_streaming_response.create(
            model="relay-answer", messages=HELLO, stream=True
        ) as streamed:
            list(streamed.parse())
        with pytest.raises(openai.BadRequestError) as invalid:
            sdk.chat.completions.create(model="relay-answer", messages=HELLO, temperature=5)
        listed = sdk.models.with_raw_response.list()
        for headers in (answer.headers, streamed.headers, invalid.value.response.headers):
            assert headers["x-ratelimit-limit-tokens"] == unlimited
            assert headers["x-ratelimit-remaining-tokens"] == unlimited
            assert headers["x-ratelimit-reset-tokens"] == "0s"
        for headers in (answer.headers, streamed.headers, listed.headers):
            if rpm is None:
                assert headers["x-ratelimit-limit-requests"] == unlimited
                assert headers["x-ratelimit-reset-requests"] == "0s"
            else:  # its requests are limited, its tokens are not
                assert headers["x-ratelimit-limit-requests"] == str(rpm)
                assert int(headers["x-ratelimit-remaining-requests"]) < rpm


def test_parallel_requests_cannot_overspend_a_budget(relay: Server) -> None:
    body = orjson.dumps({"model": "relay-greedy", "messages": HELLO, "max_tokens": 50})
    reservation = len(body) + 50 + 64  # its size, its maximum output, the chat template
    budget = 10 * reservation
    created = new_key(relay, budget_tokens=budget, budget_period="day")
    headers = {"authorization": f"Bearer {created['key']}", "content-type": "application/json"}

    def send(_: int) -> httpx2.Response:
        url = f"{relay.base_url}/chat/completions"
        return httpx2.post(url, content=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(50) as pool:  # 50 x 150 tokens would be 50 x 150 = 7,500
        responses = list(pool.map(send, range(50)))
    answered = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(answered) >= 10 and refused
    for response in refused:
        assert response.status_code == 429
        validate("ErrorResponse", response.json())
        assert response.json()["error"]["code"] == "insufficient_quota"
        assert response.headers["x-should-retry"] == "false"
    usage = httpx2.get(
        f"{relay.root}/admin/usage",
        params={"key_id": created["id"]},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ).json()
    spent = usage["totals"]["total_tokens"]
    print(f"budget {budget}: {len(answered)} answered, {spent} tokens spent")
    assert spent == 150 * len(answered)
    assert spent <= budget + reservation


def test_two_instances_on_one_redis_share_a_limit(
    upstream: Upstream, tmp_path: Path, postgres_url: str, redis_url: str, sdk_for: Any
) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text("\n".join(_relay_config(upstream)) + "\n")
    env = {
        "LLMRELAY_ADMIN_KEY": ADMIN_KEY,
        "LLMRELAY_DATABASE_URL": postgres_url,
        "LLMRELAY_REDIS_URL": redis_url,
    }
    args = ("--config", str(config))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = start_server(tmp_path / "one", env=env, args=args)
    second = start_server(tmp_path / "two", env=env, args=args)
    try:
        time_left_in_the_window()
        key = new_key(first, rpm=4)["key"]
        clients = [sdk_for(key, first), sdk_for(key, second)]
        for sdk in clients * 2:  # wait for the second instance to know the key
            _answered_eventually(sdk)
        for sdk in clients:
            with pytest.raises(openai.RateLimitError):
                sdk.chat.completions.create(model="relay-answer", messages=HELLO)
    finally:
        stop_server(first)
        stop_server(second)


def _answered_eventually(sdk: openai.OpenAI) -> None:
    for _ in range(40):
        try:
            sdk.chat.completions.create(model="relay-answer", messages=HELLO)
            return
        except openai.AuthenticationError:
            time.sleep(0.1)
    raise AssertionError("the key never reached the instance")
