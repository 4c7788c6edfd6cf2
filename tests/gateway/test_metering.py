"""The usage ledger, as an operator reads it: one row per request, however the request ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.conftest import Server, configured_server, start_server, stop_server
from tests.ledger import first_row_where, ledger_row
from tests.spec import ValidatingTransport
from tests.upstream import ANSWERING_MODEL, Upstream, relay_models

ADMIN_KEY = "sk-admin-metering-" + "m" * 30
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def relay(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("metering")
    lines = relay_models(upstream, ["answer", "no-usage", "tools-stream", "limited", "hang", "odd"])
    with configured_server(data, lines, {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def key(relay: Server) -> dict[str, Any]:
    response = httpx2.post(
        f"{relay.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "metered"},
    )
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def sdk(relay: Server, key: dict[str, Any]) -> Iterator[openai.OpenAI]:
    transport = ValidatingTransport()
    http = httpx2.Client(transport=transport, timeout=30)
    client = openai.OpenAI(
        base_url=relay.base_url, api_key=key["key"], max_retries=0, http_client=http
    )
    yield client
    client.close()
    assert not transport.failures, "\n".join(transport.failures)


def test_an_answer_is_billed_as_reported(relay: Server, sdk: openai.OpenAI, key: dict) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="relay-answer", messages=HELLO)
    row = ledger_row(relay, raw.headers["x-request-id"])
    assert row["key_id"] == key["id"]
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        9,
        5,
        "reported",
    )
    assert (row["model_requested"], row["model_served"]) == ("relay-answer", ANSWERING_MODEL)
    assert row["backend"] == "relay-answer#0 (openai)"
    assert (row["status"], row["stream"], row["disconnected"]) == (200, 0, 0)
    assert row["latency_ms"] > 0 and row["ttft_ms"] is None


def test_a_stream_is_billed_from_its_usage_chunk(relay: Server, sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.with_streaming_response.create(
        model="relay-answer", messages=HELLO, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        list(response.parse())
    row = ledger_row(relay, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_source"]) == (
        9,
        5,
        "reported",
    )
    assert row["stream"] == 1 and row["disconnected"] == 0
    assert 0 < row["ttft_ms"] <= row["latency_ms"]


def test_an_upstream_without_usage_is_counted(relay: Server, sdk: openai.OpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="relay-no-usage", messages=HELLO)
    row = ledger_row(relay, raw.headers["x-request-id"])
    assert row["usage_source"] == "counted" and row["completion_tokens"] > 0


@pytest.mark.parametrize("model", ["relay-answer", "relay-tools-stream"])
def test_a_client_leaving_mid_stream_is_billed_for_what_was_sent(
    relay: Server, sdk: openai.OpenAI, model: str
) -> None:
    with sdk.chat.completions.with_streaming_response.create(
        model=model, messages=HELLO, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = response.parse()
        next(iter(chunks)), next(iter(chunks))
    row = ledger_row(relay, request_id)
    assert row["disconnected"] == 1
    assert row["usage_source"] == "counted", "the usage chunk never came"
    assert row["completion_tokens"] > 0, "what was forwarded is billed"
    if model == "relay-tools-stream":
        assert row["completion_tokens"] >= 2, "the call's name and its first arguments"


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_leaving_before_the_upstream_answers_ends_the_request(
    relay: Server, key: dict, stream: bool
) -> None:
    """Not when the upstream answers (this one would in 10 s): a stream is cancelled while it
    waits for its first chunk, as an answer is."""
    body = {"model": "relay-hang", "messages": HELLO, "stream": stream}
    headers = {"authorization": f"Bearer {key['key']}"}
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(f"{relay.base_url}/chat/completions", json=body, headers=headers, timeout=0.5)
    condition = "model_requested = 'relay-hang' AND stream = ?"
    row = first_row_where(relay, condition, int(stream), timeout=4)
    assert row["disconnected"] == 1 and row["latency_ms"] < 4000
    assert row["backend"] == "relay-hang#0 (openai)", "the deployment it was waiting for"


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_with_odd_model_and_usage_is_relayed_and_recorded(
    relay: Server, key: dict, stream: bool
) -> None:
    """An upstream's model that is no string and usage counts that are no numbers reach the
    client as sent; the row records no model served and counts only what is a number."""
    response = httpx2.post(
        f"{relay.base_url}/chat/completions",
        headers={"authorization": f"Bearer {key['key']}"},
        json={"model": "relay-odd", "messages": HELLO, "stream": stream},
    )
    assert response.status_code == 200, response.text
    assert ('"model":123' if stream else "Hello, world!") in response.text
    row = ledger_row(relay, response.headers["x-request-id"])
    assert (row["status"], row["model_served"]) == (200, None)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (0, 0)


def test_an_upstream_error_is_recorded(relay: Server, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="relay-limited", messages=HELLO)
    row = ledger_row(relay, caught.value.response.headers["x-request-id"])
    assert (row["status"], row["error_code"], row["completion_tokens"]) == (
        429,
        "rate_limit_exceeded",
        0,
    )


def test_usage_report_by_key_and_model(relay: Server, sdk: openai.OpenAI, key: dict) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="relay-answer", messages=HELLO)
    ledger_row(relay, raw.headers["x-request-id"])

    def report(**filters: str) -> dict[str, Any]:
        response = httpx2.get(
            f"{relay.root}/admin/usage",
            params=filters,
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    everything = report()
    mine = report(key_id=key["id"], model="relay-answer")
    assert 0 < mine["totals"]["requests"] <= everything["totals"]["requests"]
    assert mine["totals"]["total_tokens"] == sum(d["total_tokens"] for d in mine["rows"])
    assert report(since="2099-01-01")["totals"]["requests"] == 0
    bad = httpx2.get(
        f"{relay.root}/admin/usage?since=soon", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"


def test_a_normal_stop_loses_no_row_and_a_restart_keeps_them(tmp_path: Path) -> None:
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY, "LLMRELAY_API_KEY": ""}
    server = start_server(tmp_path, env=env)
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    created = httpx2.post(f"{server.root}/admin/keys", headers=admin, json={"name": "n"}).json()
    sent = httpx2.post(
        f"{server.base_url}/chat/completions",
        headers={"authorization": f"Bearer {created['key']}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 3},
        timeout=60,
    )
    assert sent.status_code == 200, sent.text
    stop_server(server)  # at once: the row may not have been written yet
    row = ledger_row(server, sent.headers["x-request-id"], timeout=0)
    assert row["completion_tokens"] == sent.json()["usage"]["completion_tokens"]

    again = start_server(tmp_path, env=env)
    try:
        key_usage = httpx2.get(
            f"{again.root}/admin/usage", params={"key_id": created["id"]}, headers=admin
        ).json()
        assert key_usage["totals"]["requests"] == 1
        models = httpx2.get(
            f"{again.base_url}/models", headers={"authorization": f"Bearer {created['key']}"}
        )
        assert models.status_code == 200, "the key survived the restart"
    finally:
        stop_server(again)
