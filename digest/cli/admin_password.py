"""`digest admin-password`: make the argon2 hash that DIGEST_ADMIN_PASSWORD holds.

The password is read twice without echo (or once from stdin with ``--stdin``, for scripts);
only the hash is printed, never stored anywhere by this command.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest.cli.common import err, out
from digest.web.console.credentials import hash_password

__all__ = ["MIN_LENGTH", "admin_password"]

MIN_LENGTH = 12


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Console password", hide_input=True)
    second = typer.prompt("The same again", hide_input=True)
    if first != second:
        err.print("[red]error:[/red] the two passwords differ; nothing was made", highlight=False)
        raise typer.Exit(1)
    return str(first)


def admin_password(
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from the first line "
                                        "of standard input instead of asking twice.")] = False,
) -> None:
    """Print an argon2 hash of a new console password for DIGEST_ADMIN_PASSWORD."""
    password = _read_password(stdin)
    if len(password) < MIN_LENGTH:
        err.print(f"[red]error:[/red] use at least {MIN_LENGTH} characters; nothing was made",
                  highlight=False)
        raise typer.Exit(1)
    out.print(hash_password(password), highlight=False, soft_wrap=True)
    err.print("Put this in DIGEST_ADMIN_PASSWORD (in .env, inside single quotes: "
              "the hash contains $ signs), then restart the web app.", highlight=False)
