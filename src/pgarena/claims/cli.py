"""`pgarena claims`: the command. The work (catalogue, experiments, verdicts) is imported
when the command runs, so that `pgarena --help` stays light."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from pgarena.bench.options import Quiet


def claims_command(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Every claim within 8 minutes: 2 repeats of 1.25 s per cell, not 3 of 10 s.",
        ),
    ] = False,
    only: Annotated[
        str | None,
        typer.Option("--only", metavar="ID,...", help="Test only these claims (their ids)."),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Where the results, reports and runs go."),
    ] = Path("claims-results"),
    quiet: Quiet = False,
) -> None:
    """Test the seed documents' performance claims here, and write a verdict table.

    Says how long it will take before it starts; writes results.json, claims.json,
    report.md, report.html and charts/ into --out."""
    from pgarena.claims.experiments import run_claims

    # SIGTERM (a kill, a CI timeout) ends the run like Ctrl-C: every finished cell is kept.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        typer.echo(str(run_claims(quick, only, out, quiet=quiet)))
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: finished cells kept in {out / 'results.json'}; "
            f"`pgarena report {out / 'results.json'}` writes their reports",
            err=True,
        )
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
