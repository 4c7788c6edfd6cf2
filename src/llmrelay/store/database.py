"""``Database``: the async SQLAlchemy engine, SQLite by default, migrated at start-up.

The URL is ``LLMRELAY_DATABASE_URL`` or ``database.url`` in the config (e.g.
``postgresql+asyncpg://user@host/llmrelay``); without one, a SQLite file in the data directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import URL, Connection, Insert, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'llmrelay.db'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        # JSON columns (stored responses) with orjson: the standard library's encoder took
        # a third of what storing a response cost
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=True, json_serializer=_json_text, json_deserializer=orjson.loads
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", lambda dbapi, _: sqlite_pragmas(dbapi))
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite database's file (None on another database, or in memory)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or sqlite_in_memory(url):
            return None
        return url.database

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic), as start-up does."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    def insert_new(self, table: type[Any]) -> Insert:
        """An INSERT of rows that leaves out a row whose key the table has already."""
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        return dialect.insert(table).on_conflict_do_nothing()

    async def aclose(self) -> None:
        await self.engine.dispose()


def sqlite_in_memory(url: str | URL) -> bool:
    """Whether ``url`` names a SQLite database in memory (one no other connection sees, gone at
    a stop). ``ArgumentError`` if it is no database URL."""
    url = make_url(url)
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _upgrade(connection: Connection) -> None:
    # imported here: a server migrates in a process of its own and never needs Alembic
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def sqlite_pragmas(dbapi_connection: Any) -> None:
    """WAL lets readers work beside the one writer; busy_timeout waits instead of failing with
    "database is locked" while another connection writes; NORMAL syncs at checkpoints only."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable at checkpoints, safe
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()
