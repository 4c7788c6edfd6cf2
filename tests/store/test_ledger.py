"""The usage ledger's writes on SQLite and on PostgreSQL: every row of a batch, as it was given."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from llmrelay.config import ConfigError, load_config
from llmrelay.store.database import Database
from llmrelay.store.ledger import USAGE_FIELDS, Ledger, UsageRecord
from llmrelay.store.schema import UsageRow


def record(key_id: str, n: int, started: float) -> UsageRecord:
    failed = n % 3 == 0
    return {
        "created_at": started + n / 1000,
        "request_id": f"req_{key_id}_{n}",
        "key_id": key_id,
        "endpoint": "responses" if n % 4 == 0 else "chat",
        "model_requested": "gpt-4o-mini",
        "model_served": None if failed else "served-model",
        "backend": "openai:http://127.0.0.1:9/v1",
        "prompt_tokens": n,
        "completion_tokens": 2 * n,
        "cached_tokens": n // 2,
        "cache_write_tokens": n // 4,
        "cost_nanousd": None if n % 7 == 0 else 1000 * n + 1,
        "usage_source": "reported",
        "status": 502 if failed else 200,
        "error_code": "upstream_error" if failed else None,
        "stream": int(n % 2 == 0),
        "ttft_ms": None if failed else n / 7,
        "latency_ms": n * 1.5,
        "disconnected": int(n % 5 == 0),
    }


# 85 rows: one of each size a SQLite batch is cut in (64 + 16 + 4 + 1); 700: many of them
@pytest.mark.parametrize("count", [1, 85, 700])
async def test_a_batch_is_written_row_for_row(database: Database, count: int) -> None:
    ledger = Ledger(database)
    key_id = secrets.token_hex(8)
    started = time.time()
    records = [record(key_id, n, started) for n in range(count)]
    for one in records:
        ledger.record(one)
    await ledger.flush()

    async with database.session() as session:
        rows = await session.scalars(
            select(UsageRow).where(UsageRow.key_id == key_id).order_by(UsageRow.prompt_tokens)
        )
        written = [{field: getattr(row, field) for field in USAGE_FIELDS} for row in rows]
    assert len(written) == count
    for got, want in zip(written, records, strict=True):
        at = datetime.fromtimestamp(want.pop("created_at"), UTC).replace(tzinfo=None)
        assert abs((got.pop("created_at") - at).total_seconds()) < 2e-6  # microseconds, as stored
        assert got == want
    assert await ledger.spent(key_id, None) == sum(3 * n for n in range(count))
    await ledger.aclose()


def test_an_in_memory_sqlite_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMRELAY_DATABASE_URL", raising=False)
    config = tmp_path / "llmrelay.yaml"
    config.write_text("database_url: 'sqlite+aiosqlite:///:memory:'\n")
    with pytest.raises(ConfigError, match="database_url"):
        load_config(config)


async def test_daily_totals_match_the_rows_and_count_a_replayed_row_once(
    database: Database,
) -> None:
    """Reports and budgets read the daily totals, which every write keeps: they add up what
    the rows say, and a batch written again (the spool after a crash) changes nothing."""
    ledger = Ledger(database)
    key_id = secrets.token_hex(8)
    records = [record(key_id, n, time.time()) for n in range(1, 200)]
    for one in records:
        ledger.record(dict(one))
    await ledger.flush()
    for one in records[:50]:  # the same request ids again
        ledger.record(dict(one))
    await ledger.flush()

    report = await ledger.report(key_id=key_id)
    totals = report["totals"]
    priced = [r["cost_nanousd"] for r in records if r["cost_nanousd"] is not None]
    assert totals["requests"] == len(records)
    assert totals["errors"] == sum(r["status"] >= 400 for r in records)
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in records)
    assert totals["cached_tokens"] == sum(r["cached_tokens"] for r in records)
    assert totals["cache_write_tokens"] == sum(r["cache_write_tokens"] for r in records)
    assert totals["cost_nanousd"] == sum(priced)
    assert totals["unpriced_requests"] == len(records) - len(priced)
    assert totals["cost_usd"] == f"{sum(priced) / 1e9:.9f}"
    assert [row["date"] for row in report["rows"]] == [time.strftime("%Y-%m-%d", time.gmtime())]
    assert await ledger.spent(key_id, None) == sum(3 * r["prompt_tokens"] for r in records)
    assert await ledger.spent_nanousd(key_id, None) == sum(priced)

    month = await ledger.days(datetime.now(UTC) - timedelta(days=29))
    assert len(month) == 30 and month[-1]["requests"] >= len(records)  # (and other tests')
    assert month[-1]["start"] == time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())

    by_model = await ledger.report(group_by="model", key_id=key_id)
    assert by_model["rows"] == [{"model": "gpt-4o-mini", **totals}]
    by_key = await ledger.report(group_by="key", model="gpt-4o-mini")
    assert {"key_id": key_id, **totals} in by_key["rows"]
    await ledger.aclose()


async def test_old_rows_are_deleted_and_their_daily_totals_stay(database: Database) -> None:
    ledger = Ledger(database)
    key_id = secrets.token_hex(8)
    now = time.time()
    old = [record(key_id, n, now - 40 * 86400) for n in range(1, 30)]
    new = [record(key_id, n, now) for n in range(30, 40)]
    for one in old + new:
        ledger.record(one)
    await ledger.flush()
    before = await ledger.report(key_id=key_id)

    assert await ledger.delete_older(30) >= len(old)

    recent = await ledger.recent(key_id=key_id, limit=1000)
    assert sorted(r["prompt_tokens"] for r in recent) == list(range(30, 40))
    assert await ledger.report(key_id=key_id) == before  # the totals outlive the rows
    assert len(before["rows"]) == 2  # two days: 40 days ago, and today
    await ledger.aclose()


async def test_the_timeline_adds_up_the_last_hour_by_span(database: Database) -> None:
    ledger = Ledger(database)
    key_id = secrets.token_hex(8)
    now = time.time()
    # one request a minute for the last 30 minutes, each of them 10 + 20 tokens
    for minute in range(30):
        one = record(key_id, 10, now - minute * 60 - 30)
        one["request_id"] += f"_{minute}"
        one["status"] = 500 if minute == 5 else 200
        ledger.record(one)
    await ledger.flush()
    since = datetime.fromtimestamp(now - 3600, UTC).replace(tzinfo=None)
    spans = await ledger.timeline(since, 60)
    assert len(spans) == 60
    assert sum(s["requests"] for s in spans) >= 30  # other tests' rows may be in the hour
    mine = [s for s in spans[30:] if s["models"].get("gpt-4o-mini")]
    assert len(mine) >= 29  # a span a minute (two may share one at the edge of a span)
    assert sum(s["errors"] for s in spans) >= 1
    assert all(s["latency_ms"] is None or s["latency_ms"] > 0 for s in spans)
    await ledger.aclose()
