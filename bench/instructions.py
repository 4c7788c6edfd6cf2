"""What keys, limits and the ledger cost a request, in CPU instructions: a count this machine's
noise does not move (runs of the same server under wrk differ by up to 40 % here).

The same two servers as bench/gateway.py (bare: a key from the config, no limits, no ledger;
llmrelay: a stored key with requests and tokens per minute and a budget, the ledger on SQLite),
each run under valgrind's callgrind in turn with nginx as the upstream. After --warm-up requests
the counts are zeroed, --requests requests are sent over --connections keep-alive connections,
and the count is read: instructions per request of the whole process, its threads included. The
servers' periodic work (ledger writes, key refreshes) is slowed by the factor valgrind slows the
requests, so that it weighs on each request as it does at full speed, and so is the time after
which a request starts watching for its client's disconnect. Hash randomisation is off,
so that two runs count the same. It prints both counts and llmrelay / bare. With --variant
metrics (or no-log, log-json: bench/gateway.py's variants) it counts llmrelay and llmrelay with
that setting instead, and prints the one over the other: what the setting costs.

Needs valgrind, nginx and wrk (the script installs them when it runs as root). Run:
.venv/bin/python bench/instructions.py [--stream] [--requests 3000] [--connections 1]
[--variant metrics]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway  # the benchmark next door: its upstream, servers and keys

#: about how much slower a request runs under callgrind here
SLOWDOWN = 50


def serve_slowed() -> None:
    """``llmrelay serve`` with its periodic work SLOWDOWN times rarer (run under valgrind)."""
    from llmrelay.api import disconnect
    from llmrelay.cli.main import cli
    from llmrelay.gateway import periodic
    from llmrelay.observe import requestlog
    from llmrelay.store import ledger

    disconnect.WATCH_AFTER *= SLOWDOWN

    every = periodic.Periodic.__init__
    periodic.Periodic.__init__ = lambda self, seconds, work, what: every(  # type: ignore[method-assign]
        self, seconds * SLOWDOWN, work, what
    )
    batches = ledger.Ledger.__init__
    ledger.Ledger.__init__ = lambda self, database, flush_seconds=0.5, **rest: batches(  # type: ignore[method-assign]
        self, database, flush_seconds=flush_seconds * SLOWDOWN, **rest
    )
    lines = requestlog.RequestLog.__init__

    def slowed_lines(
        self: Any, format: str = "text", stream: Any = None, every: float = 0.2
    ) -> None:
        lines(self, format, stream, every * SLOWDOWN)

    requestlog.RequestLog.__init__ = slowed_lines  # type: ignore[method-assign]
    sys.argv = ["llmrelay", *sys.argv[2:]]
    cli()


def send(port: int, key: str, stream: bool, requests: int, connections: int) -> None:
    """``requests`` chat requests over ``connections`` keep-alive connections, all answered."""
    import http.client

    body = orjson.dumps(
        {
            "model": "bench-stream" if stream else "bench",
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": stream,
        }
    )
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    failures: list[str] = []

    def one_connection(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(count):
            connection.request("POST", "/v1/chat/completions", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                failures.append(f"{response.status}: {answer[:200]!r}")
                return

    threads = [
        threading.Thread(target=one_connection, args=(requests // connections,))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"the server refused: {failures[0]}")


def count(
    work: Path, upstream: str, *, pipeline: bool, args: argparse.Namespace, variant: str = ""
) -> float:
    """Instructions per request of one server (with ``variant``'s setting), under callgrind."""
    name = variant or ("llmrelay" if pipeline else "bare")
    out = work / f"callgrind-{name}.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    command = [*valgrind, sys.executable, __file__, "--serve"]
    port = gateway.free_port()
    server = gateway.start_llmrelay(
        work,
        upstream,
        port,
        pipeline=pipeline,
        command=command,
        start_seconds=900,
        name=name,
        settings=gateway.VARIANTS.get(variant, ""),
    )
    try:
        key = gateway.stored_key(port) if pipeline else gateway.KEY
        send(port, key, args.stream, args.warm_up, args.connections)
        subprocess.run(
            ["callgrind_control", "--zero", str(server.pid)], check=True, capture_output=True
        )
        send(port, key, args.stream, args.requests, args.connections)
        subprocess.run(
            ["callgrind_control", "--dump=measured", str(server.pid)],
            check=True,
            capture_output=True,
        )
    finally:
        server.terminate()
        server.wait()
    measured = sorted(work.glob(f"{out.name}.*"))[
        0
    ]  # the dump above; the exit's is the file itself
    for line in measured.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]) / args.requests
    raise RuntimeError(f"no totals in {measured}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="streamed answers")
    parser.add_argument("--requests", type=int, default=3000, help="requests counted")
    # enough for the ledger to have written batches of every size it cuts them in, so that the
    # count holds no statement being prepared
    parser.add_argument("--warm-up", type=int, default=1000, help="requests before counting")
    parser.add_argument("--connections", type=int, default=1, help="concurrent connections")
    parser.add_argument(
        "--variant",
        choices=list(gateway.VARIANTS),
        help="count llmrelay with this setting against llmrelay, not llmrelay against bare",
    )
    args = parser.parse_args()
    print(f"llmrelay build: {gateway.build()}", flush=True)
    if os.geteuid() == 0 and not shutil.which("valgrind"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind"], check=True)
    gateway.ensure_tools()
    os.environ["PYTHONHASHSEED"] = "0"
    work = Path(tempfile.mkdtemp(prefix="llmrelay-instructions-"))
    upstream_port = gateway.free_port()
    nginx = gateway.start_nginx(work, upstream_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    try:
        gateway.wait_http(f"{upstream}/v1/chat/completions")
        if args.variant:
            base = count(work, upstream, pipeline=True, args=args)
            other = count(work, upstream, pipeline=True, args=args, variant=args.variant)
        else:
            base = count(work, upstream, pipeline=False, args=args)
            other = count(work, upstream, pipeline=True, args=args)
    finally:
        nginx.terminate()
        nginx.wait()
    mode = "stream" if args.stream else "json"
    print(f"{mode}, {args.connections} connection(s), {args.requests} requests counted")
    if args.variant:
        print(f"llmrelay  {base / 1000:8.1f}k instructions per request")
        print(f"{args.variant:9} {other / 1000:8.1f}k instructions per request")
        print(f"{args.variant} / llmrelay: {other / base:.3f} ({other - base:+,.0f})")
        return
    bare, relay = base, other
    print(f"bare      {bare / 1000:8.1f}k instructions per request")
    print(f"llmrelay  {relay / 1000:8.1f}k instructions per request")
    print(
        f"llmrelay / bare: {relay / bare:.3f} (keys, limits and the ledger: {relay - bare:+,.0f})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve_slowed()
    else:
        main()
