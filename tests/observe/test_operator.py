"""What an operator sees of the requests: the request log, the cost of each in the ledger and
its reports, the metrics, money budgets, CORS. One server relays to a scripted upstream, with
prices set in its config, as an operator would set them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2
import openai
import orjson
import pytest

from tests.conftest import (
    API_KEY,
    Server,
    admin_request,
    configured_server,
    create_key,
    keyed_client,
)
from tests.ledger import ledger_row
from tests.net import free_port
from tests.upstream import Upstream, relay_models

ADMIN_KEY = "sk-admin-operator-" + "o" * 30
METRICS_TOKEN = "metrics-token-" + "t" * 20
HELLO = [{"role": "user", "content": "hi"}]
ORIGIN = "http://app.example"
#: relay-answer: 9 prompt and 5 completion tokens at $2 and $8 a million: 58 micro-dollars
ANSWER_NANOS = 9 * 2000 + 5 * 8000
#: relay-cached: 200 + 800 cached prompt tokens and 10 completion tokens at $2, $0.50, $8
CACHED_NANOS = 200 * 2000 + 800 * 500 + 10 * 8000


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def relay(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Server]:
    lines = [
        *relay_models(upstream, ["answer", "cached", "no-usage"]),
        "  - name: claude-cached",
        "    provider: anthropic",
        f"    base_url: {upstream.base_url.removesuffix('/v1')}",
        "    api_key: sk-ant-test",
        "    model: claude-cached",
        '    price: {input: "3.00", cached_input: "0.30", cache_write: "3.75", output: "15.00"}',
        "prices:",
        '  answer: {input: "2.00", output: "8.00"}',
        "  relay-cached:",  # by its public name
        '    input: "2.00"',
        '    cached_input: "0.50"',
        '    output: "8.00"',
        "log: {format: json}",
        f"metrics: {{token: {METRICS_TOKEN}, port: {metrics_port}, per_key: true}}",
        f"cors: {{origins: ['{ORIGIN}']}}",
    ]
    data = tmp_path_factory.mktemp("operator")
    with configured_server(data, lines, {"LLMRELAY_ADMIN_KEY": ADMIN_KEY}) as server:
        yield server


def admin(relay: Server, method: str, path: str, **kw: Any) -> httpx2.Response:
    return admin_request(relay, method, path, ADMIN_KEY, **kw)


def new_key(relay: Server, **settings: Any) -> dict[str, Any]:
    return create_key(relay, ADMIN_KEY, **{"name": "operator-test", **settings})


def log_lines(relay: Server) -> list[dict[str, Any]]:
    """The request log's JSON lines (the rest of the log is uvicorn's and llmrelay's text)."""
    lines = relay.log.read_text().splitlines()
    return [orjson.loads(line) for line in lines if line.startswith("{")]


def log_line(relay: Server, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in log_lines(relay):
            if line["request_id"] == request_id:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line for {request_id}")


def test_every_request_has_one_log_line_that_tells_who_what_and_how_it_ended(
    relay: Server,
) -> None:
    key = new_key(relay)
    raw = keyed_client(relay, key["key"]).chat.completions.with_raw_response.create(
        model="relay-answer", messages=HELLO
    )
    line = log_line(relay, raw.headers["x-request-id"])
    assert line["key_id"] == key["id"] and line["key_name"] == "operator-test"
    assert (line["endpoint"], line["model"], line["status"]) == ("chat", "relay-answer", 200)
    assert line["model_served"] == "upstream-model-2025-01-01"
    assert line["deployment"] == "relay-answer#0 (openai)"
    assert (line["prompt_tokens"], line["completion_tokens"]) == (9, 5)
    assert Decimal(line["cost_usd"]) * 10**9 == ANSWER_NANOS
    assert line["latency_ms"] > 0 and line["error_code"] is None

    refused = httpx2.post(
        f"{relay.base_url}/chat/completions",
        json={"model": "relay-answer", "messages": HELLO},
        headers={"authorization": "Bearer sk-not-a-key"},
    )
    line = log_line(relay, refused.headers["x-request-id"])
    assert (line["status"], line["error_code"], line["key_id"]) == (401, "invalid_api_key", None)

    limited = new_key(relay, models=["relay-cached"])
    denied = httpx2.post(
        f"{relay.base_url}/chat/completions",
        json={"model": "relay-answer", "messages": HELLO},
        headers={"authorization": f"Bearer {limited['key']}"},
    )
    line = log_line(relay, denied.headers["x-request-id"])
    assert (line["status"], line["key_id"]) == (403, limited["id"])
    unknown = httpx2.post(
        f"{relay.base_url}/chat/completions",
        json={"model": "no-such-model", "messages": HELLO},
        headers={"authorization": f"Bearer {key['key']}"},
    )
    line = log_line(relay, unknown.headers["x-request-id"])
    assert (line["status"], line["error_code"], line["key_id"]) == (
        404,
        "model_not_found",
        key["id"],
    )

    text = relay.log.read_text()
    assert key["key"] not in text and limited["key"] not in text  # never the key
    assert "GET /health" not in text  # uvicorn's access log stays off


def test_cached_prompt_tokens_are_priced_at_their_own_rate_also_in_streams(
    relay: Server,
) -> None:
    client = keyed_client(relay, API_KEY)
    whole = client.chat.completions.with_raw_response.create(model="relay-cached", messages=HELLO)
    with client.chat.completions.with_streaming_response.create(
        model="relay-cached", messages=HELLO, stream=True
    ) as streamed:
        for _ in streamed.iter_lines():
            pass
    for response in (whole, streamed):
        row = ledger_row(relay, response.headers["x-request-id"])
        assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (
            1000,
            800,
            10,
        )
        assert row["cost_nanousd"] == CACHED_NANOS

    # Anthropic's: 100 input tokens at $3, 800 read from the cache at $0.30, 200 written to it
    # at $3.75, 10 output at $15 a million
    claude = client.chat.completions.with_raw_response.create(model="claude-cached", messages=HELLO)
    row = ledger_row(relay, claude.headers["x-request-id"])
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (
        1100,
        800,
        200,
    )
    assert row["cost_nanousd"] == 100 * 3000 + 800 * 300 + 200 * 3750 + 10 * 15000


def test_a_model_without_a_price_is_served_recorded_unpriced_and_warned_about(
    relay: Server,
) -> None:
    assert re.search(r"WARNING .*relay-no-usage#0 \(openai\) has no price", relay.log.read_text())
    raw = keyed_client(relay, API_KEY).chat.completions.with_raw_response.create(
        model="relay-no-usage", messages=HELLO
    )
    request_id = raw.headers["x-request-id"]
    row = ledger_row(relay, request_id)
    assert row["prompt_tokens"] > 0 and row["cost_nanousd"] is None  # never a silent $0
    assert log_line(relay, request_id)["cost_usd"] is None
    report = admin(relay, "GET", "/usage", params={"group_by": "model"}).json()
    by_model = {row["model"]: row for row in report["rows"]}
    assert by_model["relay-no-usage"]["unpriced_requests"] >= 1
    assert by_model["relay-answer"]["unpriced_requests"] == 0


def test_usage_reports_give_cost_by_day_key_and_model_and_as_json_on_the_command_line(
    relay: Server,
) -> None:
    key = new_key(relay)
    client = keyed_client(relay, key["key"])
    for _ in range(3):
        client.chat.completions.create(model="relay-answer", messages=HELLO)
    client.chat.completions.create(model="relay-cached", messages=HELLO)
    spent = 3 * ANSWER_NANOS + CACHED_NANOS

    by_key = admin(relay, "GET", "/usage", params={"group_by": "key", "key_id": key["id"]}).json()
    assert by_key["rows"][0]["key_id"] == key["id"]
    assert by_key["totals"]["cost_nanousd"] == spent
    assert Decimal(by_key["totals"]["cost_usd"]) == Decimal(spent) / 10**9
    bad = admin(relay, "GET", "/usage", params={"group_by": "week"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"

    env = {**os.environ, "LLMRELAY_DATA_DIR": str(relay.log.parent)}
    command = [sys.executable, "-m", "llmrelay"]
    config = ["--config", str(relay.log.parent / "llmrelay.yaml")]
    printed = subprocess.run(
        [*command, "usage", "--by", "model", "--key", key["id"], "--json", *config],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    report = orjson.loads(printed)
    assert {row["model"]: row["requests"] for row in report["rows"]} == {
        "relay-answer": 3,
        "relay-cached": 1,
    }
    assert report["totals"]["cost_nanousd"] == spent
    table = subprocess.run(
        [*command, "usage", "--by", "key", "--key", key["id"], *config],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert re.search(rf"^{key['id']}\s+4\s+0\s+.*\s{Decimal(spent) / 10**9:.9f}\s", table, re.M)
    keys = subprocess.run(
        [*command, "keys", "list", "--json", *config], env=env, capture_output=True, check=True
    ).stdout
    assert key["id"] in {k["id"] for k in orjson.loads(keys)}

    requests = admin(relay, "GET", "/requests", params={"key_id": key["id"], "limit": 2}).json()
    assert [r["model_requested"] for r in requests["data"]] == ["relay-cached", "relay-answer"]
    assert requests["data"][0]["cost_usd"] == f"{CACHED_NANOS / 10**9:.9f}"
    configs = admin(relay, "GET", "/requests", params={"key_id": "config"}).json()["data"]
    assert configs and all(r["key_id"] == "config" for r in configs)  # the cached test's
    huge = admin(relay, "GET", "/requests", params={"before": "9" * 40, "limit": "9" * 40})
    assert huge.status_code == 200  # the newest rows, as if no such bound were given
    for bad in ({"limit": "lots"}, {"before": "-1"}, {"colour": "red"}):
        refused = admin(relay, "GET", "/requests", params=bad)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == next(iter(bad))


def metrics(relay: Server) -> str:
    response = httpx2.get(
        f"{relay.root}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_requests_tokens_and_cost_and_are_only_for_the_metrics_token(
    relay: Server, metrics_port: int
) -> None:
    for key in (None, API_KEY, ADMIN_KEY):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        refused = httpx2.get(f"{relay.root}/metrics", headers=headers)
        assert refused.status_code == 401, key

    key = new_key(relay)
    served = 'llmrelay_requests_total{deployment="relay-answer#0 (openai)",endpoint="chat",'
    served += 'model="relay-answer",status="200"}'
    cost = 'llmrelay_cost_usd_total{model="relay-answer"}'
    tokens = 'llmrelay_tokens_total{kind="prompt",model="relay-answer"}'
    by_key = f'llmrelay_key_cost_usd_total{{key_id="{key["id"]}",model="relay-answer"}}'
    before = metrics(relay)
    client = keyed_client(relay, key["key"])
    for _ in range(4):
        client.chat.completions.create(model="relay-answer", messages=HELLO)
    after = metrics(relay)
    assert value(after, served) - value(before, served) == 4
    assert value(after, tokens) - value(before, tokens) == 4 * 9
    assert value(after, cost) - value(before, cost) == pytest.approx(4 * ANSWER_NANOS / 1e9)
    assert value(after, by_key) == pytest.approx(4 * ANSWER_NANOS / 1e9)
    assert (
        value(
            after, 'llmrelay_request_duration_seconds_count{endpoint="chat",model="relay-answer"}'
        )
        >= 4
    )
    assert value(after, "llmrelay_requests_in_flight") == 0
    assert (
        'llmrelay_deployment_resting{deployment="relay-answer#0 (openai)",model="relay-answer"} 0.0'
        in after
    )
    assert "llmrelay_ledger_unwritten_rows" in after

    own_port = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics")  # no token on its own port
    assert own_port.status_code == 200 and served in own_port.text


def test_a_money_budget_refuses_once_spent_and_never_lets_the_cost_pass_it(
    relay: Server,
) -> None:
    budget = Decimal("0.002")  # 2,000 micro-dollars: some 30 requests at 58
    key = new_key(relay, budget_usd=str(budget), budget_period="day")
    assert key["budget_usd"] == "0.002" and key["budget_period"] == "day"
    client = keyed_client(relay, key["key"])
    served = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(100):
            client.chat.completions.create(model="relay-answer", messages=HELLO, max_tokens=5)
            served += 1
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "insufficient_quota"
    assert "$0.002000000" in error["message"]
    assert served * ANSWER_NANOS <= budget * 10**9
    # the reservation (the prompt at the dearest rate and 5 tokens of answer) is what is left
    assert served >= 20

    unpriced = httpx2.post(
        f"{relay.base_url}/chat/completions",
        json={"model": "relay-no-usage", "messages": HELLO},
        headers={"authorization": f"Bearer {key['key']}"},
    )
    assert unpriced.status_code == 403 and unpriced.json()["error"]["code"] == "model_not_priced"
    bad = admin(relay, "POST", "/keys", json={"name": "x", "budget_usd": "-1"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "budget_usd"


def test_cors_answers_the_configured_origin_and_no_other(relay: Server, server: Server) -> None:
    asked = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    preflight = httpx2.options(f"{relay.base_url}/chat/completions", headers=asked)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    other = httpx2.options(
        f"{relay.base_url}/chat/completions", headers={**asked, "origin": "http://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    answer = httpx2.post(
        f"{relay.base_url}/chat/completions",
        json={"model": "relay-answer", "messages": HELLO},
        headers={"authorization": f"Bearer {API_KEY}", "origin": ORIGIN},
    )
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"]
    # off by default: the server with no config sends no CORS header at all
    default = httpx2.options(f"{server.base_url}/chat/completions", headers=asked)
    assert "access-control-allow-origin" not in default.headers
