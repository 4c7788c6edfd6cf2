"""``ResponseStore``: the Responses API's stored responses (``store: true``), for
``previous_response_id``, retrieval, deletion and their input items, kept
``responses.retention_days`` days.

A response is kept in memory at once (a conversation's next turn may come straight after) and
written to the database in batches, off the request path, as the ledger writes its rows
(``ledger_writes``, not the ORM); reads look in memory first. A response that a backend made
itself (``responses: native``) is stored as whose it is and which model made it: the backend
keeps the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlalchemy import delete

from llmrelay.gateway.periodic import Periodic
from llmrelay.store.database import Database
from llmrelay.store.ledger_writes import DriverWrites, SQLiteWrites, Table, Writes
from llmrelay.store.schema import StoredResponseRow, utcnow

log = logging.getLogger(__name__)
#: responses kept in memory (those not written yet, and the latest written)
CACHED = 1_000
#: the longest chain of previous responses a conversation is read back through
MAX_TURNS = 1000
PURGE_SECONDS = 3600.0
RESPONSES = Table(
    StoredResponseRow,
    (
        "id",
        "key_id",
        "model",
        "previous_response_id",
        "native",
        "input",
        "body",
        "created_at",
        "expires_at",
    ),
    conflict="id",
    times=("created_at", "expires_at"),
    json=("input", "body"),
)


@dataclass
class StoredResponse:
    id: str
    key_id: str | None
    model: str
    previous_response_id: str | None
    native: bool
    input: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    expires_at: float = 0.0  # seconds since the epoch
    written: bool = False

    @property
    def output(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("output") or [])


class ResponseStore:
    def __init__(
        self, database: Database, *, retention_days: float, flush_seconds: float = 0.2
    ) -> None:
        self._db = database
        self._retention = retention_days * 86400.0
        path = database.sqlite_path
        self._writes: Writes = (
            SQLiteWrites(path, RESPONSES)
            if path is not None
            else DriverWrites(database.engine, RESPONSES)
        )
        self._flush_seconds = flush_seconds
        self._cache: OrderedDict[str, StoredResponse] = OrderedDict()
        self._pending: list[StoredResponse] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._failing = False
        self._purging = Periodic(PURGE_SECONDS, self.purge, "purging expired responses")

    def save(
        self,
        response: dict[str, Any],
        *,
        key_id: str | None,
        input_items: list[dict[str, Any]],
        previous_response_id: str | None,
    ) -> None:
        """Keep a response made here (never waits)."""
        stored = StoredResponse(
            id=response["id"],
            key_id=key_id,
            model=response["model"],
            previous_response_id=previous_response_id,
            native=False,
            input=input_items,
            body=response,
            expires_at=time.time() + self._retention,
        )
        self._keep(stored)

    def save_native(self, response_id: str, *, key_id: str | None, model: str) -> None:
        """Record whose a response a backend made itself is, and which model made it."""
        stored = StoredResponse(response_id, key_id, model, None, True)
        stored.expires_at = time.time() + self._retention
        self._keep(stored)

    def _keep(self, stored: StoredResponse) -> None:
        self._cache[stored.id] = stored
        self._pending.append(stored)
        while len(self._cache) > CACHED:
            oldest = next(iter(self._cache.values()))
            if not oldest.written:
                break
            self._cache.popitem(last=False)

    async def get(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        """The response, if it is the key's own and has not expired (another key's is unknown
        to it)."""
        stored = self._cache.get(response_id)
        if stored is None:
            async with self._db.session() as session:
                row = await session.get(StoredResponseRow, response_id)
            if row is None:
                return None
            stored = StoredResponse(
                row.id,
                row.key_id,
                row.model,
                row.previous_response_id,
                row.native,
                row.input or [],
                row.body,
                row.expires_at.replace(tzinfo=UTC).timestamp(),  # kept as naive UTC
                written=True,
            )
        if stored.key_id != key_id or stored.expires_at <= time.time():
            return None
        return stored

    async def conversation(self, stored: StoredResponse) -> list[dict[str, Any]]:
        """The items of a conversation up to and including a response: every earlier turn's
        input and output, oldest first."""
        chain = [stored]
        while (earlier := chain[-1].previous_response_id) and len(chain) < MAX_TURNS:
            previous = await self.get(earlier, stored.key_id)
            if previous is None:
                break
            chain.append(previous)
        items: list[dict[str, Any]] = []
        for turn in reversed(chain):
            items += turn.input + turn.output
        return items

    async def delete(self, response_id: str, key_id: str | None) -> bool:
        if await self.get(response_id, key_id) is None:
            return False
        self._cache.pop(response_id, None)
        self._pending = [p for p in self._pending if p.id != response_id]
        async with self._db.session() as session, session.begin():
            await session.execute(
                delete(StoredResponseRow).where(StoredResponseRow.id == response_id)
            )
        return True

    async def purge(self) -> None:
        """Delete the responses kept longer than the retention."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                delete(StoredResponseRow).where(StoredResponseRow.expires_at < utcnow())
            )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._write_in_batches())
        self._purging.start()

    async def _write_in_batches(self) -> None:
        """Until the store closes: a batch each ``flush_seconds``. Never cancelled while it
        writes: a write runs in a thread, which a cancelled await would leave running beside
        the next one, on the same connection."""
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._flush_seconds)
            with contextlib.suppress(Exception):  # kept for the next turn; logged once
                await self.flush()

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        now = time.time()
        values = [
            {
                "id": r.id,
                "key_id": r.key_id,
                "model": r.model,
                "previous_response_id": r.previous_response_id,
                "native": r.native,
                "input": r.input,
                "body": r.body,
                "created_at": now,
                "expires_at": r.expires_at,
            }
            for r in rows
        ]
        try:
            await self._writes.write(values)
        except Exception as exc:
            self._pending[:0] = rows  # kept in memory, and tried again
            if not self._failing:
                log.warning(
                    "stored responses cannot be written yet (%s: %s)", type(exc).__name__, exc
                )
            self._failing = True
            raise
        if self._failing:
            log.info("stored responses are written again")
        self._failing = False
        for r in rows:
            r.written = True

    async def aclose(self) -> None:
        """Write what is left (the writing task's last batch), then close."""
        await self._purging.stop()
        self._closing.set()
        if self._task is not None:
            await self._task
        await self._writes.aclose()
