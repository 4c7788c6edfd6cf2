"""PostgreSQL and Redis for the tests: the machine's, and servers of a test's own.

The machine's addresses come from ``LLMRELAY_TEST_POSTGRES`` (a server URL, without a database)
and ``LLMRELAY_TEST_REDIS``; by default the local servers. When one is not there, the tests that
need it fail: CI must not pass without them. A test that stops, starts or pauses a server (an
outage) starts one of its own (``OwnRedis``, ``OwnPostgres``) from the same installation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import redis

from tests.net import free_port

POSTGRES = os.environ.get("LLMRELAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("LLMRELAY_TEST_REDIS", "redis://127.0.0.1:6379")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database for one test session; its SQLAlchemy async URL."""
    name = "llmrelay_test_" + secrets.token_hex(4)

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(f"{POSTGRES}/postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@contextmanager
def redis_database(number: int = 7) -> Iterator[str]:
    """A Redis database number, emptied before and after; its URL."""
    url = f"{REDIS}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


class OwnRedis:
    """A Redis server of the test's own, on a port of its own, that the test stops, starts
    again and pauses (never the machine's shared one, which the rest of the suite uses)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            assert time.monotonic() < deadline, "the test's Redis did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def pause(self, seconds: float) -> None:
        """Hold every client's commands (``CLIENT PAUSE``), as a stalled Redis would."""
        self.client().execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OwnPostgres:
    """A PostgreSQL server of the test's own (its own data directory and port), that the test
    stops and starts again. PostgreSQL refuses to run as root: as root it runs as ``postgres``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._dir = Path(tempfile.mkdtemp(prefix="llmrelay-pg-"))
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self._dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self._dir / "data"), "-U", "postgres", "--auth=trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self._dir / "log")
        self._run("pg_ctl", "-D", str(self._dir / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop")

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, stdout=subprocess.DEVNULL)

    def __enter__(self) -> OwnPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
