"""The ``llmrelay`` command line."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from llmrelay.config import ConfigError, load_config
from llmrelay.store.keyfile import hash_key, load_or_create_key_hashes


@click.group()
@click.version_option(package_name="llmrelay")
def cli() -> None:
    """llmrelay: a self-hosted, OpenAI-compatible LLM API service."""


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file (see README).",
)
def serve(host: str | None, port: int | None, config_path: Path | None) -> None:
    """Serve the OpenAI-compatible API."""
    import uvicorn

    from llmrelay.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if config.keys:
        hashes = [hash_key(k) for k in config.keys]
    else:
        hashes, new_key = load_or_create_key_hashes(config.data_dir)
        if new_key:
            click.echo(
                f"Created an API key (shown only this once; only its hash is kept in "
                f"{config.data_dir}):\n\n    {new_key}\n",
                err=True,
            )
    app = create_app(config, hashes)
    uvicorn.run(
        app,
        host=host or config.host,
        port=port or config.port,
        log_level="info",
        access_log=False,
    )
