"""The `pgarena` command: serve, db, stacks, run, report, compare.

Each area owns its commands in its own package; this module only assembles them and
turns user mistakes into a one-line error with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from pgarena.bench import cli as bench_cli
from pgarena.database.cli import db_app
from pgarena.errors import UserError
from pgarena.report.cli import compare_command, report_command
from pgarena.settings import Settings

app = typer.Typer(
    name="pgarena",
    help="A FastAPI service on every serious PostgreSQL stack, and an honest benchmark of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(
    db_app, name="db", help="The PostgreSQL database: embedded server, migrations, seed data."
)


def _given(**options: object) -> dict[str, object]:
    """Only the options the user gave: the rest come from the environment or defaults."""
    return {name: value for name, value in options.items() if value is not None}


@app.command()
def serve(
    stack: str = typer.Option(None, help="Which stack serves the API (see `pgarena stacks`)."),
    server: str = typer.Option(
        "uvicorn", help="ASGI server: uvicorn, gunicorn (uvicorn workers) or granian."
    ),
    host: str = typer.Option(None, help="Address to listen on [default: 127.0.0.1]."),
    port: int = typer.Option(None, help="Port to listen on [default: 8000]."),
    workers: int = typer.Option(None, help="Worker processes [default: 1]."),
    threads: int = typer.Option(
        None, help="Threads running sync endpoints, per worker [default: pool size + overflow]."
    ),
    pool_size: int = typer.Option(None, help="Database pool size per worker [default: 10]."),
    max_overflow: int = typer.Option(None, help="Extra connections beyond the pool [default: 10]."),
    data_dir: Path = typer.Option(None, help="Embedded PostgreSQL data directory."),
) -> None:
    """Serve the reference API on one stack (embedded PostgreSQL unless DATABASE_URL is set)."""
    from pgarena.service.server import serve as run_server

    run_server(
        Settings(
            **_given(
                stack=stack,
                host=host,
                port=port,
                workers=workers,
                threads=threads,
                pool_size=pool_size,
                max_overflow=max_overflow,
                data_dir=data_dir,
            )
        ),
        server,
    )


@app.command()
def stacks() -> None:
    """List the stacks, with a one-line description of each."""
    from pgarena.service.stacks import STACKS

    width = max(len(name) for name in STACKS)
    for stack in STACKS.values():
        typer.echo(f"{stack.name:<{width}}  {stack.style:<5}  {stack.description}")


@app.command("run")
@functools.wraps(bench_cli.run)
def run(**options: object) -> None:
    """Benchmark, then write the reports beside the result file; exit 1 if an SLO failed."""
    outcome = bench_cli.run(**options)  # type: ignore[arg-type]
    write_run_reports(outcome.results)
    if outcome.slo_failed:
        raise SystemExit(1)


def write_run_reports(results: Path) -> None:
    """report.md, report.html and charts/*.png beside the result file, from it alone."""
    from pgarena.bench.display import console
    from pgarena.report.build import write_reports

    with console.status("writing reports"):
        written = write_reports(results)
    charts = [path for path in written if path.suffix == ".png"]
    for path in written:
        if path.suffix != ".png":
            console.print(f"report: {path}")
    if charts:
        console.print(f"charts: {charts[0].parent}/ ({len(charts)} PNG)")


app.command("calibrate")(bench_cli.calibrate)
app.command("report")(report_command)
app.command("compare")(compare_command)


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
