"""Who is calling: the ``Authorization: Bearer`` key checked against the known key hashes."""

from __future__ import annotations

from collections.abc import Iterable

from llmrelay.errors import AuthenticationError, MissingAPIKeyError
from llmrelay.store.keyfile import hash_key

_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def _redact(key: str) -> str:
    return f"{key[:5]}***{key[-4:]}" if len(key) > 12 else "***"


class KeyChecker:
    """Accepts a request whose bearer key hashes to one of the known hashes."""

    def __init__(self, key_hashes: Iterable[str]) -> None:
        self._hashes = frozenset(key_hashes)

    def authenticate(self, authorization: str | None) -> str:
        """Return the key's hash, or raise ``AuthenticationError`` (401)."""
        if not authorization:
            raise MissingAPIKeyError(_MISSING)
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise MissingAPIKeyError(_MISSING)
        digest = hash_key(key)
        if digest not in self._hashes:
            raise AuthenticationError(f"Incorrect API key provided: {_redact(key)}.")
        return digest
