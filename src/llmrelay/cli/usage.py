"""``llmrelay usage``: requests, tokens and cost per day, key or model, from the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import click

from llmrelay.cli.common import cli_time, config_option, load, table, with_database
from llmrelay.store.ledger import GROUPS, REPORT_COLUMN, Ledger

COLUMNS = ["requests", "errors", "prompt_tokens", "cached_tokens", "completion_tokens"]
COLUMNS += ["total_tokens", "cost_usd", "unpriced_requests"]


@click.command()
@click.option("--by", "group_by", type=click.Choice(list(GROUPS)), default="day", show_default=True)
@click.option("--key", "key_id", help="Only this key's requests (its id; `config`: config keys).")
@click.option("--model", help="Only requests for this model (as asked for).")
@click.option("--since", help="From this UTC day on, ISO 8601 (e.g. 2026-11-01).")
@click.option("--until", help="Before this UTC day, ISO 8601.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_option
def usage(
    group_by: str,
    key_id: str | None,
    model: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    config_path: Path | None,
) -> None:
    """Print the usage per day (UTC), key or model, and the totals; costs in US dollars."""
    report = with_database(
        load(config_path),
        lambda db: Ledger(db).report(
            group_by=group_by,
            key_id=key_id,
            model=model,
            since=cli_time(since, "--since") if since else None,
            until=cli_time(until, "--until") if until else None,
        ),
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    first = REPORT_COLUMN[group_by]
    rows = [*report["rows"], {first: "total", **report["totals"]}]
    click.echo(table(rows, [first, *COLUMNS]))
