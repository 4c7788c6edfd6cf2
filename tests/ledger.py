"""The usage ledger of a test server, read from its SQLite file as an operator would."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import Server


def last_row_id(server: Server) -> int:
    with closing(sqlite3.connect(server.log.parent / "llmrelay.db")) as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM usage").fetchone()[0])


def ledger_row(server: Server, request_id: str, timeout: float = 5) -> dict[str, Any]:
    """The row of one request, once the writer has written it."""
    return first_row_where(server, "request_id = ?", request_id, timeout=timeout)


def first_row_where(
    server: Server, condition: str, *params: object, timeout: float = 5
) -> dict[str, Any]:
    """The first row that meets an SQL condition, once the writer has written one."""
    deadline = time.monotonic() + timeout
    while True:
        with closing(sqlite3.connect(server.log.parent / "llmrelay.db")) as db:
            db.row_factory = sqlite3.Row
            query = f"SELECT * FROM usage WHERE {condition} ORDER BY id LIMIT 1"
            row = db.execute(query, params).fetchone()
        if row is not None:
            return dict(row)
        assert time.monotonic() < deadline, f"no ledger row where {condition} {params}"
        time.sleep(0.1)


def rows_among(data: Path, database_url: str | None, request_ids: list[str]) -> set[str]:
    """Which of the request ids have a row: in the SQLite file of the data directory, or in
    the PostgreSQL database of ``database_url``."""
    if database_url is None:
        with closing(sqlite3.connect(data / "llmrelay.db")) as db:
            return {row[0] for row in db.execute("SELECT request_id FROM usage")} & set(request_ids)

    async def query() -> set[str]:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            found = await connection.fetch(
                "SELECT request_id FROM usage WHERE request_id = ANY($1::text[])", request_ids
            )
            return {row["request_id"] for row in found}
        finally:
            await connection.close()

    return asyncio.run(query())
