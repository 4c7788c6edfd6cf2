"""Migrating a store with usage rows to the daily totals: the rows written before are added
up, unpriced where they used tokens (nothing priced them then). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, DateTime, bindparam, text

from llmrelay.store.database import MIGRATIONS, Database, sqlite_url
from llmrelay.store.ledger import Ledger
from tests.services import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    with postgres_database() as url:  # a database of its own: it starts before any migration
        yield url


def _to(revision: str) -> object:
    def upgrade(connection: Connection) -> None:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return upgrade


async def test_rows_from_before_are_added_up_into_daily_totals(empty_url: str) -> None:
    database = Database(empty_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(_to("0005"))  # type: ignore[arg-type]
        for n, (day, status) in enumerate(
            [("2026-11-01", 200), ("2026-11-01", 502), ("2026-11-02", 200)]
        ):
            await connection.execute(
                text(
                    "INSERT INTO usage (created_at, request_id, key_id, endpoint, model_requested,"
                    " prompt_tokens, completion_tokens, usage_source, status, stream, latency_ms,"
                    " disconnected) VALUES (:at, :id, 'key_old', 'chat', 'gpt-4o', :p, :c,"
                    " 'reported', :status, false, 1.0, false)"
                ).bindparams(bindparam("at", type_=DateTime())),
                {
                    "at": datetime.fromisoformat(f"{day}T12:00:00"),
                    "id": f"req_{n}",
                    "p": 10,
                    "c": 0 if status != 200 else 5,
                    "status": status,
                },
            )
    await database.migrate()

    ledger = Ledger(database)
    report = await ledger.report(key_id="key_old")
    assert [(r["date"], r["requests"], r["errors"]) for r in report["rows"]] == [
        ("2026-11-01", 2, 1),
        ("2026-11-02", 1, 0),
    ]
    assert report["totals"]["total_tokens"] == 10 + 5 + 10 + 10 + 5
    assert report["totals"]["unpriced_requests"] == 3 and report["totals"]["cost_nanousd"] == 0
    await ledger.aclose()
    await database.aclose()
