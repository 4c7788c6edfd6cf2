"""Benchmark of the built-in engine: llmrelay's HTTP API against llama-cpp-python called directly.

One run, one model, one prompt. It prints ratios against the baseline measured in the same run
(these machines are shared and noisy; absolute figures mean little):

1. decode tokens/s of one stream: through llmrelay's HTTP API / llama-cpp-python in-process
   (aim >= 0.9);
2. aggregate tokens/s with 1, 4 and 8 concurrent streams, as a ratio to 1 stream (aim ~1.3x at 8
   on 2 cores);
3. time to first token of the first and of the last of 8 simultaneous requests, each prompt
   new to the engine (aim: last within 3x the first), and again with a prompt it has cached;
4. /health round trips while 8 streams generate (aim < 50 ms).

Run: .venv/bin/python bench/engine.py [--tokens 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

KEY = "sk-bench-" + "b" * 40
PROMPT = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]
EOS = 2  # <|im_end|> of SmolLM2; forbidding it makes every run decode exactly --tokens tokens


def direct_decode_rate(tokens: int, repeat: int) -> float:
    """Decode tokens/s of llama-cpp-python's own streaming completion, in this process."""
    import llama_cpp

    from llmrelay.engine.model import builtin_model_path
    from llmrelay.engine.prompt import ChatTemplate
    from llmrelay.protocol.messages import UserMessage

    llm = llama_cpp.Llama(
        str(builtin_model_path()), n_ctx=2048, n_threads=len(os.sched_getaffinity(0)), verbose=False
    )
    template = ChatTemplate(llm.metadata["tokenizer.chat_template"], "", "")
    template_prompt = template.render([UserMessage(content=PROMPT[0]["content"])], [])
    rates = []
    for _ in range(repeat):
        stamps = []
        for _part in llm.create_completion(
            template_prompt,
            max_tokens=tokens,
            temperature=0,
            stream=True,
            logit_bias={EOS: -100.0},
        ):
            stamps.append(time.perf_counter())
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
        llm.reset()
    llm.close()
    return statistics.median(rates)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(config: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "LLMRELAY_API_KEY": KEY, "LLMRELAY_DATA_DIR": tempfile.mkdtemp()}
    extra = ["--config", config] if config else []
    process = subprocess.Popen(
        [sys.executable, "-m", "llmrelay", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


async def wait_ready(http: aiohttp.ClientSession, root: str) -> None:
    for _ in range(600):
        try:
            async with http.get(f"{root}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("llmrelay did not start")


def fresh_prompt() -> list[dict[str, str]]:
    """The bench prompt behind a unique line, so that no run reuses another's KV cache."""
    return [{"role": "user", "content": f"Request {next(_counter)}. {PROMPT[0]['content']}"}]


_counter = itertools.count()


async def stream_once(
    http: aiohttp.ClientSession, root: str, tokens: int, seed: int, warm: bool = False
) -> dict:
    """One streamed request; returns its start, first and last token times, and token count."""
    body = {
        "model": "gpt-4o-mini",
        "messages": PROMPT if warm else fresh_prompt(),
        "max_tokens": tokens,
        "temperature": 0 if seed == 0 else 0.8,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": {str(EOS): -100},
    }
    headers = {"authorization": f"Bearer {KEY}"}
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    async with http.post(f"{root}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            if not line.startswith(b"data: {"):
                continue
            chunk = orjson.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
    return {"start": started, "first": first, "last": last, "tokens": count}


async def concurrent(
    http: aiohttp.ClientSession, root: str, streams: int, tokens: int, warm: bool = False
) -> dict:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(stream_once(http, root, tokens, seed=i + 1, warm=warm) for i in range(streams))
    )
    wall = time.perf_counter() - started
    ttfts = sorted(r["first"] - r["start"] for r in results)
    return {
        "aggregate": sum(r["tokens"] for r in results) / wall,
        "ttft_first": ttfts[0],
        "ttft_last": ttfts[-1],
    }


async def health_while_busy(http: aiohttp.ClientSession, root: str, tokens: int) -> list[float]:
    work = asyncio.gather(*(stream_once(http, root, tokens, seed=i + 1) for i in range(8)))
    await asyncio.sleep(0.5)
    times = []
    while not work.done() and len(times) < 50:
        started = time.perf_counter()
        async with http.get(f"{root}/health") as response:
            await response.read()
        times.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    await work
    return times


async def through_llmrelay(tokens: int, repeat: int, config: str | None) -> dict:
    process, root = start_server(config)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, root)
            await stream_once(http, root, 8, seed=0)  # warm-up
            rates = []
            for _ in range(repeat):
                one = await stream_once(http, root, tokens, seed=0)
                rates.append((one["tokens"] - 1) / (one["last"] - one["first"]))
            runs = {
                n: [await concurrent(http, root, n, tokens) for _ in range(repeat)]
                for n in (1, 4, 8)
            }
            await concurrent(http, root, 8, 4, warm=True)  # fills the cache with the prompt
            warm = [await concurrent(http, root, 8, tokens, warm=True) for _ in range(repeat)]
            health = await health_while_busy(http, root, tokens)
    finally:
        process.terminate()
        process.wait()
    return {"decode": statistics.median(rates), "runs": runs, "warm": warm, "health": health}


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="tokens per stream")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--config", help="a config file for the server (default: none)")
    args = parser.parse_args()

    direct = direct_decode_rate(args.tokens, args.repeat)
    relay = asyncio.run(through_llmrelay(args.tokens, args.repeat, args.config))
    print(
        f"model SmolLM2-135M-Instruct Q4_1, {args.tokens} tokens per stream,"
        f" median of {args.repeat}"
    )
    print(f"1. decode, one stream: llama-cpp-python direct {direct:7.1f} tok/s")
    print(f"                       llmrelay over HTTP      {relay['decode']:7.1f} tok/s")
    print(f"   ratio llmrelay / direct: {relay['decode'] / direct:.2f}  (aim >= 0.90)")
    base = median_of(relay["runs"][1], "aggregate")
    print("2. aggregate tokens/s (wall time, prompt included):")
    for n, runs in relay["runs"].items():
        agg = median_of(runs, "aggregate")
        print(f"   {n} concurrent: {agg:7.1f} tok/s  ratio to 1 stream {agg / base:.2f}")
    first = median_of(relay["runs"][8], "ttft_first")
    last = median_of(relay["runs"][8], "ttft_last")
    print(
        f"3. 8 simultaneous: first token first {first * 1000:.0f} ms, last {last * 1000:.0f} ms;"
        f" ratio last / first {last / first:.2f}  (aim <= 3)"
    )
    first = median_of(relay["warm"], "ttft_first")
    last = median_of(relay["warm"], "ttft_last")
    print(
        f"   the same prompt again (its KV cache reused): first {first * 1000:.0f} ms,"
        f" last {last * 1000:.0f} ms; ratio {last / first:.2f}"
    )
    health = sorted(relay["health"])
    print(
        f"4. /health while 8 streams generate: median {statistics.median(health) * 1000:.1f} ms,"
        f" max {health[-1] * 1000:.1f} ms over {len(health)} calls  (aim < 50 ms)"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
