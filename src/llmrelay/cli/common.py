"""What the commands share: the ``--config`` option and a key store opened for one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from llmrelay.config import Config, ConfigError, load_config

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

    async def run() -> T:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        database = Database(database_url(config))
        try:
            await database.migrate()
            return await work(database)
        finally:
            await database.aclose()

    return asyncio.run(run())


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    from tabulate import tabulate  # only the commands that print tables load it

    def shown(value: Any) -> Any:
        if isinstance(value, list):
            return ",".join(map(str, value))
        return "-" if value is None else value

    return tabulate([[shown(row.get(c)) for c in columns] for row in rows], headers=columns)
