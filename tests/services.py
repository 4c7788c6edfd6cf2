"""The machine's PostgreSQL and Redis, as the store and limit tests use them.

Their addresses come from ``LLMRELAY_TEST_POSTGRES`` (a server URL, without a database) and
``LLMRELAY_TEST_REDIS``; by default the local servers. When one is not there, the tests that
need it fail: CI must not pass without them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import redis

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
