"""``KeyStore``: create, read, change and revoke API keys in the database.

A key is ``sk-`` and 43 URL-safe characters from ``secrets`` (256 bits); only its SHA-256 and
its first characters (to tell keys apart in a list) are stored. The full key is returned once,
by ``create``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from llmrelay.store.database import Database
from llmrelay.store.schema import ApiKey, utcnow

KEY_PREFIX = "sk-"
PERIODS = ("total", "day", "month")
NAME_LENGTH = 200
#: the largest limit or budget: a counter at it, plus the largest request's charge, still fits
#: in 64 bits (and in a JavaScript number, for the admin API's clients)
_BIGGEST = 2**53 - 1
#: the fields ``create`` and ``update`` accept besides ``name``
SETTINGS = (
    "models",
    "rpm",
    "tpm",
    "budget_tokens",
    "budget_usd",
    "budget_period",
    "expires_at",
    "enabled",
    "metadata",
)
#: nano-dollars a dollar: money budgets are kept as integers of these
NANOS = 10**9


class SettingError(ValueError):
    """A key setting that cannot be stored; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyRecord:
    """What the gateway needs to know of a key, detached from the database session."""

    id: str
    name: str
    prefix: str
    hash: str
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    budget_tokens: int | None
    #: the money budget, in nano-dollars
    budget_nanousd: int | None
    budget_period: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    enabled: bool
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            hash=row.hash,
            models=tuple(row.models) if row.models is not None else None,
            rpm=row.rpm,
            tpm=row.tpm,
            budget_tokens=row.budget_tokens,
            budget_nanousd=row.budget_nanousd,
            budget_period=row.budget_period,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            enabled=row.enabled,
            metadata=dict(row.meta or {}),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def public(self) -> dict[str, Any]:
        """The key as the admin API and the CLI show it (never the hash)."""
        shown = {k: v for k, v in self.__dict__.items() if k not in ("hash", "budget_nanousd")}
        nanos = self.budget_nanousd
        shown["budget_usd"] = None if nanos is None else str(Decimal(nanos) / NANOS)
        shown["models"] = list(self.models) if self.models is not None else None
        shown["status"] = self.status()
        for field in ("expires_at", "revoked_at", "created_at", "updated_at"):
            if shown[field] is not None:
                shown[field] = shown[field].isoformat() + "Z"
        return shown

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if not self.enabled:
            return "disabled"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, name: str, **settings: Any) -> tuple[KeyRecord, str]:
        """A new key: its record and, this once, the key itself."""
        _check_name(name)
        key = new_key()
        settings = _columns({"metadata": {}, **_checked(settings)})
        row = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            prefix=key[:8],
            hash=hash_key(key),
            **settings,
        )
        _default_period(row)
        async with self._db.session() as session, session.begin():
            session.add(row)
        return KeyRecord.of(row), key

    async def all(self) -> list[KeyRecord]:
        async with self._db.session() as session:
            rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at))
            return [KeyRecord.of(row) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._db.session() as session:
            row = await session.get(ApiKey, key_id)
            return KeyRecord.of(row) if row else None

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        name = changes.pop("name", None)
        if name is not None:
            _check_name(name)
        changes = _columns(_checked(changes))
        async with self._db.session() as session, session.begin():
            row = await session.get(ApiKey, key_id)
            if row is None:
                return None
            if name is not None:
                row.name = name
            for field, value in changes.items():
                setattr(row, field, value)
            _default_period(row)
            row.updated_at = utcnow()
        return KeyRecord.of(row)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        async with self._db.session() as session, session.begin():
            row = await session.get(ApiKey, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = row.updated_at = utcnow()
        return KeyRecord.of(row)

    async def changed_since(self, since: datetime | None) -> list[KeyRecord]:
        """Keys created or changed at or after ``since`` (all of them for None)."""
        query = select(ApiKey)
        if since is not None:
            query = query.where(ApiKey.updated_at >= since)
        async with self._db.session() as session:
            return [KeyRecord.of(row) for row in await session.scalars(query)]

    async def count(self) -> int:
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(ApiKey)) or 0)


def _columns(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings by their row attributes: the ORM keeps ``metadata`` for itself, so the column's
    attribute is ``meta``."""
    if "metadata" in settings:
        settings["meta"] = settings.pop("metadata")
    if "budget_usd" in settings:
        usd = settings.pop("budget_usd")
        settings["budget_nanousd"] = None if usd is None else int(Decimal(str(usd)) * NANOS)
    return settings


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_LENGTH:
        raise SettingError("name", f"name must be 1 to {NAME_LENGTH} characters")


def _default_period(row: ApiKey) -> None:
    """A budget without a period never resets."""
    if (row.budget_tokens or row.budget_nanousd) and not row.budget_period:
        row.budget_period = "total"


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    """Raise ``SettingError`` naming the first setting that cannot be stored."""
    for field, value in settings.items():
        if field not in SETTINGS:
            raise SettingError(field, f"unknown setting {field!r}")
        if value is None:
            if field == "enabled":
                raise SettingError(field, "enabled must be true or false")
            continue
        if field in ("rpm", "tpm", "budget_tokens") and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _BIGGEST
        ):
            raise SettingError(field, f"{field} must be a whole number from 1 to {_BIGGEST}")
        if field == "budget_usd" and not _dollars(value):
            raise SettingError(
                field, "budget_usd must be an amount of dollars above 0, to nine decimals"
            )
        if field == "budget_period" and value not in PERIODS:
            raise SettingError(field, f"budget_period must be one of {', '.join(PERIODS)}")
        if field == "models" and (
            not isinstance(value, list) or not all(isinstance(m, str) for m in value)
        ):
            raise SettingError(field, "models must be a list of model names")
        if field == "metadata" and not isinstance(value, dict):
            raise SettingError(field, "metadata must be an object")
        if field == "enabled" and not isinstance(value, bool):
            raise SettingError(field, "enabled must be true or false")
        if field == "expires_at" and not isinstance(value, datetime):
            raise SettingError(field, "expires_at must be a time")
    return settings


def _dollars(value: object) -> bool:
    """Whether ``value`` is an amount of dollars a budget can be: above 0, whole nano-dollars,
    within the largest budget (a number or its decimal text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        nanos = Decimal(str(value)) * NANOS
    except InvalidOperation:
        return False
    return nanos.is_finite() and 0 < nanos <= _BIGGEST and nanos == nanos.to_integral_value()
