"""The usage ledger's writes on SQLite and on PostgreSQL: every row of a batch, as it was given."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
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
