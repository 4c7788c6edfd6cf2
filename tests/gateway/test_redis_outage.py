"""Limits and budgets on a Redis that goes away, comes back, or stalls: a Redis of the test's own,
stopped, started and paused by the test. No 500, no stalled request, one warning an outage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import API_KEY, Server, configured_server
from tests.services import OwnRedis
from tests.upstream import Upstream, relay_models

ADMIN_KEY = "sk-admin-outage-" + "o" * 30
HELLO = {"model": "relay-answer", "messages": [{"role": "user", "content": "hi"}]}
REDIS_TIMEOUT = 0.05


@pytest.fixture
def redis() -> Iterator[OwnRedis]:
    with OwnRedis() as own:
        yield own


def serve(upstream: Upstream, data: Path, redis: OwnRedis, failure: str) -> Any:
    lines = [
        f"redis_url: {redis.url}",
        f"limits: {{redis_timeout: {REDIS_TIMEOUT}, redis_failure: {failure}}}",
        *relay_models(upstream, ["answer"]),
    ]
    return configured_server(data, lines, {"LLMRELAY_ADMIN_KEY": ADMIN_KEY})


def new_key(server: Server, **limits: int) -> dict[str, Any]:
    response = httpx2.post(
        f"{server.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "outage", **limits},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def chat(server: Server, key: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx2.post(
        f"{server.base_url}/chat/completions",
        json=HELLO,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )
    return response.status_code, time.monotonic() - started


def chats(server: Server, key: str, count: int) -> list[tuple[int, float]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: chat(server, key), range(count)))


def requests_counted_on_redis(redis: OwnRedis, key_id: str) -> int:
    client = redis.client()
    return sum(int(client.get(k) or 0) for k in client.keys(f"*llmrelay/requests/{key_id}/*"))


def test_while_redis_is_down_limits_count_in_the_process_and_reach_redis_after(
    upstream: Upstream, tmp_path: Path, redis: OwnRedis
) -> None:
    with serve(upstream, tmp_path, redis, "local") as server:
        key = new_key(server, rpm=10_000, tpm=10**9, budget_tokens=10**9)
        assert {status for status, _ in chats(server, key["key"], 10)} == {200}
        redis.stop()
        down = chats(server, key["key"], 60)
        assert {status for status, _ in down} == {200}, "no 500 while Redis is away"
        assert max(seconds for _, seconds in down) < 1, "no request waits on Redis"
        limited = new_key(server, rpm=3)  # and a key's limit still holds meanwhile
        assert [chat(server, limited["key"])[0] for _ in range(4)] == [200, 200, 200, 429]
        redis.start()  # empty: what it held before is gone
        deadline = time.monotonic() + 10
        while "Redis is back" not in server.log.read_text():
            assert time.monotonic() < deadline, "the server did not find Redis again"
            time.sleep(0.2)
        assert requests_counted_on_redis(redis, key["id"]) >= 60, "counted while away"
        assert chats(server, key["key"], 5)[-1][0] == 200
        assert requests_counted_on_redis(redis, key["id"]) >= 65
        log = server.log.read_text()
    assert log.count("Redis is unreachable or slow") == 1, "one warning for the outage"
    assert "Traceback" not in log


def test_a_stalled_redis_holds_no_request(
    upstream: Upstream, tmp_path: Path, redis: OwnRedis
) -> None:
    with serve(upstream, tmp_path, redis, "local") as server:
        key = new_key(server, rpm=10_000)
        assert chat(server, key["key"])[0] == 200
        redis.pause(5)
        stalled = chats(server, key["key"], 20)
        log = server.log.read_text()
    assert {status for status, _ in stalled} == {200}
    assert max(seconds for _, seconds in stalled) < 1, stalled
    assert log.count("Redis is unreachable or slow (no answer in time)") == 1


def test_closed_refuses_limited_keys_while_redis_is_away(
    upstream: Upstream, tmp_path: Path, redis: OwnRedis
) -> None:
    with serve(upstream, tmp_path, redis, "closed") as server:
        key = new_key(server, rpm=10_000)
        redis.stop()
        refused = httpx2.post(
            f"{server.base_url}/chat/completions",
            json=HELLO,
            headers={"authorization": f"Bearer {key['key']}"},
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "limits_unavailable"
        assert chat(server, API_KEY)[0] == 200, "a key without limits needs no Redis"
        redis.start()
        deadline = time.monotonic() + 10
        while chat(server, key["key"])[0] != 200:
            assert time.monotonic() < deadline, "still refused after Redis came back"
            time.sleep(0.3)
        assert "Traceback" not in server.log.read_text()
