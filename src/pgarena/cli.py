"""The `pgarena` command: serve, db, stacks, run, report, compare.

Each area owns its commands in its own package; this module only assembles them and
turns user mistakes into a one-line error with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from pgarena.errors import UserError

app = typer.Typer(
    name="pgarena",
    help="A FastAPI service on every serious PostgreSQL stack, and an honest benchmark of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def fail(message: str) -> None:
    """Print one line to stderr and exit 2, the exit code for usage errors."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise SystemExit(2)


def describe_validation_error(error: ValidationError) -> str:
    """Settings errors as one line: 'port: Input should be less than or equal to 65535'."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"{field}: {first['msg']}"


def main() -> None:
    """Console entry point."""
    try:
        app()
    except UserError as error:
        fail(str(error))
    except ValidationError as error:
        fail(describe_validation_error(error))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
