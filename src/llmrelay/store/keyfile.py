"""Keys kept in the data dir as hashes: the admin key when none is configured, and the
first-start key of llmrelay before its key store (still accepted, never written again)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmrelay.store.keys import hash_key, new_key


def legacy_key_hashes(data_dir: Path) -> list[str]:
    """The first-start key hashes of earlier versions (``keys.json``), if any."""
    path = data_dir / "keys.json"
    return list(json.loads(path.read_text())["sha256"]) if path.exists() else []


def load_or_create_admin_hash(data_dir: Path) -> tuple[str, str | None]:
    """The admin key's hash, creating the key if there is none.

    Returns the hash and, only when the key was just created, the key in full (to print once).
    """
    path = data_dir / "admin_key.json"
    if path.exists():
        return str(json.loads(path.read_text())["sha256"]), None
    key = new_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sha256": hash_key(key)}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return hash_key(key), key
