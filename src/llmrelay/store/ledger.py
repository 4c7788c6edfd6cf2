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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, func, select

from llmrelay.pricing.price import usd
from llmrelay.store.database import Database
from llmrelay.store.ledger_writes import DriverWrites, SQLiteWrites, Table, Writes
from llmrelay.store.rollup import TOTAL_COLUMNS
from llmrelay.store.schema import UsageDay, UsageRow, as_stored, utcnow
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
    "cached_tokens",  # of the prompt's, read from a cache
    "cache_write_tokens",  # of the prompt's, written to a cache
    "cost_nanousd",  # nano-dollars; None: tokens at no known price
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
    daily=True,
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

    def unwritten(self) -> tuple[int, int]:
        """Rows waiting in memory, and bytes of rows waiting on disk, for the database."""
        on_disk = self._spool.size() if self._spool is not None and self._on_disk else 0
        return (0 if self._on_disk else len(self._pending)), on_disk

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
        """The tokens a key used since the UTC day of ``since`` (ever, for None), from the
        daily totals of written rows (budget periods begin at midnight)."""
        tokens = func.sum(UsageDay.prompt_tokens + UsageDay.completion_tokens)
        query = select(tokens).where(UsageDay.key_id == key_id)
        if since is not None:
            query = query.where(UsageDay.day >= _day(since))
        async with self._db.session() as session:
            return int(await session.scalar(query) or 0)

    async def spent_nanousd(self, key_id: str, since: datetime | None) -> int:
        """What a key's requests cost since the UTC day of ``since`` (ever, for None), in
        nano-dollars, from the daily totals of written rows."""
        query = select(func.sum(UsageDay.cost_nanousd)).where(UsageDay.key_id == key_id)
        if since is not None:
            query = query.where(UsageDay.day >= _day(since))
        async with self._db.session() as session:
            return int(await session.scalar(query) or 0)

    async def report(
        self,
        *,
        group_by: str = "day",
        key_id: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """Totals, and one row per UTC day, key or model (``group_by``), of the requests that
        match: whole UTC days, from the day of ``since`` to the day before ``until``'s (a time
        within a day counts its whole day). Read from the daily totals."""
        filters = []
        if key_id is not None:
            filters.append(UsageDay.key_id == ("" if key_id == CONFIG_KEY else key_id))
        if model is not None:
            filters.append(UsageDay.model == model)
        if since is not None:
            filters.append(UsageDay.day >= _day(since))
        if until is not None:
            filters.append(UsageDay.day < _day(until))
        group = GROUPS[group_by]
        async with self._db.session() as session:
            total = (await session.execute(select(*_TOTALS).where(*filters))).one()
            grouped = await session.execute(
                select(group.label("group"), *_TOTALS)
                .where(*filters)
                .group_by(group)
                .order_by(group)
            )
            rows = [{REPORT_COLUMN[group_by]: _group(row.group), **_totals(row)} for row in grouped]
        return {"group_by": group_by, "totals": _totals(total), "rows": rows}

    async def recent(
        self,
        *,
        limit: int = 100,
        key_id: str | None = None,
        model: str | None = None,
        errors_only: bool = False,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """The latest rows, newest first (``before_id``: older than that row, for paging;
        ``key_id`` ``config``: the config's keys)."""
        query = select(UsageRow).order_by(UsageRow.id.desc()).limit(limit)
        if key_id == CONFIG_KEY:
            query = query.where(UsageRow.key_id.is_(None))
        elif key_id is not None:
            query = query.where(UsageRow.key_id == key_id)
        if model is not None:
            query = query.where(UsageRow.model_requested == model)
        if errors_only:
            query = query.where(UsageRow.status >= 400)
        if before_id is not None:
            query = query.where(UsageRow.id < before_id)
        async with self._db.session() as session:
            found = (await session.scalars(query)).all()
        return [_public_row(row) for row in found]

    async def timeline(self, since: datetime, buckets: int) -> list[dict[str, Any]]:
        """The rows since ``since`` in ``buckets`` equal spans up to now, added up in the
        database: each span's requests, errors, tokens, cost and mean latency, and its requests
        by model (for the console's charts)."""
        span = max((utcnow() - since).total_seconds() / buckets, 1.0)
        if self._db.engine.dialect.name == "sqlite":
            seconds = (func.julianday(UsageRow.created_at) - func.julianday(since)) * 86400
        else:
            seconds = func.extract("epoch", UsageRow.created_at - since)
        bucket = func.floor(seconds / span)
        query = (
            select(
                bucket.label("bucket"),
                UsageRow.model_requested,
                func.count(),
                func.sum(case((UsageRow.status >= 400, 1), else_=0)),
                func.sum(UsageRow.prompt_tokens + UsageRow.completion_tokens),
                func.coalesce(func.sum(UsageRow.cost_nanousd), 0),
                func.sum(UsageRow.latency_ms),
            )
            .where(UsageRow.created_at >= since)
            .group_by(bucket, UsageRow.model_requested)
        )
        async with self._db.session() as session:
            found = (await session.execute(query)).all()
        spans = [_span(since + timedelta(seconds=span * i)) for i in range(buckets)]
        for at, model_name, requests, errors, tokens, cost, latency in found:
            into = spans[min(buckets - 1, max(0, int(at)))]
            into["requests"] += requests
            into["errors"] += int(errors)
            into["tokens"] += int(tokens)
            into["cost_nanousd"] += int(cost)
            into["latency_ms"] += float(latency)
            into["models"][model_name] = into["models"].get(model_name, 0) + requests
        for into in spans:
            into["latency_ms"] = into["latency_ms"] / into["requests"] if into["requests"] else None
        return spans

    async def days(self, since: datetime) -> list[dict[str, Any]]:
        """Each UTC day from the day of ``since`` to today, as ``timeline``'s spans (without
        latency), from the daily totals: a month's charts read no rows."""
        report = await self.report(group_by="day", since=since)
        by_day = {row["date"]: row for row in report["rows"]}
        spans = []
        day = as_stored(since).replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= utcnow():
            span = _span(day)
            if (totals := by_day.get(_day(day))) is not None:
                span["requests"], span["errors"] = totals["requests"], totals["errors"]
                span["tokens"] = totals["total_tokens"]
                span["cost_nanousd"] = totals["cost_nanousd"]
            span["latency_ms"] = None
            spans.append(span)
            day += timedelta(days=1)
        return spans

    async def delete_older(self, days: float) -> int:
        """Delete the rows older than ``days`` (their daily totals stay), a batch at a time so
        that writers wait little; the rows deleted."""
        cutoff = utcnow() - timedelta(days=days)
        deleted = 0
        while True:
            async with self._db.session() as session, session.begin():
                ids = select(UsageRow.id).where(UsageRow.created_at < cutoff).limit(DELETE_BATCH)
                result = await session.execute(delete(UsageRow).where(UsageRow.id.in_(ids)))
            gone = result.rowcount or 0  # type: ignore[attr-defined]
            deleted += gone
            if gone < DELETE_BATCH:
                return deleted


#: how the report groups, and the column that names each row's group
GROUPS = {"day": UsageDay.day, "key": UsageDay.key_id, "model": UsageDay.model}
REPORT_COLUMN = {"day": "date", "key": "key_id", "model": "model"}
#: what a report names the keys from the config (stored as "" in the daily totals)
CONFIG_KEY = "config"
#: rows deleted in one transaction by the retention
DELETE_BATCH = 10_000
_TOTALS = [
    func.coalesce(func.sum(getattr(UsageDay, name)), 0).label(name) for name in TOTAL_COLUMNS
]


def _span(start: datetime) -> dict[str, Any]:
    return {
        "start": start.isoformat() + "Z",
        "requests": 0,
        "errors": 0,
        "tokens": 0,
        "cost_nanousd": 0,
        "latency_ms": 0.0,
        "models": {},
    }


def _day(moment: datetime) -> str:
    return as_stored(moment).strftime("%Y-%m-%d")


def _group(value: str) -> str:
    return value or CONFIG_KEY


def _totals(row: Any) -> dict[str, Any]:
    prompt, completion = int(row.prompt_tokens), int(row.completion_tokens)
    cost = int(row.cost_nanousd)
    return {
        "requests": int(row.requests),
        "errors": int(row.errors),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": int(row.cached_tokens),
        "cache_write_tokens": int(row.cache_write_tokens),
        "cost_usd": usd(cost),
        "cost_nanousd": cost,
        "unpriced_requests": int(row.unpriced),
    }


def _public_row(row: UsageRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at.isoformat() + "Z",
        "request_id": row.request_id,
        "key_id": row.key_id or CONFIG_KEY,
        "endpoint": row.endpoint,
        "model_requested": row.model_requested,
        "model_served": row.model_served,
        "deployment": row.backend,
        "status": row.status,
        "error_code": row.error_code,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "cost_usd": None if row.cost_nanousd is None else usd(row.cost_nanousd),
        "usage_source": row.usage_source,
        "stream": row.stream,
        "ttft_ms": row.ttft_ms,
        "latency_ms": row.latency_ms,
        "disconnected": row.disconnected,
    }
