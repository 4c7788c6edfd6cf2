"""Stored responses on SQLite and on PostgreSQL: written in batches, read back by a store that
has none of them in memory (another instance, or after a restart), gone once expired."""

from __future__ import annotations

import secrets
import time
from typing import Any

from llmrelay.store.database import Database
from llmrelay.store.responses import ResponseStore


def response(number: int, text: str = "Hello, ünïcode ✓") -> dict[str, Any]:
    return {
        "id": f"resp_{secrets.token_hex(8)}_{number}",
        "object": "response",
        "model": "served-model",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}],
        "usage": {"input_tokens": number, "output_tokens": 2},
    }


async def test_responses_come_back_as_they_were_saved(database: Database) -> None:
    writer = ResponseStore(database, retention_days=30)
    key = secrets.token_hex(8)
    saved = [response(n) for n in range(100)]  # more than one batch of SQLite's INSERTs
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]
    for n, body in enumerate(saved):
        previous = saved[n - 1]["id"] if n else None
        writer.save(body, key_id=key, input_items=items, previous_response_id=previous)
    writer.save_native("resp_native_" + key, key_id=key, model="gpt-5")
    await writer.flush()
    await writer.flush()  # nothing pending: nothing written twice
    reader = ResponseStore(database, retention_days=30)  # nothing in memory
    last = await reader.get(saved[-1]["id"], key)
    assert last is not None and last.body == saved[-1] and last.input == items
    assert not last.native and last.previous_response_id == saved[-2]["id"]
    conversation = await reader.conversation(last)
    assert len(conversation) == 200  # each turn's input and output, oldest first
    assert conversation[1] == saved[0]["output"][0]
    native = await reader.get("resp_native_" + key, key)
    assert native is not None and native.native and native.model == "gpt-5" and native.body is None
    assert await reader.get(saved[0]["id"], "another-key") is None
    assert await reader.delete(saved[0]["id"], key)
    assert await ResponseStore(database, retention_days=30).get(saved[0]["id"], key) is None
    for store in (writer, reader):
        await store.aclose()


async def test_an_expired_response_is_unknown_and_purged(database: Database) -> None:
    store = ResponseStore(database, retention_days=1 / 86400)  # one second
    key = secrets.token_hex(8)
    body = response(1)
    store.save(body, key_id=key, input_items=[], previous_response_id=None)
    await store.flush()
    fresh = ResponseStore(database, retention_days=1)
    assert await fresh.get(body["id"], key) is not None
    time.sleep(1.1)
    assert await ResponseStore(database, retention_days=1).get(body["id"], key) is None
    await store.purge()
    assert await store.delete(body["id"], key) is False
    for one in (store, fresh):
        await one.aclose()
