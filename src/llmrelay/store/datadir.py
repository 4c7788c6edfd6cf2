"""The data directory, readable by its owner alone: it holds the key store (names, prefixes and
hashes of every key), the admin key's hash and the usage ledger's spool."""

from __future__ import annotations

import os
from pathlib import Path

#: what every file llmrelay makes is created without: access for group and others
PRIVATE_UMASK = 0o077


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) if need be, and close what an earlier version left open: the
    directory and the files in it (0600) that this user owns."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _restrict(data_dir, 0o700)
    for entry in data_dir.iterdir():
        if entry.is_file() and not entry.is_symlink():
            _restrict(entry, 0o600)


def _restrict(path: Path, mode: int) -> None:
    status = path.stat()
    if status.st_uid == os.getuid() and status.st_mode & 0o777 != mode:
        path.chmod(mode)
