"""`pgarena chaos`: the command. The faults are imported when it runs, so that `pgarena
--help` stays light."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pgarena.bench.options import Quiet
from pgarena.errors import UserError


def chaos_command(
    quick: Annotated[
        bool, typer.Option("--quick", help="Shorter load around each fault: all stacks in ~5 min.")
    ] = False,
    stacks: Annotated[
        str | None,
        typer.Option(
            "--stacks",
            "-s",
            metavar="NAME,...",
            help="Stacks to break.",
            show_default="every stack",
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            metavar="NAME,...",
            show_default="every fault",
            help="restart, freeze, pool, disconnect, writes, schemathesis.",
        ),
    ] = None,
    freeze: Annotated[
        str, typer.Option(metavar="TIME", help="How long PostgreSQL stays frozen.")
    ] = "8s",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Where chaos.json and chaos.md go.",
            show_default="./chaos-results/<UTC time>",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            file_okay=False,
            show_default="a temporary one",
            help="The embedded PostgreSQL to restart and freeze (never "
            "PGARENA_DATA_DIR's unless given here).",
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Break PostgreSQL under each stack and check the service copes within its bounds.

    The faults: restart, freeze, pool exhaustion, disconnect storm, concurrent writes, and
    schemathesis when installed. Writes chaos.json, chaos.md and chaos.html; exits 1 if any
    check fails."""  # fmt: skip
    from pgarena.bench.options import available_stacks, parse_names, parse_seconds
    from pgarena.bench.runner import check_writable
    from pgarena.chaos.model import Bounds
    from pgarena.chaos.report import html, markdown
    from pgarena.chaos.runner import FAULTS, ChaosConfig, run_chaos
    from pgarena.settings import Settings

    known = available_stacks()
    names = parse_names(stacks) if stacks else known
    for name in names:
        if name not in known:
            raise UserError(f"unknown stack {name!r}; choose from: {', '.join(known)}")
    chosen = tuple(parse_names(faults)) if faults else FAULTS
    for fault in chosen:
        if fault not in FAULTS:
            raise UserError(f"unknown fault {fault!r}; choose from: {', '.join(FAULTS)}")
    freeze_s = parse_seconds(freeze, "--freeze")
    if freeze_s <= 0:
        raise UserError(f"--freeze: must be > 0, got {freeze!r}")
    out_dir = out or Path("chaos-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    check_writable(out_dir)
    config = ChaosConfig(
        stacks=names, out_dir=out_dir, faults=chosen, quick=quick, freeze_s=freeze_s,
        data_dir=data_dir, bounds=Bounds.from_settings(Settings()),
    )  # fmt: skip
    report = out_dir / "chaos.md"
    try:
        writer = run_chaos(config, (lambda line: None) if quiet else _progress)
    finally:
        # Interrupted or crashed too: the report of the faults measured, from the file.
        results = out_dir / "chaos.json"
        if results.exists():
            document = json.loads(results.read_text())
            report.write_text(markdown(document))
            report.with_suffix(".html").write_text(html(document))
    typer.echo(f"results: {writer.path}\nreport: {report}, {report.with_suffix('.html')}")
    failed = [
        f"{r.stack} {r.fault}: {c.name} {c.measured} (bound {c.bound})"
        for r in writer.results
        for c in r.checks
        if not c.passed
    ]
    if failed:
        typer.secho(
            f"error: {len(failed)} checks failed, first: {failed[0]}", fg=typer.colors.RED, err=True
        )
        raise SystemExit(1)
    typer.echo(f"every check passed: {len(writer.results)} faults, {', '.join(names)}")


def _progress(line: str) -> None:
    typer.echo(line, err=True)
