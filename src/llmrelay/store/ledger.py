"""``Ledger``: one row per request, on disk as it ends, in the database in batches.

``record`` appends the row to the spool (``store/spool.py``) and to a list in memory; a
background task writes what has gathered every ``flush_seconds`` (or as soon as ``batch`` rows
wait) in one transaction, then deletes the spool segment that held them. While the database
refuses writes, the rows wait in the spool, not in memory: the writer tries again with a
backoff (doubling, at most ``MAX_RETRY_SECONDS``) and writes them from the disk when it can,
with one log line when the database goes and one when it is back. How a batch reaches the
database: ``store/ledger_writes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from llmrelay.store.database import Database
from llmrelay.store.ledger_writes import DriverWrites, SQLiteWrites, Table, Writes
from llmrelay.store.schema import UsageRow
from llmrelay.store.spool import Spool, read_segment, sync

log = logging.getLogger(__name__)

#: the usage table's columns, each a key of a row
USAGE_FIELDS = (
    "created_at",  # seconds since the epoch, as ``time.time()`` gives it
    "request_id",
    "key_id",
    "endpoint",  # the API the request came in by: chat, responses, messages...
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
USAGE = Table(
    UsageRow,
    USAGE_FIELDS,
    conflict="request_id",
    times=("created_at",),
    booleans=("stream", "disconnected"),
)
#: one request's row, by the names of ``USAGE_FIELDS``
UsageRecord = dict[str, Any]
#: rows kept in memory at most while the database is slow; beyond, they are read from the disk
MEMORY_ROWS = 20_000
#: rows a spool segment holds at most while the database is away (each is read back whole)
SEGMENT_ROWS = 20_000
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
#: seconds a stop gives the ledger's last write
CLOSE_SECONDS = 5.0


class Ledger:
    """``spool``: where rows wait on disk; without one (a command that only reads usage), rows
    wait in memory."""

    def __init__(
        self,
        database: Database,
        *,
        spool: Spool | None = None,
        flush_seconds: float = 0.5,
        batch: int = 500,
    ) -> None:
        self._db = database
        self._spool = spool
        self._flush_seconds = flush_seconds
        self._batch = batch
        self._pending: list[UsageRecord] = []
        # rows wait on disk only (the database refused them, or an earlier run left some)
        self._on_disk = spool is not None and bool(spool.segments())
        self._retry_seconds = 0.0  # while the database refuses writes
        self._failing_since: float | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        path = database.sqlite_path
        self._writes: Writes = (
            SQLiteWrites(path, USAGE) if path is not None else DriverWrites(database.engine, USAGE)
        )

    def record(self, record: UsageRecord) -> None:
        """Keep a row: on disk at once, in the database soon. Never waits."""
        spool = self._spool
        if spool is not None:
            spool.append(record)
            if self._on_disk:
                if spool.rows >= SEGMENT_ROWS:
                    spool.rotate()
                return
            if len(self._pending) >= MEMORY_ROWS:  # the database is slow: read them back later
                self._on_disk, self._pending = True, []
                return
        self._pending.append(record)
        if len(self._pending) >= self._batch and not self._retry_seconds:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._write_in_batches())

    async def _write_in_batches(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                waiting = self._retry_seconds or self._flush_seconds
                await asyncio.wait_for(self._wake.wait(), waiting)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what waits; a failure is logged (once an outage) and the rows kept."""
        if self._spool is None:
            await self._write_from_memory()
        elif self._on_disk:
            await self._write_from_disk(self._spool)
        elif self._pending:
            rows, self._pending = self._pending, []
            # these rows, and no others, are in the segment that ends here
            segment = self._spool.rotate()
            try:
                await self._writes.write(rows)
            except BaseException as exc:
                self._on_disk = True  # they are in the segment: the next try reads it
                if not isinstance(exc, Exception):
                    raise
                await self._failed(exc, segment)
                return
            if segment is not None:
                segment.unlink()
            self._written(len(rows))

    async def write_spool(self) -> int:
        """Write what an earlier run left in the spool (at start); the rows written."""
        if self._spool is None or not self._on_disk:
            return 0
        return await self._write_from_disk(self._spool)

    async def _write_from_disk(self, spool: Spool) -> int:
        """Write every closed segment's rows, oldest first, deleting each once written; the
        rows written. The rows in memory are in those segments too: rows from now on are kept
        in memory again."""
        self._pending, self._on_disk = [], False
        spool.rotate()
        written = 0
        for segment in spool.segments():
            rows = await asyncio.to_thread(read_segment, segment)
            try:
                await self._writes.write(rows)
            except BaseException as exc:
                self._on_disk, self._pending = True, []  # the rows since are in a segment
                if not isinstance(exc, Exception):
                    raise
                await self._failed(exc, segment)
                return written
            segment.unlink()
            written += len(rows)
        self._written(written)
        return written

    async def _write_from_memory(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await self._writes.write(rows)
        except BaseException as exc:  # cancelled too: the rows go back, none is lost
            self._pending[:0] = rows
            if not isinstance(exc, Exception):
                raise
            await self._failed(exc, None)

    async def _failed(self, exc: Exception, segment: Path | None) -> None:
        """Try again later, waiting longer each time; tell of the outage once."""
        self._retry_seconds = min(
            MAX_RETRY_SECONDS, max(FIRST_RETRY_SECONDS, self._retry_seconds * 2)
        )
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            where = f"on disk in {self._spool.directory}" if self._spool else "in memory"
            log.warning(
                "the usage ledger cannot write to the database (%s: %s); its rows wait %s, "
                "and writing is tried again with a backoff",
                type(exc).__name__,
                exc,
                where,
            )
        if segment is not None:  # rows the database does not have: onto the disk itself
            await asyncio.to_thread(sync, segment)

    def _written(self, rows: int) -> None:
        if self._failing_since is not None:
            log.info(
                "the usage ledger writes to the database again after %.1f s (%d rows)",
                time.monotonic() - self._failing_since,
                rows,
            )
            self._failing_since = None
        self._retry_seconds = 0.0

    async def aclose(self) -> None:
        """Let the writer finish its write, then write what is left, for at most
        ``CLOSE_SECONDS`` (what is not written stays in the spool, for the next start)."""
        self._closing = True
        self._wake.set()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                if self._task is not None:
                    await self._task
                self._retry_seconds = 0.0
                await self.flush()
        except TimeoutError:
            self._failing_since = self._failing_since or time.monotonic()
        await self._writes.aclose()
        if self._spool is not None:
            self._spool.close()
            if self._failing_since is not None:
                log.error(
                    "usage rows could not all be written to the database: they stay in %s and "
                    "are written at the next start",
                    self._spool.directory,
                )
        elif self._pending:
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
