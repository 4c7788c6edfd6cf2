"""``Ledger``: one row per request, written off the request path in batches.

``record`` only appends to a list; a background task writes what has gathered every
``flush_seconds`` (or as soon as ``batch`` rows wait) in one transaction. A failed write keeps its
rows for the next attempt, and ``aclose`` writes the rest, so a normal stop loses nothing. How a
batch reaches the database: ``store/ledger_writes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from llmrelay.store.database import Database
from llmrelay.store.ledger_writes import DriverWrites, SQLiteWrites, Writes
from llmrelay.store.schema import UsageRow

log = logging.getLogger(__name__)


#: the usage table's columns, in the order of a record's fields
USAGE_FIELDS = (
    "created_at",  # seconds since the epoch, as ``time.time()`` gives it
    "request_id",
    "key_id",
    "model_requested",
    "model_served",
    "backend",
    "prompt_tokens",
    "completion_tokens",
    "usage_source",  # reported (by the backend), counted (by llmrelay), none
    "status",
    "error_code",
    "stream",  # 0 or 1, as SQLite keeps a boolean (which it binds without looking for an adapter)
    "ttft_ms",
    "latency_ms",
    "disconnected",  # 0 or 1
)
#: the fields that are booleans, given as 0 or 1 (a database that wants a bool is given one)
BOOLEAN_FIELDS = tuple(USAGE_FIELDS.index(name) for name in ("stream", "disconnected"))
#: one request's row, a plain tuple in the order of ``USAGE_FIELDS`` (a NamedTuple's
#: constructor costs eight times as much)
UsageRecord = tuple[
    float,
    str,
    str | None,
    str,
    str | None,
    str | None,
    int,
    int,
    str,
    int,
    str | None,
    int,
    float | None,
    float,
    int,
]


class Ledger:
    def __init__(self, database: Database, *, flush_seconds: float = 0.5, batch: int = 500):
        self._db = database
        self._flush_seconds = flush_seconds
        self._batch = batch
        self._pending: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # compiled once, executed by the driver itself: SQLAlchemy's per-row processing would
        # cost three times the write
        fields = list(USAGE_FIELDS)
        compiled = insert(UsageRow).compile(dialect=database.engine.dialect, column_keys=fields)
        assert compiled.positiontup == fields, "a record is handed over as the row it is"
        path = database.sqlite_path
        self._writes: Writes = (
            SQLiteWrites(path, compiled.string)
            if path is not None
            else DriverWrites(database.engine, compiled.string, BOOLEAN_FIELDS)
        )

    def record(self, record: UsageRecord) -> None:
        """Queue a row; never waits."""
        self._pending.append(record)
        if len(self._pending) >= self._batch:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._write_in_batches())

    async def _write_in_batches(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await self._writes.write(rows)
        except BaseException as exc:  # cancelled too: the rows go back, none is lost
            self._pending[:0] = rows
            if not isinstance(exc, Exception):
                raise
            log.exception("writing %d usage rows failed; they are kept for the next try", len(rows))

    async def aclose(self) -> None:
        """Let the writer finish its write, then write what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()
        await self._writes.aclose()
        if self._pending:
            log.error("%d usage rows could not be written at shutdown", len(self._pending))

    async def spent(self, key_id: str, since: datetime | None) -> int:
        """The tokens a key used since ``since`` (ever, for None), from written rows."""
        query = select(func.sum(UsageRow.prompt_tokens + UsageRow.completion_tokens)).where(
            UsageRow.key_id == key_id
        )
        if since is not None:
            query = query.where(UsageRow.created_at >= since)
        async with self._db.session() as session:
            return int(await session.scalar(query) or 0)

    async def report(
        self,
        *,
        key_id: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """Totals and one row per day (UTC) of the requests that match."""
        day = func.date(UsageRow.created_at)  # text on SQLite, a date on PostgreSQL
        columns = [
            func.count().label("requests"),
            func.coalesce(func.sum(UsageRow.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(UsageRow.completion_tokens), 0).label("completion_tokens"),
        ]
        filters = []
        if key_id is not None:
            filters.append(UsageRow.key_id == key_id)
        if model is not None:
            filters.append(UsageRow.model_requested == model)
        if since is not None:
            filters.append(UsageRow.created_at >= since)
        if until is not None:
            filters.append(UsageRow.created_at < until)
        async with self._db.session() as session:
            total = (await session.execute(select(*columns).where(*filters))).one()
            days = await session.execute(
                select(day.label("day"), *columns).where(*filters).group_by(day).order_by(day)
            )
            return {
                "totals": _counts(total),
                "days": [{"date": str(row.day), **_counts(row)} for row in days],
            }


def _counts(row: Any) -> dict[str, int]:
    prompt, completion = int(row.prompt_tokens), int(row.completion_tokens)
    return {
        "requests": int(row.requests),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
