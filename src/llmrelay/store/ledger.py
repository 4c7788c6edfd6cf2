"""``Ledger``: one row per request, written off the request path in batches.

``record`` only appends to a list; a background task writes what has gathered every
``flush_seconds`` (or as soon as ``batch`` rows wait) in one INSERT. A failed write keeps its rows
for the next attempt, and ``aclose`` writes the rest, so a normal stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import func, insert, select

from llmrelay.store.database import Database
from llmrelay.store.schema import UsageRow, utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class UsageRecord:
    request_id: str
    key_id: str | None
    model_requested: str
    stream: bool
    status: int = 200
    model_served: str | None = None
    backend: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_source: str = "none"
    error_code: str | None = None
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    disconnected: bool = False
    created_at: datetime = field(default_factory=utcnow)


_FIELDS = [f.name for f in fields(UsageRecord)]


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
        compiled = insert(UsageRow).compile(dialect=database.engine.dialect, column_keys=_FIELDS)
        self._insert = compiled.string
        columns = list(compiled.positiontup or _FIELDS)
        self._values = attrgetter(*columns)
        self._texts_times = database.engine.dialect.name == "sqlite"
        if self._texts_times:  # the table's order: created_at comes first
            assert columns[0] == "created_at"
            self._values = attrgetter(*columns[1:])
            # given a bool or None, sqlite3 looks for an adapter by raising and catching two
            # AttributeErrors, a third of a row's cost; these are found at once, store the same
            sqlite3.register_adapter(bool, int)
            sqlite3.register_adapter(type(None), _null)

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
            async with self._db.engine.begin() as connection:
                await connection.exec_driver_sql(self._insert, self._encoded(rows))
        except BaseException as exc:  # cancelled too: the rows go back, none is lost
            self._pending[:0] = rows
            if not isinstance(exc, Exception):
                raise
            log.exception("writing %d usage rows failed; they are kept for the next try", len(rows))

    def _encoded(self, rows: list[UsageRecord]) -> list[tuple[Any, ...]]:
        if not self._texts_times:
            return list(map(self._values, rows))
        # SQLite is given the time as the text SQLAlchemy stores there: its sqlite3 adapter
        # would cost more than the rest of the row
        values = self._values
        return [(row.created_at.isoformat(" ", "microseconds"), *values(row)) for row in rows]

    async def aclose(self) -> None:
        """Let the writer finish its write, then write what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()
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


def _null(value: None) -> None:
    return None


def _counts(row: Any) -> dict[str, int]:
    prompt, completion = int(row.prompt_tokens), int(row.completion_tokens)
    return {
        "requests": int(row.requests),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
