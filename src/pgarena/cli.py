"""The `pgarena` command: serve, db, stacks, run, report, compare, claims, chaos.

Each area owns its commands in its own package; this module only assembles them and
turns user mistakes into a one-line error with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pgarena import __version__
from pgarena.bench import cli as bench_cli
from pgarena.bench.locust.cli import locust_command
from pgarena.chaos.cli import chaos_command
from pgarena.claims.cli import claims_command
from pgarena.database.cli import DataDir, db_app
from pgarena.errors import UserError
from pgarena.report.cli import compare_command, report_command
from pgarena.settings import Settings

# The defaults the help shows are Settings' own; the environment variables are read by typer
# (option > environment > default), and the value reaches Settings as an argument.
SERVER_DEFAULTS = Settings.model_construct()

app = typer.Typer(
    name="pgarena",
    help="A FastAPI service on every serious PostgreSQL stack, and an honest benchmark of them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Inherited by every subcommand: `-h` as wrk, k6 and hyperfine users type it, and each
    # option's default in its help.
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
app.add_typer(
    db_app, name="db", help="The PostgreSQL database: embedded server, migrations, seed data."
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pgarena {__version__}")
        raise typer.Exit()


@app.callback()
def pgarena(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """A FastAPI service on every serious PostgreSQL stack, and an honest benchmark of them."""


def _given(**options: object) -> dict[str, object]:
    """Only the options the user gave: the rest come from the environment or defaults."""
    return {name: value for name, value in options.items() if value is not None}


@app.command()
def serve(
    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            "-s",
            metavar="NAME",
            envvar="PGARENA_STACK",
            help="Which stack serves the API (see `pgarena stacks`).",
        ),
    ] = SERVER_DEFAULTS.stack,
    server: Annotated[
        str,
        typer.Option(
            metavar="NAME", help="ASGI server: uvicorn, gunicorn (uvicorn workers) or granian."
        ),
    ] = "uvicorn",
    host: Annotated[
        str,
        typer.Option(metavar="ADDRESS", envvar="PGARENA_HOST", help="Address to listen on."),
    ] = SERVER_DEFAULTS.host,
    port: Annotated[
        int,
        typer.Option(metavar="PORT", envvar="PGARENA_PORT", help="Port to listen on."),
    ] = SERVER_DEFAULTS.port,
    workers: Annotated[
        int,
        typer.Option(metavar="N", envvar="PGARENA_WORKERS", help="Worker processes."),
    ] = SERVER_DEFAULTS.workers,
    threads: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            envvar="PGARENA_THREADS",
            help="Threads running sync endpoints, per worker: how many requests overlap in "
            "PostgreSQL (fewer contend less for the GIL on quick queries).",
            show_default="pool size + overflow",
        ),
    ] = None,
    pool_size: Annotated[
        int,
        typer.Option(
            metavar="N",
            envvar="PGARENA_POOL_SIZE",
            help="Database pool size per worker.",
        ),
    ] = SERVER_DEFAULTS.pool_size,
    max_overflow: Annotated[
        int,
        typer.Option(
            metavar="N",
            envvar="PGARENA_MAX_OVERFLOW",
            help="Extra connections beyond the pool.",
        ),
    ] = SERVER_DEFAULTS.max_overflow,
    pooler: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Start this connection pooler in front of PostgreSQL (pgbouncer, "
            "transaction mode) and serve through it.",
            show_default="none",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the reference API on one stack.

    PostgreSQL: the embedded server, unless DATABASE_URL (or PGARENA_DATABASE_URL) names one.
    Each option falls back to its environment variable, then to its default.
    """
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
        pooler,
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
    """Benchmark, then write the reports beside the result file; exit 1 if an SLO failed or
    every cell did."""
    outcome = bench_cli.run(**options)  # type: ignore[arg-type]
    reports = write_run_reports(outcome)
    if outcome.json_output:
        from pgarena.bench.display import run_document

        document = run_document(outcome.run, outcome.results, reports)
        typer.echo(json.dumps(document, indent=1, allow_nan=False))
    if outcome.all_failed:
        # The reason on the same line: the first cell's error, or its failed requests by kind.
        first = outcome.run.failed_cells[0]
        kinds = ", ".join(f"{n} x {kind}" for kind, n in first.errors.items())
        reason = ((first.error or "").strip().splitlines() or [kinds or "no request answered"])[0]
        typer.secho(
            f"error: every cell failed ({len(outcome.run.cells)}), first: {reason[:200]}; "
            f"see {outcome.results}",
            fg=typer.colors.RED,
            err=True,
        )
        raise SystemExit(1)
    if outcome.slo_failed:
        raise SystemExit(1)


def write_run_reports(outcome: bench_cli.RunOutcome) -> list[Path]:
    """report.md, report.html and charts/*.png beside the result file, from it alone. Where
    they are goes to stdout with the summary (stderr when stdout holds the JSON)."""
    from rich.console import Console

    from pgarena.bench.display import output
    from pgarena.report.build import write_reports

    progress = Console(stderr=True, quiet=outcome.quiet)
    shown = progress if outcome.json_output else output
    with progress.status("writing reports"):
        written = write_reports(outcome.results)
    charts = [path for path in written if path.suffix == ".png"]
    for path in written:
        if path.suffix != ".png":
            shown.print(f"report: {path}", soft_wrap=True, highlight=False)
    if charts:
        shown.print(
            f"charts: {charts[0].parent}/ ({len(charts)} PNG)", soft_wrap=True, highlight=False
        )
    return written


app.command("calibrate")(bench_cli.calibrate)
app.command("report")(report_command)
app.command("compare")(compare_command)
app.command("claims")(claims_command)
app.command("chaos")(chaos_command)
app.command("locust")(locust_command)


def fail(message: str) -> None:
    """Print one line to stderr and exit 2, the exit code for usage errors."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise SystemExit(2)


def describe_validation_error(error: ValidationError) -> str:
    """Settings errors as one line: 'port: Input should be less than or equal to 65535'."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"{field}: {first['msg']}"


# Top-level modules of the `bench` extra, whose absence is a missing extra, not a bug.
BENCH_PACKAGES = {"hdrh", "httptools", "numpy", "scipy", "matplotlib", "jsonschema", "psutil"}


def main() -> None:
    """Console entry point."""
    try:
        app(prog_name="pgarena")  # also under `python -m pgarena`
    except UserError as error:
        fail(str(error))
    except ValidationError as error:
        fail(describe_validation_error(error))
    except ModuleNotFoundError as error:
        # `pip install pgarena` serves; measuring and reporting need the `bench` extra.
        if error.name not in BENCH_PACKAGES:
            raise
        fail(f"this command needs the benchmark packages: pip install 'pgarena[bench]' ({error})")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
