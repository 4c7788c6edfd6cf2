"""Drills of what hostile clients, outages and crashes do to llmrelay, as one table.

Each drill runs a real server (``llmrelay serve``) as an operator would, over an upstream that
answers at once (nginx, as in bench/gateway.py, or the tests' scripted upstream where a drill
needs request ids), and breaks something on purpose:

- slow loris: normal clients' p99 latency (wrk, 4 connections) without and with 5,000
  connections that each send a header line every 5 s and open again when closed;
- Redis outage: a Redis of the drill's own killed for 10 s of a 20 s load by a key with limits
  (requests/tokens per minute and a budget): answers that were not 200, tracebacks logged;
- kill -9 under load (SQLite, and a PostgreSQL of the drill's own): answered requests with no
  ledger row once the server is started again;
- budget across crashes: a key with a budget of 5,200 tokens, 50 clients, the server killed
  three times mid-burst: tokens served beyond the budget;
- database outage: the drill's PostgreSQL stopped for 20 s under load: log lines meanwhile,
  requests/s before and during it, the server's resident memory growth, answered requests with
  no row once it is back.

Needs nginx and wrk (``apt-get install nginx-light wrk``), redis-server and PostgreSQL's
initdb/pg_ctl. Run from the repository: .venv/bin/python bench/faults.py (about 4 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import gateway  # noqa: E402 - the gateway benchmark next door: nginx, wrk, its servers

from tests.conftest import API_KEY, Server, start_server, stop_server  # noqa: E402
from tests.ledger import rows_among  # noqa: E402
from tests.load import HELLO, Load  # noqa: E402
from tests.services import OwnPostgres, OwnRedis  # noqa: E402
from tests.upstream import Upstream, relay_models  # noqa: E402

#: a request whose reservation leaves room for many in flight (its output is at most 10)
SMALL = {**HELLO, "max_tokens": 10}
ADMIN_KEY = "sk-bench-faults-admin-" + "f" * 26
SLOW_CLIENTS = 5000
BUDGET = 5200


def serve(data: Path, lines: list[str], env: dict[str, str] | None = None) -> Server:
    data.mkdir(parents=True, exist_ok=True)
    config = data / "llmrelay.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = {"LLMRELAY_ADMIN_KEY": ADMIN_KEY, "LLMRELAY_API_KEY": API_KEY, **(env or {})}
    return start_server(data, env=env, args=("--config", str(config)))


def stored_key(server: Server, **limits: int | str) -> str:
    import httpx2

    response = httpx2.post(
        f"{server.root}/admin/keys",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"name": "drill", **limits},
    )
    return str(response.json()["key"])


def wrk(url: str, key: str, connections: int, seconds: float) -> dict[str, float]:
    """wrk's figures, answers that were not 2xx included (gateway.wrk refuses those)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"model": "bench", "messages": [{"role": "user", "content": "Hello"}]}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    out = subprocess.run(
        [
            *("taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"),
            *("--latency", "-s", str(script), f"{url}/v1/chat/completions"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": gateway._ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": gateway._ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(map(int, errors.groups()))) if errors else 0.0,
    }


def nginx_models(upstream: str) -> list[str]:
    return ["models:", f"  - {{name: bench, provider: openai, base_url: '{upstream}/v1'}}"]


class SlowLoris(threading.Thread):
    """``count`` connections that each send a header line every ``every`` seconds, opening again
    when the server closes them; how many it closed."""

    def __init__(self, port: int, count: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.every = port, count, every
        self.closed = 0
        self.open = 0
        self._stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._one(i) for i in range(self.count)))

    async def _one(self, i: int) -> None:
        await asyncio.sleep(i / 1000)  # 1,000 new connections a second
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(1)
                continue
            self.open += 1
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
            try:
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        if await asyncio.wait_for(reader.read(1024), self.every) == b"":
                            break
                        break  # an answer (a 408): the server is done with it
                    writer.write(b"x-slow: 1\r\n")
                    await writer.drain()
            except OSError:
                pass
            self.open -= 1
            self.closed += 1
            writer.close()

    def stop(self) -> None:
        self._stop.set()


def slow_loris(work: Path, upstream: str) -> list[tuple[str, str]]:
    server = serve(work / "slow-loris", nginx_models(upstream))
    try:
        port = int(server.root.rsplit(":", 1)[1])
        without = wrk(server.root, API_KEY, 4, 8)
        attack = SlowLoris(port, SLOW_CLIENTS)
        attack.start()
        time.sleep(6)  # all of them open, the first ones already closed and opened again
        during = wrk(server.root, API_KEY, 4, 8)
        held = attack.open
        attack.stop()
    finally:
        stop_server(server)
    return [
        (
            "slow loris: normal clients' p99 without / with 5,000 slow",
            f"{without['p99']:.2f} / "
            f"{during['p99']:.2f} ms (p50 {without['p50']:.2f} / {during['p50']:.2f})",
        ),
        (
            "slow loris: normal answers that failed",
            f"{during['non_2xx'] + during['socket_errors']:.0f} of {during['requests']:.0f}",
        ),
        (
            "slow loris: slow connections open at once / closed by the server",
            f"{held} / {attack.closed}",
        ),
    ]


def redis_outage(work: Path, upstream: str) -> list[tuple[str, str]]:
    with OwnRedis() as redis:
        lines = [f"redis_url: {redis.url}", *nginx_models(upstream)]
        server = serve(work / "redis", lines)
        try:
            key = stored_key(server, rpm=10**8, tpm=10**12, budget_tokens=10**15)
            stopper = threading.Timer(5, redis.stop)
            starter = threading.Timer(15, redis.start)
            stopper.start()
            starter.start()
            run = wrk(server.root, key, 8, 20)
            starter.join()
            time.sleep(2)
            log = server.log.read_text()
        finally:
            stop_server(server)
    return [
        (
            "Redis down 10 s of 20: answers not 200",
            f"{run['non_2xx'] + run['socket_errors']:.0f}"
            f" of {run['requests']:.0f} (p99 {run['p99']:.1f} ms)",
        ),
        (
            "Redis down: tracebacks / warnings logged",
            f"{log.count('Traceback')} / "
            f"{log.count('Redis is unreachable')} (back: {'Redis is back' in log})",
        ),
    ]


def kill_under_load(work: Path, upstream: Upstream, database_url: str | None) -> int:
    """Answered requests without a ledger row after a SIGKILL under load and a restart."""
    data = work / f"kill-{'pg' if database_url else 'sqlite'}"
    env = {"LLMRELAY_DATABASE_URL": database_url} if database_url else {}
    lines = relay_models(upstream, ["answer"])
    server = serve(data, lines, env)
    load = Load(server)
    time.sleep(3)
    server.process.kill()
    server.process.wait()
    load.stop()
    stop_server(serve(data, lines, env))  # a start writes what the spool holds
    return len(set(load.answered) - rows_among(data, database_url, list(load.answered)))


def budget_across_crashes(work: Path, upstream: Upstream) -> tuple[int, int]:
    data = work / "budget"
    lines = relay_models(upstream, ["answer"])
    server = serve(data, lines)
    key = stored_key(server, budget_tokens=BUDGET, budget_period="total")
    served = answered = 0
    for _ in range(3):
        load = Load(server, key, clients=50, body=SMALL)
        time.sleep(1)
        server.process.kill()
        server.process.wait()
        load.stop()
        served += sum(load.answered.values())
        answered += len(load.answered)
        server = serve(data, lines)
    stop_server(server)
    return served, answered


def database_outage(work: Path, upstream: str) -> list[tuple[str, str]]:
    with OwnPostgres() as postgres:
        server = serve(work / "db", nginx_models(upstream), {"LLMRELAY_DATABASE_URL": postgres.url})
        try:
            key = stored_key(server)
            before = wrk(server.root, key, 8, 5)
            rss_before = gateway.rss_mb(server.process.pid)
            log_before = len(server.log.read_text().splitlines())
            postgres.stop()
            during = wrk(server.root, key, 8, 20)
            rss_during = gateway.rss_mb(server.process.pid)
            spooled = sum(p.stat().st_size for p in (server.log.parent / "spool").glob("*"))
            lines_during = len(server.log.read_text().splitlines()) - log_before
            postgres.start()
            deadline = time.monotonic() + 60
            while "writes to the database again" not in server.log.read_text():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(1)
            rows = count_rows(postgres.url)
            answered = before["requests"] + during["requests"]
        finally:
            stop_server(server)
    return [
        ("database down 20 s: log lines meanwhile", f"{lines_during}"),
        (
            "database down: requests/s before / during",
            f"{before['rps']:.0f} / {during['rps']:.0f} (not 200 during: {during['non_2xx']:.0f})",
        ),
        (
            "database down: resident memory before / during",
            f"{rss_before:.0f} / {rss_during:.0f} MB (spool on disk: {spooled / 1e6:.1f} MB)",
        ),
        (
            "database down: answered requests with no row after it is back",
            f"{max(0, answered - rows):.0f} of {answered:.0f}",
        ),
    ]


def count_rows(database_url: str) -> int:
    import asyncpg

    async def query() -> int:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return int(await connection.fetchval("SELECT count(*) FROM usage"))
        finally:
            await connection.close()

    return asyncio.run(query())


@contextlib.contextmanager
def nginx(work: Path) -> Iterator[str]:
    port = gateway.free_port()
    process = gateway.start_nginx(work, port)
    try:
        gateway.wait_http(f"http://127.0.0.1:{port}/v1/chat/completions")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    print(f"llmrelay build: {gateway.build()}", flush=True)
    gateway.ensure_tools()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the drill's own 5,000 sockets
    work = Path(tempfile.mkdtemp(prefix="llmrelay-faults-"))
    table: list[tuple[str, str]] = []
    with nginx(work) as upstream, Upstream() as scripted:
        table += slow_loris(work, upstream)
        table += redis_outage(work, upstream)
        with OwnPostgres() as postgres:
            sqlite_missing = kill_under_load(work, scripted, None)
            postgres_missing = kill_under_load(work, scripted, postgres.url)
        table.append(
            (
                "kill -9 under load: answered requests with no row",
                f"SQLite {sqlite_missing}, PostgreSQL {postgres_missing}",
            )
        )
        served, answered = budget_across_crashes(work, scripted)
        table.append(
            (
                f"budget {BUDGET} tokens, killed 3 times: tokens served (answers)",
                f"{served} ({answered}); beyond the budget: {max(0, served - BUDGET)}",
            )
        )
        table += database_outage(work, upstream)
    width = max(len(name) for name, _ in table)
    for name, figure in table:
        print(f"{name:<{width}}  {figure}")


if __name__ == "__main__":
    main()
