"""Who is calling, and may they use this model: bearer keys checked against an in-memory cache.

Keys from the config or ``LLMRELAY_API_KEY`` may use every model. Keys from the store are cached
here and the cache asks the store every ``refresh_seconds`` for keys changed since its last look,
so a key created, changed or revoked on any instance takes effect on every instance within that
time; a request never waits on the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from llmrelay.errors import AuthenticationError, MissingAPIKeyError, PermissionDeniedError
from llmrelay.gateway.periodic import Periodic
from llmrelay.store.keys import KeyRecord, KeyStore, hash_key
from llmrelay.store.schema import utcnow

_OVERLAP = timedelta(seconds=10)
_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def _redact(key: str) -> str:
    return f"{key[:5]}***{key[-4:]}" if len(key) > 12 else "***"


def bearer_key(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer`` header, or ``MissingAPIKeyError`` (401)."""
    if not authorization:
        raise MissingAPIKeyError(_MISSING)
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise MissingAPIKeyError(_MISSING)
    return key


class KeyChecker:
    """Accepts the static keys and the store's active keys; refuses the rest with a 401."""

    def __init__(
        self,
        static_hashes: Iterable[str],
        store: KeyStore,
        refresh_seconds: float = 1.0,
    ) -> None:
        self._static = frozenset(static_hashes)
        self._store = store
        self._keys: dict[str, KeyRecord] = {}  # by hash, which never changes for a key
        self._since: datetime | None = None
        self._refreshing = Periodic(refresh_seconds, self.refresh, "refreshing the key cache")

    async def start(self) -> None:
        """Load every stored key, then keep the cache fresh in the background."""
        await self.refresh()
        self._refreshing.start()

    async def refresh(self) -> None:
        # a change committed just after a look may carry an earlier time: look back a while
        # (applying a change twice does no harm)
        looked_at = utcnow() - _OVERLAP
        for record in await self._store.changed_since(self._since):
            self._keys[record.hash] = record
        self._since = looked_at

    async def stop(self) -> None:
        await self._refreshing.stop()

    def authenticate(
        self, authorization: str | None, api_key: str | None = None
    ) -> KeyRecord | None:
        """The caller's stored key (None for a static key), or ``AuthenticationError`` (401).
        The key comes as ``Authorization: Bearer``, or as ``api_key`` (Anthropic's SDKs send
        it in ``x-api-key``)."""
        key = api_key or bearer_key(authorization)
        digest = hash_key(key)
        if digest in self._static:
            return None
        record = self._keys.get(digest)
        if record is None:
            raise AuthenticationError(f"Incorrect API key provided: {_redact(key)}.")
        status = record.status()
        if status != "active":
            raise AuthenticationError(f"The API key {_redact(key)} has been {status}.")
        return record

    @classmethod
    def authorize(cls, record: KeyRecord | None, model: str, served_as: str | None = None) -> None:
        """``PermissionDeniedError`` (403) unless the key may use ``model``, or the model it is
        ``served_as`` (a name a wildcard of the config maps)."""
        if not cls.may_use(record, model) and not (served_as and cls.may_use(record, served_as)):
            raise PermissionDeniedError(
                f"This API key may not use the model `{model}`.", param="model"
            )

    @staticmethod
    def may_use(record: KeyRecord | None, model: str) -> bool:
        return record is None or record.models is None or model in record.models
