from llmrelay.cli.main import cli

cli()
