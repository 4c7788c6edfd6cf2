"""Benchmark of llmrelay as a gateway: its cost over an upstream that answers instantly.

In one run, with nginx as a fixed-answer upstream that cannot be the bottleneck and wrk as the
load: direct to nginx; through llmrelay (one process) as an operator runs it, with a key from the
key store that has requests and tokens per minute and a budget, and the usage ledger on (SQLite);
through the same llmrelay with all that off ("bare": a key from the config, no limits, no
ledger); through the LiteLLM proxy (one worker, installed by this script in
bench/.venv-litellm); non-streaming and streaming; 1 and 32 connections. The gateways are pinned
to core 0, nginx and wrk to core 1; bare, llmrelay and LiteLLM are loaded in turn (in alternating
order), --rounds times each, and their medians compared, as well as the median of each round's
llmrelay / bare and llmrelay / LiteLLM. Bare and llmrelay are started anew --pairs times, each
pair with a hash seed (PYTHONHASHSEED) of its own that both share: a Python server's speed moves
by a few per cent with its seed (two bare servers, loaded at once on one core, differed by 3.4 %
with random seeds and by 0.3 % with the same one), a bias that the rounds of one pair of processes
do not average out. It prints requests/s, p50 and p99, the p50 added over direct, the gateway's
CPU time per request (all its threads; read from /proc around each run), resident memory,
llmrelay / bare (the cost of keys, limits and the ledger, in requests/s and in CPU time a
request) and llmrelay / LiteLLM. Both llmrelays send OpenAI's x-ratelimit-* headers (bare reports
its key unlimited).

With --api responses, --api responses-unstored (``store: false``: nothing kept) or
--api messages (Anthropic's Messages API), llmrelay and LiteLLM are also
loaded through that API in the same rounds (llmrelay translates either to Chat Completions for
the upstream; LiteLLM relays Responses requests to nginx's fixed Responses answer, its fastest
way, and translates Messages requests to Chat Completions as llmrelay does), and it prints
llmrelay's figure over its own Chat Completions figure and over LiteLLM's.

With --variant metrics (Prometheus metrics on, ``metrics.token`` set), --variant no-log (the
request log off) or --variant log-json (the request log as JSON lines), a third llmrelay like
the second but for that setting is started in each pair, loaded in the same rounds, and its
figure printed over llmrelay's. (Bare has the request log off too; llmrelay has it on, as by
default, its lines going to /dev/null.)

Needs nginx and wrk (Debian: `apt-get install nginx-light wrk`; the script installs them when it
runs as root and they are missing). Run: .venv/bin/python bench/gateway.py [--seconds 4]
[--pairs 5] [--rounds 2] [--no-litellm] [--api responses] [--api responses-unstored]
[--api messages] [--variant metrics] [--variant no-log] [--variant log-json]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
KEY = "sk-bench-gateway-" + "g" * 32
ADMIN_KEY = "sk-bench-admin-" + "a" * 32
LITELLM_KEY = "sk-litellm-bench-master"
COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-upstream",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}


def _sse() -> str:
    def chunk(choices: list, **extra: object) -> str:
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-upstream",
            "choices": choices,
            **extra,
        }
        return "data: " + orjson.dumps(body).decode() + "\n\n"

    parts = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    ]
    for word in ["Hello", "!", " How", " can", " I", " help", "?"]:
        parts.append(chunk([{"index": 0, "delta": {"content": word}, "finish_reason": None}]))
    parts.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    parts.append(chunk([], usage=COMPLETION["usage"]))
    return "".join(parts) + "data: [DONE]\n\n"


RESPONSE = {
    "id": "resp_bench",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "bench-upstream",
    "output": [
        {
            "id": "msg_bench",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "annotations": [], "text": "Hello! How can I help?"}
            ],
        }
    ],
    "usage": {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 16,
    },
}


def _responses_sse() -> str:
    def event(number: int, kind: str, **fields: object) -> str:
        data = {"type": kind, "sequence_number": number, **fields}
        return f"event: {kind}\ndata: " + orjson.dumps(data).decode() + "\n\n"

    opening = {**RESPONSE, "status": "in_progress", "output": []}
    parts = [event(0, "response.created", response=opening)]
    words = ["Hello", "!", " How", " can", " I", " help", "?"]
    for n, word in enumerate(words, start=1):
        where = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
        parts.append(event(n, "response.output_text.delta", delta=word, **where))
    parts.append(event(len(words) + 1, "response.completed", response=RESPONSE))
    return "".join(parts)


#: each API's path, and its request body (streamed or not)
APIS: dict[str, tuple[str, dict[str, object]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello"}]}),
    "responses": ("/v1/responses", {"input": "Hello"}),  # stored, as OpenAI's default
    "responses-unstored": ("/v1/responses", {"input": "Hello", "store": False}),
    "messages": (
        "/v1/messages",
        {"max_tokens": 100, "messages": [{"role": "user", "content": "Hello"}]},
    ),
}


def _nginx_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_tools() -> None:
    missing = [
        t for t in ("nginx", "wrk") if not shutil.which(t) and not Path(f"/usr/sbin/{t}").exists()
    ]
    if missing and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx-light", "wrk"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    elif missing:
        sys.exit(f"bench/gateway.py needs {' and '.join(missing)}: apt-get install nginx-light wrk")


def start_nginx(work: Path, port: int) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
error_log {work}/nginx-error.log;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work};
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = /v1/chat/completions {{
      default_type application/json;
      return 200 {_nginx_quote(orjson.dumps(COMPLETION).decode())};
    }}
    location = /stream/v1/chat/completions {{
      default_type text/event-stream;
      return 200 {_nginx_quote(_sse())};
    }}
    location = /v1/responses {{
      default_type application/json;
      return 200 {_nginx_quote(orjson.dumps(RESPONSE).decode())};
    }}
    location = /stream/v1/responses {{
      default_type text/event-stream;
      return 200 {_nginx_quote(_responses_sse())};
    }}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(["taskset", "-c", "1", nginx, "-c", str(conf), "-p", str(work)])


def wait_http(url: str, headers: dict[str, str] | None = None, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


#: how the gateway runs: pinned to core 0
PINNED = ["taskset", "-c", "0", sys.executable, "-m", "llmrelay"]


#: what each --variant adds to llmrelay's config
VARIANTS = {
    "metrics": "metrics: {token: bench-metrics-token}\n",
    "no-log": "log: {requests: false}\n",
    "log-json": "log: {format: json}\n",
}


def start_llmrelay(
    work: Path,
    upstream: str,
    port: int,
    *,
    pipeline: bool,
    command: list[str] = PINNED,
    start_seconds: float = 120,
    seed: int | None = None,
    name: str | None = None,
    settings: str = "",
) -> subprocess.Popen[bytes]:
    """llmrelay, run by ``command`` (its arguments follow); with ``pipeline``, the usage ledger
    and the request log on (otherwise off); ``seed``: its PYTHONHASHSEED (else this process's);
    its data in ``work``/``name`` (by default ``llmrelay`` or ``bare``); ``settings``: more of
    its config."""
    data = work / (name or ("llmrelay" if pipeline else "bare"))
    data.mkdir()
    config = data / "llmrelay.yaml"
    config.write_text(
        settings
        + ("" if pipeline else "log: {requests: false}\n")
        + f"usage_ledger: {'true' if pipeline else 'false'}\n"
        "models:\n"
        f"  - {{name: bench, provider: openai, base_url: '{upstream}/v1', model: bench-upstream}}\n"
        f"  - {{name: bench-stream, provider: openai, base_url: '{upstream}/stream/v1',"
        " model: bench-upstream}\n"
    )
    env = {
        **os.environ,
        "LLMRELAY_API_KEY": KEY,
        "LLMRELAY_ADMIN_KEY": ADMIN_KEY,
        "LLMRELAY_DATA_DIR": str(data),
    }
    if seed is not None:
        env["PYTHONHASHSEED"] = str(seed)
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}/health", seconds=start_seconds)
    return process


def stored_key(port: int) -> str:
    """A key from the key store with limits that the load stays under, and a budget."""
    limits = {"rpm": 10**8, "tpm": 10**12, "budget_tokens": 10**15, "budget_period": "month"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/keys",
        data=orjson.dumps({"name": "bench", **limits}),
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return str(orjson.loads(response.read())["key"])


def litellm_python() -> Path:
    venv = HERE / ".venv-litellm"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "litellm").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True)
    return python


def start_litellm(work: Path, upstream: str, port: int) -> subprocess.Popen[bytes]:
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        f"      {{model: openai/bench-upstream, api_base: '{upstream}/v1', api_key: x}}\n"
        "  - model_name: bench-stream\n"
        f"    litellm_params: {{model: openai/bench-upstream, api_base: '{upstream}/stream/v1',"
        " api_key: x}\n"
        f"general_settings: {{master_key: {LITELLM_KEY}}}\n"
    )
    python = litellm_python()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            str(python.parent / "litellm"),
            "--config",
            str(config),
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
        stdout=(work / "litellm.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", seconds=300)
    return process


def wrk(
    url: str,
    key: str,
    model: str,
    stream: bool,
    connections: int,
    seconds: int,
    api: str = "chat",
) -> dict[str, float]:
    body = {"model": model, **APIS[api][1], "stream": stream}
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {orjson.dumps(orjson.dumps(body).decode()).decode()}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    if "Non-2xx" in out:
        raise RuntimeError(f"errors from {url}:\n{out}")
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used, all its threads, in user and system mode."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


#: every run of each target, by (target, stream, connections), in the order of the rounds
Runs = dict[tuple[str, bool, int], list[dict[str, float]]]


def build(src: Path | None = None) -> str:
    """Which build of llmrelay a server started by this script runs: its pipeline's modules
    compiled with mypyc (LLMRELAY_COMPILE=1) or its sources (``src``: another checkout's)."""
    if src is None:
        spec = importlib.util.find_spec("llmrelay.gateway.limits")
        assert spec is not None and spec.origin is not None
        src = Path(spec.origin).parents[2]
    compiled = list((src / "llmrelay").rglob("*.so"))
    if compiled:
        return f"{src}: compiled with mypyc ({len(compiled)} modules)"
    return f"{src}: from its sources (not compiled)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument(
        "--pairs", type=int, default=5, help="times bare and llmrelay are started, a seed each"
    )
    # many short rounds (--pairs times --rounds, 10 by default) rather than a few long ones:
    # a paired round's ratio ranges over ±25 % on this shared machine, and the median of more
    # of them moves less
    parser.add_argument("--rounds", type=int, default=2, help="runs of each gateway per pair")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM baseline")
    parser.add_argument(
        "--api",
        choices=[api for api in APIS if api != "chat"],
        action="append",
        default=[],
        help="also load llmrelay (and LiteLLM) through this API (may be given again)",
    )
    parser.add_argument(
        "--variant",
        choices=list(VARIANTS),
        action="append",
        default=[],
        help="also load an llmrelay with this setting, against llmrelay (may be given again)",
    )
    args = parser.parse_args()
    print(f"llmrelay build: {build()}", flush=True)
    ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="llmrelay-gateway-"))
    upstream_port, litellm_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    nginx = start_nginx(work, upstream_port)
    runs: Runs = {}
    names = ["direct", "bare", "llmrelay"] + ([] if args.no_litellm else ["litellm"])
    memory: dict[str, float] = {}
    litellm: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"{upstream}/v1/chat/completions")
        measure(runs, [Target("direct", upstream, "x", "bench-upstream")], args.seconds, 1)
        others = []
        if not args.no_litellm:
            litellm = start_litellm(work, upstream, litellm_port)
            base = f"http://127.0.0.1:{litellm_port}"
            others.append(Target("litellm", base, LITELLM_KEY, "bench", litellm.pid))
        others += [other.through(api) for api in args.api for other in others]
        for seed in range(args.pairs):
            memory = run_pair(runs, work / f"pair-{seed}", upstream, seed, others, args)
    finally:
        if litellm is not None:
            litellm.terminate()
            litellm.wait()
        nginx.terminate()
        nginx.wait()
    results = summary(runs)
    report(results, memory, names)
    for api in args.api:
        report_api(results, api, not args.no_litellm)
    for variant in args.variant:
        report_variant(results, variant)


def run_pair(
    runs: Runs,
    work: Path,
    upstream: str,
    seed: int,
    others: list[Target],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Start bare and llmrelay with hash seed ``seed``, load them and ``others`` in
    ``args.rounds`` rounds; their resident memory after."""
    # all on core 0, loaded in turn (an idle one takes nothing: LiteLLM used 0.02 s of CPU
    # in 10 idle seconds), so that the machine's drift falls on all alike; each round's
    # figures are compared, and the medians of their ratios reported
    with bare_and_llmrelay(work, upstream, seed, args.variant) as pair:
        through = [pair[1].through(api) for api in args.api]
        measure(runs, [*pair, *through, *others], args.seconds, args.rounds)
        return {target.name: rss_mb(target.pid) for target in pair if target.pid}


@contextlib.contextmanager
def bare_and_llmrelay(
    work: Path, upstream: str, seed: int, variants: list[str] | None = None
) -> Iterator[tuple[Target, ...]]:
    """Bare, llmrelay and an llmrelay of each of ``variants`` (with stored keys), all with hash
    seed ``seed``, data in ``work``; stopped at the end."""
    work.mkdir()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        servers.append(start_llmrelay(work, upstream, port, pipeline=False, seed=seed))
        targets = [Target("bare", f"http://127.0.0.1:{port}", KEY, "bench", servers[0].pid)]
        for name in ["llmrelay", *(variants or [])]:
            port = free_port()
            server = start_llmrelay(
                work,
                upstream,
                port,
                pipeline=True,
                seed=seed,
                name=name,
                settings=VARIANTS.get(name, ""),
            )
            servers.append(server)
            base = f"http://127.0.0.1:{port}"
            targets.append(Target(name, base, stored_key(port), "bench", server.pid))
        yield tuple(targets)
    finally:
        for server in servers:
            server.terminate()
            server.wait()


@dataclass(frozen=True)
class Target:
    name: str
    base: str
    key: str
    model: str
    pid: int | None = None  # the process whose CPU time a request costs (llmrelay's)
    api: str = "chat"  # the API it is loaded through

    def url_and_model(self, stream: bool) -> tuple[str, str]:
        path = APIS[self.api][0]
        if self.name == "direct":  # nginx serves the stream on its own path
            return f"{self.base}{'/stream' if stream else ''}{path}", self.model
        return f"{self.base}{path}", f"{self.model}-stream" if stream else self.model

    def through(self, api: str) -> Target:
        """The same server, loaded through another API."""
        return dataclasses.replace(self, name=f"{self.name}/{api}", api=api)


def measure(runs: Runs, targets: list[Target], seconds: int, rounds: int) -> None:
    """Load each target in turn, JSON and streamed, with 1 and 32 connections; ``rounds``
    times over (in alternating order), adding each run to ``runs`` (a round's runs of two
    targets are paired by their place)."""
    for stream in (False, True):
        for connections in (1, 32):
            for round_ in range(rounds):
                # in turn, first to last, then last to first: a drift within a round falls on
                # all alike over two rounds
                for target in targets if round_ % 2 == 0 else targets[::-1]:
                    url, model = target.url_and_model(stream)
                    load = (target.key, model, stream, connections)
                    wrk(url, *load, 1, target.api)  # warm-up
                    used = cpu_seconds(target.pid) if target.pid else 0.0
                    run = wrk(url, *load, seconds, target.api)
                    if target.pid:
                        used = cpu_seconds(target.pid) - used
                        run["cpu_us"] = used / run["requests"] * 1e6
                    runs.setdefault((target.name, stream, connections), []).append(run)


def summary(runs: Runs) -> dict[tuple[str, bool, int], dict[str, Any]]:
    """The median of each figure of each target, with its runs (to pair with another
    target's)."""
    return {
        key: {
            figure: statistics.median(run[figure] for run in measured)
            for figure in ("rps", "p50", "p99", "cpu_us")
            if figure in measured[0]
        }
        | {"runs": measured}
        for key, measured in runs.items()
    }


def paired(
    runs: list[dict[str, float]], bases: list[dict[str, float]], figure: str
) -> tuple[float, float, float]:
    """The median of each round's ``figure`` over the base's in the same round, its least and its
    most (the machine's drift between rounds cancels)."""
    ratios = [run[figure] / base[figure] for run, base in zip(runs, bases, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def report(results: dict, memory: dict[str, float], names: list[str]) -> None:
    print(
        f"{'mode':10} {'conns':>5} {'target':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'+p50 ms':>8} {'CPU µs/req':>10}"
    )
    for stream in (False, True):
        for connections in (1, 32):
            direct = results[("direct", stream, connections)]
            for name in names:
                r = results[(name, stream, connections)]
                added = r["p50"] - direct["p50"] if name != "direct" else 0.0
                mode = "stream" if stream else "json"
                cpu = f"{r['cpu_us']:>10.0f}" if "cpu_us" in r else ""
                print(
                    f"{mode:10} {connections:>5} {name:9} {r['rps']:>9.0f} {r['p50']:>8.2f}"
                    f" {r['p99']:>8.2f} {added:>8.2f} {cpu}"
                )
            relay = results[("llmrelay", stream, connections)]
            bare = results[("bare", stream, connections)]
            median, low, high = paired(relay["runs"], bare["runs"], "rps")
            print(
                f"{'':16} llmrelay / bare requests/s: {relay['rps'] / bare['rps']:.2f} (medians);"
                f" {median:.2f} (median of rounds, each llmrelay / bare; {low:.2f}-{high:.2f})"
            )
            median, low, high = paired(relay["runs"], bare["runs"], "cpu_us")
            print(
                f"{'':16} llmrelay / bare CPU time a request: {median:.3f}"
                f" (median of rounds; {low:.3f}-{high:.3f})"
            )
            if "litellm" in names:
                litellm = results[("litellm", stream, connections)]
                median, low, high = paired(relay["runs"], litellm["runs"], "rps")
                print(
                    f"{'':16} llmrelay / litellm requests/s: {median:.1f}x (median of rounds;"
                    f" {low:.1f}-{high:.1f}x)"
                )
    print(
        f"resident memory after the runs (no local model loaded): bare {memory['bare']:.0f} MB,"
        f" llmrelay {memory['llmrelay']:.0f} MB"
    )


def report_api(results: dict, api: str, litellm: bool) -> None:
    """llmrelay through ``api`` against itself through Chat Completions, and against LiteLLM
    through ``api``, each the median of the rounds' ratios."""
    for stream in (False, True):
        for connections in (1, 32):
            mode = "stream" if stream else "json"
            through = results[(f"llmrelay/{api}", stream, connections)]
            chat = results[("llmrelay", stream, connections)]
            median, low, high = paired(through["runs"], chat["runs"], "rps")
            print(
                f"{mode:10} {connections:>5} llmrelay /{api} {through['rps']:>9.0f} req/s,"
                f" p50 {through['p50']:.2f} ms; / its chat: {median:.2f} ({low:.2f}-{high:.2f})"
            )
            if litellm:
                other = results[(f"litellm/{api}", stream, connections)]
                median, low, high = paired(through["runs"], other["runs"], "rps")
                print(
                    f"{'':16} / LiteLLM /{api} ({other['rps']:.0f} req/s): {median:.1f}x"
                    f" ({low:.1f}-{high:.1f}x)"
                )


def report_variant(results: dict, variant: str) -> None:
    """An llmrelay with ``variant``'s setting against llmrelay, the median of the rounds'
    ratios, in requests/s and in CPU time a request."""
    for stream in (False, True):
        for connections in (1, 32):
            mode = "stream" if stream else "json"
            other = results[(variant, stream, connections)]
            relay = results[("llmrelay", stream, connections)]
            rps, low, high = paired(other["runs"], relay["runs"], "rps")
            cpu, cpu_low, cpu_high = paired(other["runs"], relay["runs"], "cpu_us")
            print(
                f"{mode:10} {connections:>5} {variant} {other['rps']:>9.0f} req/s; / llmrelay:"
                f" requests/s {rps:.3f} ({low:.3f}-{high:.3f}),"
                f" CPU a request {cpu:.3f} ({cpu_low:.3f}-{cpu_high:.3f})"
            )


if __name__ == "__main__":
    main()
