"""The first-start key: generated once, printed once, kept only as its hash in the data dir."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

KEY_PREFIX = "sk-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def load_or_create_key_hashes(data_dir: Path) -> tuple[list[str], str | None]:
    """The stored key hashes, creating a first key if there is none.

    Returns the hashes and, only when a key was just created, that key in full (to print once).
    """
    path = data_dir / "keys.json"
    if path.exists():
        return json.loads(path.read_text())["sha256"], None
    key = new_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sha256": [hash_key(key)]}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return [hash_key(key)], key
