"""`pgarena run` and `pgarena calibrate`."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pgarena.bench.loadgen import Progress
from pgarena.bench.plan import (
    PRESETS,
    SERVER_LIFETIMES,
    SERVER_START_ESTIMATE_S,
    CellKey,
    Plan,
    fit_to_budget,
    format_duration,
)
from pgarena.bench.workloads import WORKLOADS, DataSizes, resolve_workloads
from pgarena.errors import UserError

console = Console(stderr=True)

# Keep the embedded database of `pgarena run` apart from the one `pgarena serve` uses by
# default: a run truncates and re-seeds its tables.
ARENA_DATABASE = "pgarena_arena"


def available_stacks() -> list[str]:
    """Every stack `pgarena serve` knows, in its order."""
    from pgarena.service.stacks import STACKS

    return list(STACKS)


def parse_seconds(text: str, option: str) -> float:
    """'10s', '500ms', '2m', '1.5' (seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*", text)
    if match is None:
        raise UserError(f"{option}: expected a duration like 10s, 500ms or 2m, got {text!r}")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit in ("m", "min") else value


def parse_names(text: str) -> list[str]:
    """'a,b, c' -> ['a', 'b', 'c']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_counts(text: str, option: str) -> list[int]:
    """'1,10,100' -> [1, 10, 100], each >= 1."""
    try:
        counts = [int(part) for part in parse_names(text)]
    except ValueError:
        raise UserError(f"{option}: expected numbers like 1,10,100, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise UserError(f"{option}: every value must be >= 1")
    return counts


def _preset_help() -> str:
    stacks = len(available_stacks())
    lines = []
    for preset in PRESETS.values():
        plan = _preset_plan(preset.name, available_stacks())
        lines.append(
            f"{preset.name}: ~{format_duration(plan.estimate_s())} with the {stacks} stacks "
            f"({len(plan.cells())} cells) - {preset.summary}."
        )
    return " ".join(lines)


def _preset_plan(name: str, stacks: list[str]) -> Plan:
    preset = PRESETS[name]
    plan = Plan(
        stacks=tuple(stacks),
        workloads=tuple(resolve_workloads(preset.workloads)),
        concurrency=preset.concurrency,
        repeats=preset.repeats,
        duration_s=preset.duration_s,
        requests=None,
        warmup_s=preset.warmup_s,
        rate=None,
        preset=preset.name,
        server_lifetime=preset.server_lifetime,
    )
    return fit_to_budget(plan, preset)


def run(
    stacks: Annotated[
        str | None, typer.Option(help="Comma-separated stacks (default: every stack).")
    ] = None,
    workloads: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated workloads or groups (advanced, queries, updates, techempower, "
            f"all). Workloads: {', '.join(WORKLOADS)}."
        ),
    ] = None,
    concurrency: Annotated[
        str | None, typer.Option(help="Comma-separated connection counts, e.g. 1,10,100.")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Measured time per cell, e.g. 10s.")] = None,
    requests: Annotated[
        int | None,
        typer.Option(min=1, help="Measure this many requests per cell instead of a duration."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Open loop: requests per second due (latency counted from the due time).",
        ),
    ] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Repeats of every cell.")] = None,
    warmup: Annotated[
        str | None, typer.Option(help="Load before measuring, recorded but not counted.")
    ] = None,
    preset: Annotated[str, typer.Option(help=_preset_help())] = "quick",
    workers: Annotated[int | None, typer.Option(min=1, help="Server worker processes.")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Server threads for sync endpoints.")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option(min=1, help="Database pool size per worker.")
    ] = None,
    max_overflow: Annotated[
        int | None, typer.Option(min=0, help="Connections beyond the pool.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="ASGI server: uvicorn, gunicorn or granian (default: uvicorn)."),
    ] = None,
    server_lifetime: Annotated[
        str | None,
        typer.Option(
            help="cell: a fresh server for every cell; stack: one per stack and repeat "
            "(default: the preset's)."
        ),
    ] = None,
    slow_ms: Annotated[
        int, typer.Option(min=0, help="How long each slow-db request waits in PostgreSQL.")
    ] = 50,
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default ./arena-results/<UTC timestamp>)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Measure a running service at this http:// URL; starts no server."),
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option(help="With --target: allow workloads that write.")
    ] = False,
    generators: Annotated[
        int, typer.Option(min=1, help="Load generator processes (they share the connections).")
    ] = 1,
    timeout: Annotated[str, typer.Option(help="Per-request timeout.")] = "10s",
) -> None:
    """Benchmark the stacks: every stack x workload x concurrency x repeat, one result file.

    Starts PostgreSQL (embedded, or DATABASE_URL, whose tables are truncated and re-seeded).

    For every cell: a fresh server (or one per stack with the quick preset), a warmup, a
    measurement by a separate load generator process; throughput, latency percentiles,
    errors, and the CPU and memory of the server, PostgreSQL and the generator.

    Ctrl-C keeps every finished cell.
    """
    from pgarena.bench.runner import RunConfig, Target, run_plan
    from pgarena.bench.servers import ServerOptions
    from pgarena.service.server import SERVERS

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose from: {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    if server is not None and server not in SERVERS:
        raise UserError(f"unknown server {server!r}; choose from: {', '.join(SERVERS)}")
    known_stacks = available_stacks()
    stack_names = parse_names(stacks) if stacks else known_stacks
    target_spec = Target.parse(target) if target else None
    if target_spec is None:
        for name in stack_names:
            if name not in known_stacks:
                raise UserError(f"unknown stack {name!r}; choose from: {', '.join(known_stacks)}")
    elif len(stack_names) != 1:
        stack_names = ["target"]  # one service is measured; --stacks NAME only labels it
    chosen_workloads = resolve_workloads(parse_names(workloads) if workloads else chosen.workloads)
    if not chosen_workloads:
        raise UserError("--workloads: no workload given")
    if target_spec is not None and not allow_writes:
        writing = [w.name for w in chosen_workloads if w.writes]
        if writing:
            raise UserError(
                f"--target: {', '.join(writing)} write to the target's database; "
                "leave them out or pass --allow-writes"
            )
    if duration is not None and requests is not None:
        raise UserError("give --duration or --requests, not both")
    lifetime = server_lifetime or chosen.server_lifetime
    if lifetime not in SERVER_LIFETIMES:
        raise UserError(f"--server-lifetime must be one of: {', '.join(SERVER_LIFETIMES)}")
    plan = Plan(
        stacks=tuple(stack_names),
        workloads=tuple(chosen_workloads),
        concurrency=tuple(parse_counts(concurrency, "--concurrency"))
        if concurrency
        else chosen.concurrency,
        repeats=repeats or chosen.repeats,
        duration_s=None
        if requests is not None
        else parse_seconds(duration, "--duration")
        if duration
        else chosen.duration_s,
        requests=requests,
        warmup_s=parse_seconds(warmup, "--warmup") if warmup is not None else chosen.warmup_s,
        rate=rate,
        preset=chosen.name,
        server_lifetime=lifetime,
        slow_ms=slow_ms,
        start_servers=target_spec is None,
    )
    if plan.duration_s is not None and plan.duration_s <= 0:
        raise UserError("--duration must be > 0")
    if duration is None and requests is None and repeats is None:
        plan = fit_to_budget(plan, chosen)
    out_dir = out or Path("arena-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = DataSizes()
    config = RunConfig(
        plan=plan,
        out_dir=out_dir,
        target=target_spec,
        data=data,
        server_options=ServerOptions(
            workers=workers,
            threads=threads,
            pool_size=pool_size,
            max_overflow=max_overflow,
            server=server,
        ),
        generator_processes=generators,
        timeout_s=parse_seconds(timeout, "--timeout"),
    )

    cells = len(plan.cells())
    console.print(
        f"[bold]pgarena run[/] - {cells} cells: {len(plan.stacks)} stacks x "
        f"{len(plan.workloads)} workloads x {len(plan.concurrency)} concurrency levels x "
        f"{plan.repeats} repeats, {_describe_load(plan)}; "
        f"estimated {format_duration(plan.estimate_s())}"
    )
    if target_spec is None:
        config = _prepare_database(config)

    # SIGTERM (a kill, a CI timeout) ends the run like Ctrl-C: finished cells are kept and
    # the file says "interrupted".
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    reporter = RichReporter(plan)
    try:
        with reporter:
            writer = run_plan(config, reporter)
    except KeyboardInterrupt:
        results = out_dir / "results.json"
        console.print(
            f"[yellow]interrupted[/]: finished cells kept in {results}; "
            f"`pgarena report {results}` writes their reports"
        )
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_summary(writer.document, writer.path)
    write_run_reports(writer.path)


def write_run_reports(results: Path) -> None:
    """report.md, report.html and charts/*.png beside the result file, from it alone."""
    from pgarena.report.build import write_reports

    with console.status("writing reports"):
        written = write_reports(results)
    charts = [path for path in written if path.suffix == ".png"]
    for path in written:
        if path.suffix != ".png":
            console.print(f"report: {path}")
    if charts:
        console.print(f"charts: {charts[0].parent}/ ({len(charts)} PNG)")


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _describe_load(plan: Plan) -> str:
    measured = f"{plan.requests} requests" if plan.requests else f"{plan.duration_s:g} s"
    loop = f"open loop at {plan.rate:g} req/s" if plan.rate else "closed loop"
    return f"{plan.warmup_s:g} s warmup + {measured} per cell, {loop}"


def _prepare_database(config: Any) -> Any:
    """Start/migrate the database and seed it; returns the config with the URL filled in."""
    from pgarena.database import ensure_database
    from pgarena.database.seed import seed_database
    from pgarena.database.urls import redact
    from pgarena.settings import Settings

    settings = Settings(database_name=ARENA_DATABASE)
    with console.status("starting PostgreSQL and migrating"):
        url = ensure_database(settings)
    data = config.data
    seeding = f"seeding {data.users} users, {data.products} products, {data.orders} orders"
    with console.status(seeding):
        summary = seed_database(url, users=data.users, products=data.products, orders=data.orders)
    console.print(f"database {redact(url)} seeded in {summary.seconds:.1f} s")
    return replace(
        config,
        database_url=url,
        embedded_database=settings.database_url is None,
        seed_seconds=summary.seconds,
    )


class RichReporter:
    """Progress: cell n of N, elapsed, ETA, and a live line with requests/s and p99."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.total = len(plan.cells())
        self.started = time.monotonic()
        self.cell_started_at = self.started
        self.finished_cells = 0
        self.current = ""
        self.live_line = ""
        self.failed = 0
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> RichReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.__exit__(None, None, None)

    def _eta(self) -> float:
        remaining = self.total - self.finished_cells
        if self.finished_cells:
            per_cell = (time.monotonic() - self.started) / self.finished_cells
        else:
            starts = self.plan.server_starts() / max(1, self.total)
            per_cell = self.plan.cell_seconds() + starts * SERVER_START_ESTIMATE_S
        return max(0.0, remaining * per_cell - (time.monotonic() - self.cell_started_at))

    def _render(self) -> Text:
        elapsed = time.monotonic() - self.started
        text = Text()
        text.append(f"cell {min(self.finished_cells + 1, self.total)}/{self.total} ", "bold")
        text.append(self.current)
        text.append(f"  elapsed {format_duration(elapsed)}, ETA {format_duration(self._eta())}")
        if self.failed:
            text.append(f"  {self.failed} failed", "red")
        if self.live_line:
            text.append(f"\n  {self.live_line}", "cyan")
        return text

    def _refresh(self) -> None:
        self.live.update(self._render())

    def cell_started(self, index: int, total: int, key: CellKey) -> None:
        """Show which cell runs."""
        self.cell_started_at = time.monotonic()
        self.current = f"{key.stack} / {key.workload.name} / c={key.concurrency} / r{key.repeat}"
        self.live_line = "starting"
        self._refresh()

    def progress(self, reading: Progress) -> None:
        """Live requests/s and p99."""
        p99 = f"{reading.p99_ms:.1f} ms" if reading.p99_ms is not None else "-"
        errors = f", {reading.errors} errors" if reading.errors else ""
        self.live_line = (
            f"{reading.phase}: {reading.rps:,.0f} req/s, p99 {p99}, "
            f"{reading.ok:,} ok{errors} ({reading.elapsed_s:.1f} s)"
        )
        self._refresh()

    def cell_finished(self, index: int, total: int, cell: dict[str, Any]) -> None:
        """Log one line per cell above the live display."""
        self.finished_cells = index + 1
        label = (
            f"{cell['stack']:<15} {cell['workload']:<11} "
            f"c={cell['concurrency']:<4} r{cell['repeat']}"
        )
        if cell["status"] == "ok":
            p99 = cell["latency_ms"]["p99"]
            errors = sum(cell["errors"].values())
            suffix = f"  [red]{errors} errors[/]" if errors else ""
            console.print(
                f"  {label} {cell['rps']:>9,.0f} req/s  p99 {p99:>8.1f} ms{suffix}",
                highlight=False,
            )
        else:
            self.failed += 1
            console.print(f"  {label} [red]failed[/]: {cell['error']}", highlight=False)
        self.live_line = ""
        self._refresh()


def _format_figure(figure: dict[str, Any] | None, digits: int = 0) -> str:
    if not figure or figure["mean"] is None:
        return "-"
    text = f"{figure['mean']:,.{digits}f}"
    if figure["ci95_low"] is not None:
        half = (figure["ci95_high"] - figure["ci95_low"]) / 2
        text += f" ± {half:,.{digits}f}"
    return text


def print_summary(document: dict[str, Any], path: Path) -> None:
    """The final table (means with 95% CI half-widths), its warnings, and where the results
    are. Warnings are numbered below the table so the table stays narrow."""
    table = Table(title="pgarena run: mean across repeats (± 95% CI)")
    left = ("workload", "stack", "CPU srv/pg/gen", "!")
    for column in ("workload", "c", "stack", "req/s", "p99 ms", "req/CPU-s", *left[2:]):
        table.add_column(column, justify="left" if column in left else "right")
    shares: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for cell in document["cells"]:
        if cell["status"] == "ok":
            key = (cell["stack"], cell["workload"], cell["concurrency"])
            shares.setdefault(key, []).append(cell["cpu_share"])
    notes: dict[str, int] = {}
    single_repeat = False
    plan = document["plan"]

    def plan_order(summary: dict[str, Any]) -> tuple[int, int, int]:
        # Stacks side by side for each workload and concurrency, as they compete.
        return (
            _index(plan["workloads"], summary["workload"]),
            summary["concurrency"],
            _index(plan["stacks"], summary["stack"]),
        )

    for summary in sorted(document["summary"], key=plan_order):
        key = (summary["stack"], summary["workload"], summary["concurrency"])
        marks = []
        for warning in summary["warnings"]:
            if warning.startswith("one repeat"):
                single_repeat = True
                continue
            marks.append(str(notes.setdefault(warning, len(notes) + 1)))
        table.add_row(
            summary["workload"],
            str(summary["concurrency"]),
            summary["stack"],
            _format_figure(summary["rps"]),
            _format_figure(summary["latency_p99_ms"], 1),
            _format_figure(summary["requests_per_server_cpu_s"]),
            _format_shares(shares.get(key, [])),
            ",".join(marks),
        )
    console.print(table)
    for warning, number in notes.items():
        console.print(f"  [yellow]{number}[/] {warning}", highlight=False)
    if single_repeat:
        console.print("  one repeat per cell: no confidence intervals (use --repeats 3)")
    failed = sum(1 for cell in document["cells"] if cell["status"] != "ok")
    if failed:
        console.print(f"[red]{failed} of {len(document['cells'])} cells failed[/]")
    console.print(f"results: {path}")
    logs = path.parent / "servers"
    if logs.is_dir():
        console.print(f"server logs: {logs}")


def _index(items: list[Any], item: Any) -> int:
    return items.index(item) if item in items else len(items)


def _format_shares(shares: list[dict[str, Any]]) -> str:
    if not shares:
        return "-"

    def mean(part: str) -> str:
        values = [share[part] for share in shares if share.get(part) is not None]
        return f"{sum(values) / len(values):.0%}" if values else "-"

    return f"{mean('server')}/{mean('postgres')}/{mean('generator')}"


def calibrate(
    stack: Annotated[str, typer.Option(help="Stack of the server to load.")] = "async",
    path: Annotated[str, typer.Option(help="Endpoint both tools request.")] = "/users/1",
    concurrency: Annotated[
        str, typer.Option(help="Comma-separated connection counts (the presets' levels).")
    ] = "10,50,100",
    duration: Annotated[str, typer.Option(help="Measured time per tool, level and round.")] = "4s",
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds per level (medians are compared).")
    ] = 3,
    target: Annotated[
        str | None, typer.Option(help="Load a running service at this http:// URL instead.")
    ] = None,
) -> None:
    """Compare pgarena's load generator with wrk on the same endpoint and concurrency.

    Prints both throughputs, their ratio (the goal is >= 90% of wrk) and the CPU each spends
    per request. Exit code 0 when every level reaches 90%, 1 when one does not, 2 when wrk
    is not installed (Debian/Ubuntu: apt-get install wrk) or the server cannot start.
    """
    from pgarena.bench.calibrate import TARGET_RATIO, wrk_path
    from pgarena.bench.calibrate import calibrate as measure
    from pgarena.bench.runner import Target
    from pgarena.bench.servers import ServerFailed, ServerOptions, ServerProcess

    wrk_path()
    levels = parse_counts(concurrency, "--concurrency")
    seconds = parse_seconds(duration, "--duration")
    if not path.startswith("/"):
        raise UserError("--path must start with /")
    server = None
    if target:
        spec = Target.parse(target)
        host, port, prefix = spec.host, spec.port, spec.path_prefix
    else:
        if stack not in available_stacks():
            raise UserError(
                f"unknown stack {stack!r}; choose from: {', '.join(available_stacks())}"
            )
        config = _prepare_database(_CalibrationConfig())
        log = Path(tempfile_dir()) / f"calibrate-{stack}.log"
        try:
            server = ServerProcess(stack, config.database_url, ServerOptions(), log)
        except ServerFailed as failure:
            raise UserError(str(failure)) from None
        host, port, prefix = server.host, server.port, ""
    try:
        with console.status(f"measuring wrk and pgarena on {prefix + path}, {seconds:g} s each"):
            results = measure(host, port, prefix + path, levels, seconds, rounds)
    finally:
        if server is not None:
            server.stop()
    where = f" on stack {stack}" if server else ""
    table = Table(title=f"generator calibration: GET {prefix + path}{where}")
    columns = (
        "connections",
        "wrk req/s",
        "pgarena req/s",
        "ratio",
        "pgarena CPU us/req",
        "wrk CPU us/req",
        "errors (pgarena/wrk)",
        "",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(
            str(result.concurrency),
            f"{result.wrk_rps:,.0f}",
            f"{result.generator_rps:,.0f}",
            f"{result.ratio:.0%}",
            _format_us(result.generator_cpu_us_per_request),
            _format_us(result.wrk_cpu_us_per_request),
            f"{result.generator_errors}/{result.wrk_errors}",
            "[green]ok[/]" if result.passed else f"[red]< {TARGET_RATIO:.0%}[/]",
        )
    Console().print(table)
    if not all(result.passed for result in results):
        raise SystemExit(1)


def _format_us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def tempfile_dir() -> str:
    """Where calibration keeps its server log."""
    import tempfile

    return tempfile.gettempdir()


@dataclass
class _CalibrationConfig:
    data: DataSizes = field(default_factory=DataSizes)
    database_url: str | None = None
    embedded_database: bool = False
    seed_seconds: float | None = None
