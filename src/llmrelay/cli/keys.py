"""``llmrelay keys``: create, list, show, update and revoke API keys, straight in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from llmrelay.cli.common import cli_time, config_option, load, table, with_database
from llmrelay.store.keys import PERIODS, KeyRecord, KeyStore, SettingError

COLUMNS = ["id", "name", "prefix", "status", "models", "rpm", "tpm", "budget_tokens"]
COLUMNS += ["budget_usd", "budget_period", "expires_at"]


def _settings(function: Any) -> Any:
    """The options ``create`` and ``update`` share."""
    options = [
        click.option("--models", help="Comma-separated model names it may use (default: all)."),
        click.option("--rpm", type=int, help="Requests per minute."),
        click.option("--tpm", type=int, help="Tokens per minute."),
        click.option("--budget", "budget_tokens", type=int, help="Token budget."),
        click.option("--budget-usd", help="Budget in US dollars (e.g. 25.00)."),
        click.option("--budget-period", type=click.Choice(PERIODS), help="Window of the budgets."),
        click.option("--expires", "expires_at", help="Expiry, ISO 8601 (UTC unless it says)."),
        click.option("--metadata", help="Free-form metadata as a JSON object."),
        click.option(
            "--enabled/--disabled", default=None, help="A disabled key is refused until enabled."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _changes(**options: Any) -> dict[str, Any]:
    changes = {k: v for k, v in options.items() if v is not None}
    if "models" in changes:
        changes["models"] = [m.strip() for m in changes["models"].split(",") if m.strip()]
    if "expires_at" in changes:
        changes["expires_at"] = cli_time(changes["expires_at"], "--expires")
    if "metadata" in changes:
        try:
            changes["metadata"] = json.loads(changes["metadata"])
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--metadata") from exc
    return changes


def _run(config_path: Path | None, work: Any) -> Any:
    try:
        return with_database(load(config_path), lambda db: work(KeyStore(db)))
    except SettingError as exc:
        raise click.BadParameter(str(exc)) from exc


def _show(record: KeyRecord | None, as_json: bool, key: str | None = None) -> None:
    if record is None:
        raise click.ClickException("no API key has this id")
    if as_json:
        shown = record.public() if key is None else {**record.public(), "key": key}
        click.echo(json.dumps(shown, indent=2))
        return
    click.echo(table([record.public()], COLUMNS))
    if key is not None:
        click.echo(f"\nThe key (shown only this once):\n\n    {key}\n")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def keys() -> None:
    """Manage API keys (in the store the server uses)."""


@keys.command()
@click.argument("name")
@_settings
@json_option
@config_option
def create(name: str, as_json: bool, config_path: Path | None, **options: Any) -> None:
    """Create a key; it is printed this once and never again."""
    record, key = _run(config_path, lambda store: store.create(name, **_changes(**options)))
    _show(record, as_json, key)


@keys.command("list")
@json_option
@config_option
def list_keys(as_json: bool, config_path: Path | None) -> None:
    """List every key."""
    records = _run(config_path, lambda store: store.all())
    if as_json:
        click.echo(json.dumps([r.public() for r in records], indent=2))
        return
    click.echo(table([r.public() for r in records], COLUMNS))


@keys.command()
@click.argument("key_id")
@json_option
@config_option
def show(key_id: str, as_json: bool, config_path: Path | None) -> None:
    """Show one key."""
    _show(_run(config_path, lambda store: store.get(key_id)), as_json)


@keys.command()
@click.argument("key_id")
@click.option("--name", help="A new name.")
@_settings
@json_option
@config_option
def update(key_id: str, as_json: bool, config_path: Path | None, **options: Any) -> None:
    """Change a key's settings (only those given)."""
    _show(_run(config_path, lambda store: store.update(key_id, **_changes(**options))), as_json)


@keys.command()
@click.argument("key_id")
@json_option
@config_option
def revoke(key_id: str, as_json: bool, config_path: Path | None) -> None:
    """Revoke a key: every instance refuses it within seconds."""
    _show(_run(config_path, lambda store: store.revoke(key_id)), as_json)
