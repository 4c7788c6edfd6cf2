"""How batches of rows (the ledger's, the stored responses') reach the database:
``SQLiteWrites`` or ``DriverWrites``, for a ``Table``.

SQLite: through a connection of the ledger's own, in a thread, one hop per batch, the rows in a
few INSERTs of many rows each (``VALUES (...), (...), ...``). Through SQLAlchemy and aiosqlite a
statement took about five hops between the event loop and aiosqlite's thread, and
``executemany`` makes SQLite run its statement anew for every row, opening the table and its
indexes each time.

PostgreSQL (any other database): one ``executemany`` through the engine, which asyncpg sends as
one pipeline.

Either is given the rows by column name (times in seconds since the epoch, booleans as 0 or 1,
JSON values as they are) and turns them into what the columns take. A row whose key the table
already has is left out (``ON CONFLICT DO NOTHING``): a spool segment may be written twice, if the
process died between writing it and deleting it. A table with ``daily`` totals has them added
up from the rows just written, in the same transaction (``store/rollup.py``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import orjson
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from llmrelay.store.database import sqlite_pragmas
from llmrelay.store.rollup import ADVISORY_LOCK, LAST_ID, rollup_sql
from llmrelay.store.schema import Base

#: one row, by column name
Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """Where batches go: the table (its ORM class), its columns in the order a statement takes
    them, the unique column whose conflict leaves a row out, and the columns whose values are
    converted: ``times`` (given as seconds since the epoch), ``booleans`` (given as 0 or 1),
    ``json`` (given as JSON values)."""

    row: type[Base]
    fields: tuple[str, ...]
    conflict: str
    times: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()
    json: tuple[str, ...] = ()
    #: whether a write adds its rows to the daily totals (the usage ledger's)
    daily: bool = False

    def places(self, names: tuple[str, ...]) -> list[int]:
        return [self.fields.index(name) for name in names]


class Writes(Protocol):
    async def write(self, rows: Sequence[Row]) -> None:
        """Write the rows in one transaction, or none of them."""

    async def aclose(self) -> None: ...


class DriverWrites:
    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        self._engine = engine
        self._fields = list(table.fields)
        # compiled once, executed by the driver itself: SQLAlchemy's per-row processing would
        # cost three times the write
        statement = postgresql.insert(table.row).on_conflict_do_nothing(
            index_elements=[table.conflict]
        )
        compiled = statement.compile(dialect=engine.dialect, column_keys=self._fields)
        assert compiled.positiontup == self._fields, "a row is handed over in its fields' order"
        self._insert = compiled.string
        self._times = table.places(table.times)
        self._booleans = table.places(table.booleans)
        self._json = table.places(table.json)
        self._daily = table.daily

    async def write(self, rows: Sequence[Row]) -> None:
        async with self._engine.begin() as connection:
            if self._daily:
                await connection.exec_driver_sql(ADVISORY_LOCK)
                last = (await connection.exec_driver_sql(LAST_ID)).scalar_one()
            await connection.exec_driver_sql(self._insert, [self._values(row) for row in rows])
            if self._daily:
                dialect = self._engine.dialect.name
                await connection.exec_driver_sql(rollup_sql(dialect, last))

    def _values(self, row: Row) -> tuple[Any, ...]:
        """The row with its times naive UTC datetimes, as the store keeps times
        (``datetime.now(UTC).replace(tzinfo=None)`` costs several times as much), its booleans
        bools, its JSON values JSON text."""
        values = [row[field] for field in self._fields]
        for at in self._times:
            values[at] = _EPOCH + timedelta(seconds=values[at])
        for at in self._booleans:
            values[at] = bool(values[at])
        for at in self._json:
            values[at] = _json_text(values[at])
        return tuple(values)

    async def aclose(self) -> None:
        pass  # the engine is the database's


class SQLiteWrites:
    """``path``: the database file (shared with the engine, which reads the rows)."""

    def __init__(self, path: str, table: Table) -> None:
        self._fields = list(table.fields)
        self._times = table.places(table.times)
        self._json = table.places(table.json)
        columns = ", ".join(self._fields)
        values = "(" + ", ".join("?" * len(self._fields)) + ")"
        name = table.row.__tablename__
        self._inserts = {
            size: f"INSERT INTO {name} ({columns}) VALUES {', '.join([values] * size)}"
            f" ON CONFLICT ({table.conflict}) DO NOTHING"
            for size in _CHUNKS
        }
        self._path = path
        self._daily = table.daily
        self._connection: sqlite3.Connection | None = None
        # given None, sqlite3 looks for an adapter by raising and catching two AttributeErrors;
        # this one is found at once, and stores the same
        sqlite3.register_adapter(type(None), _as_null)

    async def write(self, rows: Sequence[Row]) -> None:
        await asyncio.to_thread(self._write, rows)

    def _write(self, rows: Sequence[Row]) -> None:
        connection = self._connection
        if connection is None:
            # autocommit (isolation_level None): the transaction is the one begun below
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(connection)
            self._connection = connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if self._daily:
                last = connection.execute(LAST_ID).fetchone()[0]
            for size, values in _in_chunks([self._values(row) for row in rows]):
                connection.executemany(self._inserts[size], values)
            if self._daily:
                connection.execute(rollup_sql("sqlite", last))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _values(self, row: Row) -> list[Any]:
        """The row's values, its times the text SQLAlchemy stores on SQLite for a naive UTC
        datetime (at a quarter of the cost of making the datetime), its JSON values text."""
        values = [row[field] for field in self._fields]
        for at in self._times:
            values[at] = _sqlite_time(values[at])
        for at in self._json:
            values[at] = _json_text(values[at])
        return values

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


#: the rows of one SQLite INSERT: a batch goes in as few as these make up, each statement
#: prepared once. The largest takes 960 values, within the limit of any SQLite (999 before 3.32);
#: larger ones cost no less a row and hold the GIL longer while binding, which a request
#: arriving meanwhile waits for
_CHUNKS = (64, 16, 4, 1)


def _in_chunks(rows: list[list[Any]]) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """The rows in runs of ``_CHUNKS`` sizes, largest first: each size with its runs' values."""
    start = 0
    for size in _CHUNKS:
        runs = []
        while len(rows) - start >= size:
            runs.append(tuple(itertools.chain.from_iterable(rows[start : start + size])))
            start += size
        if runs:
            yield size, runs


_EPOCH = datetime(1970, 1, 1)


def _sqlite_time(seconds: float) -> str:
    """A time as SQLAlchemy stores a naive UTC datetime on SQLite (a batch's rows share a few
    seconds, whose text is cached). ``%06d`` truncates as ``int`` does, and costs a fifth of a
    format spec's ``:06d``."""
    whole = int(seconds)
    return "%s.%06d" % (_second(whole), (seconds - whole) * 1_000_000)  # noqa: UP031


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@functools.lru_cache(maxsize=8)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))


#: None for None, the way sqlite3 wants an adapter to say NULL: an empty dict's ``get`` does it
#: without the Python call an adapter function would cost
_as_null = cast(Callable[[None], None], {}.get)
