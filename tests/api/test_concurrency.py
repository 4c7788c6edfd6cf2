"""Concurrent requests: batched together, never blocking the server, stopped on disconnect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from llmrelay.config import BUILTIN_MODEL_NAME
from tests.conftest import API_KEY, Server
from tests.ledger import first_row_where, last_row_id
from tests.spec import AsyncValidatingTransport

MODEL = "gpt-4o-mini"
STORY = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
NO_END = {"2": -100}  # <|im_end|>: forbidding it keeps a generation going to its limit


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    transport = AsyncValidatingTransport()
    http = httpx2.AsyncClient(transport=transport, timeout=120)
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key=API_KEY, max_retries=0, http_client=http
    ) as client:
        yield client
    assert not transport.failures, "\n".join(transport.failures)
    assert transport.checked


async def engine_load(server: Server) -> dict[str, int]:
    async with httpx2.AsyncClient() as http:
        health = (await http.get(f"{server.root}/health", timeout=10)).json()
    return health["models"]["smollm2-135m-instruct"][0]["sequences"]


async def test_simultaneous_requests_are_decoded_together(aclient: openai.AsyncOpenAI) -> None:
    events: list[tuple[str, int]] = []

    async def one(i: int) -> None:
        stream = await aclient.chat.completions.create(
            model=MODEL, messages=STORY, max_tokens=48, stream=True, logit_bias=NO_END, seed=i
        )
        first = True
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first:
                events.append(("first", i))
                first = False
            if chunk.choices and chunk.choices[0].finish_reason:
                events.append(("done", i))

    await asyncio.gather(*(one(i) for i in range(8)))
    kinds = [kind for kind, _ in events]
    # served one after another, the second would start only after the first finished
    assert kinds[:8] == ["first"] * 8, events


async def test_health_and_models_answer_while_generating(
    aclient: openai.AsyncOpenAI, server: Server
) -> None:
    async def generate() -> None:
        await aclient.chat.completions.create(
            model=MODEL, messages=STORY, max_tokens=200, logit_bias=NO_END
        )

    work = asyncio.gather(*(generate() for _ in range(4)))
    await asyncio.sleep(0.5)
    timings = []
    async with httpx2.AsyncClient() as http:
        for _ in range(10):
            started = time.perf_counter()
            health = await http.get(f"{server.root}/health", timeout=10)
            models = await http.get(
                f"{server.base_url}/models", headers={"authorization": f"Bearer {API_KEY}"}
            )
            timings.append(time.perf_counter() - started)
            assert health.status_code == models.status_code == 200
            await asyncio.sleep(0.05)
    assert not work.done(), "the control requests ran while the model was generating"
    assert (await engine_load(server))["running"] == 4
    await work
    print(f"health+models round trips while generating: max {max(timings) * 1000:.1f} ms")


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_leaves_stops_its_generation(server: Server, stream: bool) -> None:
    body = {
        "model": MODEL,
        "messages": STORY,
        "max_tokens": 1000,
        "logit_bias": NO_END,
        "stream": stream,
    }
    headers = {"authorization": f"Bearer {API_KEY}"}
    logged_before = server.log.stat().st_size
    last_row = last_row_id(server)
    read = 0
    async with httpx2.AsyncClient(timeout=60) as http:
        if stream:
            async with http.stream(
                "POST", f"{server.base_url}/chat/completions", json=body, headers=headers
            ) as response:
                async for line in response.aiter_lines():
                    read += line.startswith("data:")
                    if read > 5 and (await engine_load(server))["running"] == 1:
                        break
        else:
            request = asyncio.create_task(
                http.post(f"{server.base_url}/chat/completions", json=body, headers=headers)
            )
            while (await engine_load(server))["running"] != 1:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # some of the answer is made
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
    deadline = time.monotonic() + 10
    while (await engine_load(server))["running"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert (await engine_load(server))["running"] == 0
    with server.log.open() as log:
        log.seek(logged_before)
        assert "Traceback" not in log.read(), "a client that leaves is no error"
    # the row of the request that left (the one after the rows already written)
    row = first_row_where(server, "id > ? AND stream = ? AND disconnected = 1", last_row, stream)
    assert row["status"] == 200
    # billed for the prompt the model read and the tokens it made, as the engine counted them
    assert row["usage_source"] == "reported"
    assert row["prompt_tokens"] > 20 and row["completion_tokens"] > 0
    assert row["model_served"] == BUILTIN_MODEL_NAME
    assert row["backend"] == f"{BUILTIN_MODEL_NAME}#0 (local)"


async def test_seed_is_stable_whatever_runs_beside_it(aclient: openai.AsyncOpenAI) -> None:
    async def seeded() -> str:
        response = await aclient.chat.completions.create(
            model=MODEL, messages=STORY, max_tokens=40, seed=99, logit_bias=NO_END
        )
        return response.choices[0].message.content or ""

    alone = await seeded()
    others = [
        aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Say {i}"}], max_tokens=30
        )
        for i in range(3)
    ]
    results = await asyncio.gather(*others, seeded())
    assert results[-1] == alone
