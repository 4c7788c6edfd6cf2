"""The usage ledger as it grows: reports over 5 million rows, and what keeping the daily totals
costs its writer. On SQLite and on PostgreSQL.

Fills ``--rows`` rows (5,000,000 by default) over the last 30 days, 200 keys and 20 models,
straight in SQL (generate_series on PostgreSQL, a recursive CTE on SQLite), and adds them up
into the daily totals as the ledger does. Then times, best of five:

- a month's report by key, as ``llmrelay usage --by key`` and ``/admin/usage`` give it (from
  the daily totals), against the same report added up from the rows themselves, the baseline:
  what a ledger without daily totals would do;
- a month's report by model, and one key's report by day;
- the console's recent requests of one key (its newest 200 rows, by index), its last day's
  timeline (the rows of the last 24 hours, added up in the database), and its month by day
  (from the daily totals).

And the writer: 200,000 rows in batches of 500 with the daily totals kept, against the same
without (``daily=False``), as a ratio.

Run from the repository: .venv/bin/python bench/ledger.py [--rows N] [--postgres URL]
[--database sqlite|postgresql]
(default: the machine's PostgreSQL at 127.0.0.1:5432, in a database of its own that it drops
at the end). Filling 5 million rows takes a few minutes on each database.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src")]

from sqlalchemy import func, select  # noqa: E402

from llmrelay.store.database import Database, sqlite_url  # noqa: E402
from llmrelay.store.ledger import USAGE, Ledger  # noqa: E402
from llmrelay.store.ledger_writes import DriverWrites, SQLiteWrites, Table  # noqa: E402
from llmrelay.store.rollup import rollup_sql  # noqa: E402
from llmrelay.store.schema import UsageRow, utcnow  # noqa: E402

KEYS, MODELS, DAYS = 200, 20, 30
WRITES, BATCH = 200_000, 500

#: the rows, made in the database: row n is key n % KEYS, model n % MODELS, spread evenly over
#: the last DAYS days, a tenth of them failed, a seventh unpriced
_COLUMNS = (
    "created_at, request_id, key_id, endpoint, model_requested, model_served, backend, "
    "prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cost_nanousd, "
    "usage_source, status, error_code, stream, ttft_ms, latency_ms, disconnected"
)
_FILL = {
    "postgresql": f"""
        INSERT INTO usage ({_COLUMNS})
        SELECT now() AT TIME ZONE 'UTC'
                   - interval '1 second' * (n::float8 * {DAYS} * 86400 / {{rows}}),
               'req_bench_' || n, 'key_' || (n % {KEYS}), 'chat', 'model-' || (n % {MODELS}),
               'model-' || (n % {MODELS}), 'model#0 (openai)', 100 + n % 50, 20 + n % 30,
               n % 40, 0, CASE WHEN n % 7 = 0 THEN NULL ELSE 1000 * (n % 500) END, 'reported',
               CASE WHEN n % 10 = 0 THEN 502 ELSE 200 END, NULL, n % 2 = 0, 12.5, 120.0, false
        FROM generate_series(1, {{rows}}) AS n""",
    "sqlite": f"""
        WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {{rows}})
        INSERT INTO usage ({_COLUMNS})
        SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (n * {DAYS} * 86400 / {{rows}})
                        || ' seconds') || '000',
               'req_bench_' || n, 'key_' || (n % {KEYS}), 'chat', 'model-' || (n % {MODELS}),
               'model-' || (n % {MODELS}), 'model#0 (openai)', 100 + n % 50, 20 + n % 30,
               n % 40, 0, CASE WHEN n % 7 = 0 THEN NULL ELSE 1000 * (n % 500) END, 'reported',
               CASE WHEN n % 10 = 0 THEN 502 ELSE 200 END, NULL, n % 2, 12.5, 120.0, 0
        FROM seq""",
}


async def fill(database: Database, rows: int) -> float:
    """The rows and their daily totals; the seconds it took."""
    started = time.perf_counter()
    dialect = database.engine.dialect.name
    async with database.engine.begin() as connection:
        await connection.exec_driver_sql(_FILL[dialect].format(rows=rows))
        await connection.exec_driver_sql(rollup_sql(dialect, since_id=0))
    async with database.engine.begin() as connection:
        await connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


async def best(work: Callable[[], Awaitable[Any]], times: int = 5) -> float:
    """The fastest of ``times`` runs, in milliseconds (the first warms the caches)."""
    await work()
    runs = []
    for _ in range(times):
        started = time.perf_counter()
        await work()
        runs.append(time.perf_counter() - started)
    return min(runs) * 1000


async def from_rows(database: Database, since: Any) -> list[Any]:
    """The month's report by key added up from the rows: the baseline."""
    query = (
        select(
            UsageRow.key_id,
            func.count(),
            func.sum(UsageRow.prompt_tokens),
            func.sum(UsageRow.completion_tokens),
            func.sum(UsageRow.cost_nanousd),
        )
        .where(UsageRow.created_at >= since)
        .group_by(UsageRow.key_id)
    )
    async with database.session() as session:
        return list((await session.execute(query)).all())


async def reports(database: Database, label: str) -> None:
    ledger = Ledger(database)
    since = utcnow() - timedelta(days=DAYS)
    by_key = await ledger.report(group_by="key", since=since)
    assert len(by_key["rows"]) == KEYS
    rows = by_key["totals"]["requests"]
    timings = {
        "month by key (daily totals)": await best(
            lambda: ledger.report(group_by="key", since=since)
        ),
        "month by key (from the rows)": await best(lambda: from_rows(database, since), 3),
        "month by model": await best(lambda: ledger.report(group_by="model", since=since)),
        "one key, by day": await best(lambda: ledger.report(key_id="key_7", since=since)),
        "recent: one key's newest 200": await best(
            lambda: ledger.recent(key_id="key_7", limit=200)
        ),
        "timeline: the last day, 24 spans": await best(
            lambda: ledger.timeline(utcnow() - timedelta(days=1), 24)
        ),
        "days: the last month (daily totals)": await best(lambda: ledger.days(since)),
    }
    print(f"\n{label}: {rows:,} rows")
    baseline = timings["month by key (from the rows)"]
    for name, ms in timings.items():
        print(f"  {name:<36} {ms:10.1f} ms   {ms / baseline:8.4f} of the rows' report")


async def writer(database: Database) -> None:
    """Rows a second written with the daily totals kept, and without."""
    path = database.sqlite_path
    rates = {}
    for daily in (False, True, False, True):
        table = Table(**{**USAGE.__dict__, "daily": daily})
        writes = SQLiteWrites(path, table) if path else DriverWrites(database.engine, table)
        tag = secrets.token_hex(4)
        started = time.perf_counter()
        for start in range(0, WRITES, BATCH):
            await writes.write([_row(tag, n) for n in range(start, start + BATCH)])
        rates.setdefault(daily, []).append(WRITES / (time.perf_counter() - started))
        await writes.aclose()
    without, kept = max(rates[False]), max(rates[True])
    print(
        f"  writer: {without:,.0f} rows/s without daily totals, {kept:,.0f} with: "
        f"{kept / without:.3f}"
    )


def _row(tag: str, n: int) -> dict[str, Any]:
    return {
        "created_at": time.time(),
        "request_id": f"req_w{tag}{n}",
        "key_id": f"key_{n % KEYS}",
        "endpoint": "chat",
        "model_requested": f"model-{n % MODELS}",
        "model_served": f"model-{n % MODELS}",
        "backend": "model#0 (openai)",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "cost_nanousd": 1000,
        "usage_source": "reported",
        "status": 200,
        "error_code": None,
        "stream": 0,
        "ttft_ms": None,
        "latency_ms": 100.0,
        "disconnected": 0,
    }


async def measure(url: str, rows: int, label: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
        print(f"{label}: filled {rows:,} rows in {await fill(database, rows):.0f} s")
        await reports(database, label)
        await writer(database)
    finally:
        await database.aclose()


async def run(rows: int, postgres: str, databases: list[str]) -> None:
    if "sqlite" in databases:
        with tempfile.TemporaryDirectory() as directory:
            await measure(sqlite_url(Path(directory)), rows, "SQLite")
    if "postgresql" in databases:
        name = f"llmrelay_bench_ledger_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(postgres.replace("+asyncpg", "") + "/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await measure(f"{postgres}/{name}", rows, "PostgreSQL")
        finally:
            await admin.execute(f'DROP DATABASE "{name}"')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        action="append",
        help="only this database (may be given again; default: both)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.postgres, args.database or ["sqlite", "postgresql"]))


if __name__ == "__main__":
    main()
