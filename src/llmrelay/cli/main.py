"""The ``llmrelay`` command line."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from llmrelay.cli.common import config_option, load
from llmrelay.cli.config import config
from llmrelay.cli.keys import keys
from llmrelay.cli.usage import usage
from llmrelay.store.datadir import make_private
from llmrelay.store.keyfile import legacy_key_hashes, load_or_create_admin_hash
from llmrelay.store.keys import hash_key


@click.group()
@click.version_option(package_name="llmrelay")
def cli() -> None:
    """llmrelay: a self-hosted, OpenAI-compatible LLM API service."""


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000).")
@config_option
def serve(host: str | None, port: int | None, config_path: Path | None) -> None:
    """Serve the OpenAI-compatible API."""
    from llmrelay.api.server import run
    from llmrelay.app import create_app, prepare_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load(config_path)
    make_private(config.data_dir)
    static_hashes = [hash_key(k) for k in config.keys] + legacy_key_hashes(config.data_dir)
    try:
        first_key, from_spool = prepare_store(config, static_hashes)
    except Exception as exc:  # an unreachable database, a bad URL, a refused migration
        raise click.ClickException(f"the key store cannot be used: {exc}") from exc
    if from_spool:
        logging.getLogger(__name__).info(
            "wrote %d usage rows that the last run left in the spool", from_spool
        )
    if first_key:
        click.echo(
            "Created an API key (shown only this once; only its hash is kept):"
            f"\n\n    {first_key}\n",
            err=True,
        )
    if config.admin_key:
        admin_hash = hash_key(config.admin_key)
    else:
        admin_hash, new_admin_key = load_or_create_admin_hash(config.data_dir)
        if new_admin_key:
            click.echo(
                "Created the admin key, for /admin and nothing else (shown only this once; "
                f"only its hash is kept in {config.data_dir}):\n\n    {new_admin_key}\n",
                err=True,
            )
    try:
        app = create_app(config, static_hashes, admin_hash)
    except OSError as exc:  # the metrics' own port taken
        raise click.ClickException(f"cannot start: {exc}") from exc
    run(app, config.server, host=host or config.server.host, port=port or config.server.port)


cli.add_command(config)
cli.add_command(keys)
cli.add_command(usage)
