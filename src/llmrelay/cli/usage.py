"""``llmrelay usage``: tokens and requests per day from the usage ledger."""

from __future__ import annotations

from pathlib import Path

import click

from llmrelay.cli.common import cli_time, config_option, load, table, with_database
from llmrelay.store.ledger import Ledger

COLUMNS = ["date", "requests", "prompt_tokens", "completion_tokens", "total_tokens"]


@click.command()
@click.option("--key", "key_id", help="Only this key's requests (its id).")
@click.option("--model", help="Only requests for this model (as asked for).")
@click.option("--since", help="From this time on, ISO 8601 (e.g. 2026-11-01).")
@click.option("--until", help="Before this time, ISO 8601.")
@config_option
def usage(
    key_id: str | None,
    model: str | None,
    since: str | None,
    until: str | None,
    config_path: Path | None,
) -> None:
    """Print the usage per day (UTC) and the totals."""
    window = {
        "since": cli_time(since, "--since") if since else None,
        "until": cli_time(until, "--until") if until else None,
    }
    report = with_database(
        load(config_path),
        lambda db: Ledger(db).report(key_id=key_id, model=model, **window),
    )
    rows = [*report["days"], {"date": "total", **report["totals"]}]
    click.echo(table(rows, COLUMNS))
