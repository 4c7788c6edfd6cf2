"""``llmrelay config``: check a config file, or write one from a LiteLLM proxy config."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from llmrelay.cli.common import load
from llmrelay.cli.litellm import translate


@click.group()
def config() -> None:
    """Check and convert config files."""


@config.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(path: Path) -> None:
    """Check a config file as `serve` reads it (environment variables included)."""
    loaded = load(path)
    names = ", ".join(dict.fromkeys(model.name for model in loaded.models))
    click.echo(f"{path}: OK ({len(loaded.models)} deployments of {names})")


@config.command("import-litellm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write it (default: standard output).",
)
def import_litellm(path: Path, output: Path | None) -> None:
    """Write the llmrelay config that does what a LiteLLM proxy config (model_list, fallbacks,
    cooldowns, master key) does; what has no equivalent is listed at its top."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("model_list"), list):
        raise click.ClickException(f"{path} has no model_list: not a LiteLLM proxy config")
    settings, left_out = translate(raw)
    text = _header(path, left_out) + yaml.safe_dump(settings, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}; check it with: llmrelay config check {output}", err=True)


def _header(path: Path, left_out: list[str]) -> str:
    lines = [f"# llmrelay config, from the LiteLLM config {path}"]
    if left_out:
        lines.append("# not carried over (no equivalent, or set another way in llmrelay):")
        lines += [f"#   - {item}" for item in left_out]
    return "\n".join(lines) + "\n"
