"""The tables, as SQLAlchemy declarative classes. Changes to them need a migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so none is stored anywhere."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_stored(moment: datetime) -> datetime:
    """A time as the store keeps it: naive UTC (a time without a zone is taken as UTC)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key: only its SHA-256 and a short display prefix are kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: the public model names it may use; None: all of them
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    rpm: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tpm: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: the money budget, in nano-dollars (the API shows it as ``budget_usd``)
    budget_nanousd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: "total", "day" or "month": the budget's window (UTC)
    budget_period: Mapped[str | None] = mapped_column(String(8), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    #: a disabled key is refused until it is enabled again; a revoked one for good
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    # every change sets it: the key caches of all instances poll for rows changed since
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(), default=utcnow, onupdate=utcnow, index=True
    )


ROW_ID = BigInteger().with_variant(Integer, "sqlite")


class UsageRow(Base):
    """One request in the usage ledger."""

    __tablename__ = "usage"
    # the recent-requests views filter by key or model, newest first
    __table_args__ = (
        Index("ix_usage_key_created", "key_id", "created_at"),
        Index("ix_usage_model_created", "model_requested", "created_at"),
    )

    # a BIGINT: a busy gateway passes 2**31 requests in weeks (SQLite's INTEGER key is 64-bit)
    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow, index=True)
    #: unique: a row written twice (from the spool, after a crash) is kept once
    request_id: Mapped[str] = mapped_column(String(40), unique=True)
    #: None for a key from the config
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: the API the request came in by: chat, responses, messages, embeddings, completions
    endpoint: Mapped[str] = mapped_column(String(16), server_default="chat")
    model_requested: Mapped[str] = mapped_column(String(200))
    model_served: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the deployment that answered, as /health names it
    backend: Mapped[str | None] = mapped_column(String(300), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    #: of the prompt tokens, those read from a cache, and those written to one (Anthropic)
    cached_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    #: what it cost, in nano-dollars; None: it used tokens of a model with no price
    cost_nanousd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: "reported" (by the backend), "counted" (by llmrelay's tokenizer) or "none"
    usage_source: Mapped[str] = mapped_column(String(8))
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stream: Mapped[bool] = mapped_column(Boolean)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    disconnected: Mapped[bool] = mapped_column(Boolean, default=False)


class UsageDay(Base):
    """A day's totals (UTC) of one key's requests for one model: what reports and budgets read,
    kept by every ledger write and outliving the rows themselves (``usage_retention_days``)."""

    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_key_day", "key_id", "day"),)

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # 2026-12-04
    #: "" for a key from the config
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: as asked for
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)  # status 400 and above
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    #: of the priced requests
    cost_nanousd: Mapped[int] = mapped_column(BigInteger, default=0)
    #: requests that used tokens at no known price
    unpriced: Mapped[int] = mapped_column(BigInteger, default=0)


class StoredResponseRow(Base):
    """A response of the Responses API kept for later turns (``store: true``)."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the key that made it (None: a key from the config); another key cannot see it
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    previous_response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: made by a backend that speaks the Responses API itself, which keeps it
    native: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the request's own input items, and the response object
    input: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
