"""The key store on SQLite and on PostgreSQL: migrations, create, change, revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from llmrelay.store.database import Database, sqlite_url
from llmrelay.store.keys import KeyStore, SettingError, hash_key
from llmrelay.store.schema import utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[KeyStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else postgres_url
    database = Database(url)
    await database.migrate()
    await database.migrate()  # a second start finds the schema current
    yield KeyStore(database)
    await database.aclose()


async def test_a_key_is_stored_only_as_its_hash(store: KeyStore) -> None:
    record, key = await store.create("alice", models=["gpt-4o-mini"], rpm=5, metadata={"team": "a"})
    assert key.startswith("sk-") and len(key) >= 43
    assert record.hash == hash_key(key) and record.prefix == key[:8]
    assert record.status() == "active"
    shown = record.public()
    assert "hash" not in shown and key not in str(shown)
    again = await store.get(record.id)
    assert again is not None
    assert (again.models, again.rpm, again.metadata) == (("gpt-4o-mini",), 5, {"team": "a"})


async def test_update_and_revoke(store: KeyStore) -> None:
    record, _ = await store.create("bob", budget_tokens=100)
    assert record.budget_period == "total", "a budget without a period never resets"
    before = utcnow()
    changed = await store.update(record.id, name="bobby", tpm=1000, models=None)
    assert changed is not None and (changed.name, changed.tpm) == ("bobby", 1000)
    assert [r.id for r in await store.changed_since(before)] == [record.id]
    revoked = await store.revoke(record.id)
    assert revoked is not None and revoked.status() == "revoked"
    assert await store.revoke("key_missing") is None


async def test_expiry(store: KeyStore) -> None:
    record, _ = await store.create("carol", expires_at=utcnow() - timedelta(seconds=1))
    assert record.status() == "expired"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("rpm", 0),
        ("tpm", "many"),
        ("budget_tokens", 2**63),
        ("budget_period", "week"),
        ("models", "gpt-4o"),
        ("colour", 1),
    ],
)
async def test_settings_are_checked(store: KeyStore, setting: str, value: object) -> None:
    with pytest.raises(SettingError) as caught:
        await store.create("dave", **{setting: value})
    assert caught.value.field == setting


async def test_large_limits_and_names(store: KeyStore) -> None:
    record, _ = await store.create("e" * 200, tpm=10**12, budget_tokens=2**53 - 1)
    assert (record.tpm, record.budget_tokens) == (10**12, 2**53 - 1)
    again = await store.get(record.id)
    assert again is not None and again.budget_tokens == 2**53 - 1
    # beyond it, a counter at the limit plus a request's charge could pass what Redis holds
    with pytest.raises(SettingError) as too_large:
        await store.update(record.id, budget_tokens=2**63 - 1)
    assert too_large.value.field == "budget_tokens"
    for name in ("", "  ", "e" * 201):
        with pytest.raises(SettingError) as caught:
            await store.update(record.id, name=name)
        assert caught.value.field == "name"
