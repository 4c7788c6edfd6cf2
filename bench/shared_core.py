"""What keys, limits and the ledger cost in throughput, measured with bare and llmrelay loaded at
the same time on one core, so that the machine's drift falls on both at once.

bench/gateway.py loads the gateways in turn; on this shared machine a round's llmrelay / bare
ranges over ±15 % there, and the median of ten rounds moves by several per cent between runs.
Here the two servers of bench/gateway.py (bare: a key from the config, no limits, no ledger;
llmrelay: a stored key with requests and tokens per minute and a budget, the ledger on SQLite)
are both pinned to core 0 and each loaded by a wrk of its own (both on core 1, with nginx)
for the same seconds: the kernel shares core 0 between them, so each one's requests/s is the
share it got over its cost a request, and llmrelay / bare in a round is bare's cost over
llmrelay's. Each pair of servers runs with one hash seed that both share (a server's speed moves
by a few per cent with its seed); --pairs pairs with seeds 0, 1, ... It prints each round's
requests/s and CPU time per request (from /proc) and their ratios, then the medians.

Two identical bare servers measured this way gave 0.997 (0.987-1.021) over six rounds with the
same seed, and 1.034 with random seeds.

With --against DIR, the second server is not bare but llmrelay (with its key, limits and ledger)
as another checkout's sources run it (DIR/src first on the path: a git worktree of an earlier
commit, compiled or not as that checkout is), and it prints this llmrelay / that one: what a
change cost. With --variant metrics (or no-log, log-json: bench/gateway.py's variants), the
second server is llmrelay as it is, and the first llmrelay with that setting: what the setting
costs.

Run: .venv/bin/python bench/shared_core.py [--stream] [--connections 32] [--pairs 2] [--rounds 6]
[--against DIR | --variant metrics]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway  # the benchmark next door: its upstream, servers and keys


def load_together(
    targets: tuple[gateway.Target, ...], stream: bool, connections: int, seconds: int
) -> dict[str, dict[str, float]]:
    """Each target loaded by a wrk of its own, all at once."""
    runs: dict[str, dict[str, float]] = {}
    used = {target.name: gateway.cpu_seconds(target.pid or 0) for target in targets}

    def load(target: gateway.Target) -> None:
        url, model = target.url_and_model(stream)
        runs[target.name] = gateway.wrk(url, target.key, model, stream, connections, seconds)

    threads = [threading.Thread(target=load, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for target in targets:
        cpu = gateway.cpu_seconds(target.pid or 0) - used[target.name]
        runs[target.name]["cpu_us"] = cpu / runs[target.name]["requests"] * 1e6
    return runs


@contextlib.contextmanager
def against(
    work: Path, upstream: str, seed: int, checkout: Path | None, variant: str = ""
) -> Iterator[tuple[gateway.Target, gateway.Target]]:
    """Two llmrelays with a stored key each: as ``checkout`` runs it (None: as this one does),
    and as this one does with ``variant``'s setting."""
    work.mkdir()
    earlier = gateway.PINNED
    if checkout is not None:
        earlier = [*earlier[:3], "env", f"PYTHONPATH={checkout / 'src'}", *earlier[3:]]
    servers: list[subprocess.Popen[bytes]] = []
    targets = []
    settings = ("", gateway.VARIANTS.get(variant, ""))
    try:
        for name, command, more in zip(
            ("baseline", "llmrelay"), (earlier, gateway.PINNED), settings, strict=True
        ):
            port = gateway.free_port()
            server = gateway.start_llmrelay(
                work,
                upstream,
                port,
                pipeline=True,
                command=command,
                seed=seed,
                name=name,
                settings=more,
            )
            servers.append(server)
            key = gateway.stored_key(port)
            targets.append(
                gateway.Target(name, f"http://127.0.0.1:{port}", key, "bench", server.pid)
            )
        yield targets[0], targets[1]
    finally:
        for server in servers:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="streamed answers")
    parser.add_argument("--connections", type=int, default=32, help="connections to each server")
    parser.add_argument("--seconds", type=int, default=4, help="length of each round")
    parser.add_argument("--pairs", type=int, default=2, help="pairs of servers, a seed each")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per pair")
    parser.add_argument("--against", type=Path, help="a checkout whose llmrelay stands for bare")
    parser.add_argument(
        "--variant",
        choices=list(gateway.VARIANTS),
        help="llmrelay with this setting, against llmrelay",
    )
    args = parser.parse_args()
    base = "baseline" if args.against or args.variant else "bare"
    print(f"llmrelay build: {gateway.build()}", flush=True)
    if args.against:
        print(f"baseline build: {gateway.build(args.against.resolve() / 'src')}", flush=True)
    gateway.ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="llmrelay-shared-core-"))
    upstream_port = gateway.free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    nginx = gateway.start_nginx(work, upstream_port)
    rps: list[float] = []
    cpu: list[float] = []
    try:
        gateway.wait_http(f"{upstream}/v1/chat/completions")
        for seed in range(args.pairs):
            place = work / f"pair-{seed}"
            servers = (
                against(
                    place, upstream, seed, args.against and args.against.resolve(), args.variant
                )
                if args.against or args.variant
                else gateway.bare_and_llmrelay(place, upstream, seed)
            )
            with servers as pair:
                load_together(pair, args.stream, args.connections, 1)  # warm-up
                for round_ in range(args.rounds):
                    runs = load_together(pair, args.stream, args.connections, args.seconds)
                    relayed, bared = runs["llmrelay"], runs[base]
                    rps.append(relayed["rps"] / bared["rps"])
                    cpu.append(relayed["cpu_us"] / bared["cpu_us"])
                    print(
                        f"seed {seed} round {round_}: requests/s {base} {bared['rps']:.0f},"
                        f" llmrelay {relayed['rps']:.0f} ({rps[-1]:.3f}); CPU µs a request"
                        f" {base} {bared['cpu_us']:.0f}, llmrelay {relayed['cpu_us']:.0f}"
                        f" ({cpu[-1]:.3f})",
                        flush=True,
                    )
    finally:
        nginx.terminate()
        nginx.wait()
    mode = "stream" if args.stream else "json"
    setting = f" (llmrelay with --variant {args.variant})" if args.variant else ""
    print(f"{mode}, {args.connections} connections each, {len(rps)} rounds{setting}")
    print(
        f"llmrelay / {base} requests/s: {statistics.median(rps):.3f}"
        f" ({min(rps):.3f}-{max(rps):.3f})"
    )
    print(
        f"llmrelay / {base} CPU time a request: {statistics.median(cpu):.3f}"
        f" ({min(cpu):.3f}-{max(cpu):.3f})"
    )


if __name__ == "__main__":
    main()
