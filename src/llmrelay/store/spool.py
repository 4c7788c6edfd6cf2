"""``Spool``: the usage ledger's rows on local disk before they are in the database.

Each finished request's row is appended to the current segment file (one JSON line) as the
request ends, before its client has its last byte: a write to the page cache, which outlives a
killed process (fsync'd in batches, when the database cannot take the rows). The ledger writes
the rows to the database in batches and deletes a segment once all its rows are there; a segment
still on disk at start (the process was killed, or stopped while the database was away) is
written then. The database ignores a row it already has (its request id is unique), so a segment
written twice does no harm.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
_SUFFIX = ".jsonl"


class Spool:
    """Segments ``<number>.jsonl`` in ``directory``, numbered in the order they were begun."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        numbers = [int(p.stem) for p in self._files()]
        self._next = max(numbers, default=0) + 1
        self._fd: int | None = None
        self._path: Path | None = None
        self.rows = 0  # in the current segment

    def append(self, row: dict[str, Any]) -> None:
        """Add a row to the current segment (never waits on anything but the page cache)."""
        if self._fd is None:
            self._path = self.directory / f"{self._next:012d}{_SUFFIX}"
            self._next += 1
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._fd, orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        self.rows += 1

    def rotate(self) -> Path | None:
        """Close the current segment (the next row begins another); it, if it has rows."""
        path, fd = self._path, self._fd
        if fd is not None:
            os.close(fd)
        self._fd = self._path = None
        self.rows = 0
        return path

    def segments(self) -> list[Path]:
        """The closed segments on disk, oldest first."""
        return [p for p in self._files() if p != self._path]

    def size(self) -> int:
        """Bytes of every segment on disk (read from another thread: an estimate)."""
        total = 0
        for path in self._files():
            with contextlib.suppress(OSError):  # written and deleted meanwhile
                total += path.stat().st_size
        return total

    def close(self) -> None:
        self.rotate()

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"), key=lambda p: int(p.stem))


def read_segment(path: Path) -> list[dict[str, Any]]:
    """A segment's rows. A line that is no JSON (a write torn by a crash) is skipped."""
    rows = []
    for line in path.read_bytes().splitlines():
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.warning("skipped a torn line in the usage spool %s", path)
    return rows


def sync(path: Path) -> None:
    """Flush a segment to the disk itself (it holds rows the database does not have yet)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
