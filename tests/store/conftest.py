"""What the store's tests share: a migrated database, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.store.database import Database, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path) if request.param == "sqlite" else postgres_url)
    await database.migrate()
    yield database
    await database.aclose()
