"""The `digest` command line (console script ``digest.cli:main``)."""

from digest.cli.commands import cli, main

__all__ = ["cli", "main"]
