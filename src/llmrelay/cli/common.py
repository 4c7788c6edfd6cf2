"""What the commands share: the ``--config`` option and a key store opened for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from llmrelay.config import Config, ConfigError, load_config
from llmrelay.store.schema import as_stored

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file (see README).",
)


def load(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def with_database(config: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(database)`` on the migrated store the server would use."""
    from llmrelay.app import database_url
    from llmrelay.store.database import Database
    from llmrelay.store.datadir import make_private

    async def run() -> T:
        make_private(config.data_dir)
        database = Database(database_url(config))
        try:
            await database.migrate()
            return await work(database)
        finally:
            await database.aclose()

    try:
        return asyncio.run(run())
    except click.ClickException:
        raise
    except (OSError, SQLAlchemyError) as exc:  # unreachable, refused, a bad URL
        raise click.ClickException(f"the key store cannot be used: {exc}") from exc


def cli_time(text: str, option: str) -> datetime:
    """An ISO 8601 option as the store keeps times (UTC unless it names a zone)."""
    try:
        return as_stored(datetime.fromisoformat(text))
    except (ValueError, OverflowError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    from tabulate import tabulate  # only the commands that print tables load it

    def shown(value: Any) -> Any:
        if isinstance(value, list):
            return ",".join(map(str, value))
        return "-" if value is None else value

    # money stays the decimal text it is, not a float in scientific notation
    text = [i for i, column in enumerate(columns) if column.endswith("_usd")]
    return tabulate(
        [[shown(row.get(c)) for c in columns] for row in rows],
        headers=columns,
        disable_numparse=text or False,
    )
