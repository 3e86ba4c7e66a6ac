"""A run's figures as flat files for people who plot in their own tools (pandas, R, a sheet).

- `cells.csv`: one row per cell (one repeat of stack x workload x concurrency), failed ones
  included, with their `status` and `error`.
- `summary.csv`: one row per summary (a cell key across its repeats): each estimate's mean
  and 95% interval, as the reports show them.
- `series.jsonl`: JSON Lines, one object per point of every cell's time series, each line
  carrying its cell's key and repeat so that the file concatenates and filters without joins.

Numbers are written at full precision and unformatted (the csv module writes a float's
`repr`), so that a reader parses them as floats; a figure that does not exist (None) is an
empty CSV field, or `null` in JSON. Like the other reports these are views of `results.json`,
computed from the `Run` and never measured again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pgarena.results.model import CPU_PARTS, LATENCY_FIELDS, Cell, Run, SeriesPoint
from pgarena.results.stats import Estimate

CELLS_FILENAME = "cells.csv"
SUMMARY_FILENAME = "summary.csv"
SERIES_FILENAME = "series.jsonl"
KEY_FIELDS = ("stack", "workload", "concurrency")

Row = dict[str, Any]
Column = tuple[str, Callable[[Any], Any]]  # a header and how to read it from a record


def _steady_rps(cell: Cell) -> Estimate | None:
    return cell.steady.rps if cell.steady else None


def _cell_columns() -> list[Column]:
    latency = [
        (f"latency_{name}_ms", lambda cell, name=name: cell.latency_ms.get(name))
        for name in LATENCY_FIELDS
    ]
    cpu_seconds = [
        (f"{part}_cpu_s", lambda cell, part=part: cell.resources.get(f"{part}_cpu_s"))
        for part in CPU_PARTS
    ]
    shares = [
        (f"cpu_share_{part}", lambda cell, part=part: cell.cpu_share.get(part))
        for part in CPU_PARTS
    ]
    return [
        *_key_columns(),
        ("repeat", lambda cell: cell.repeat),
        ("status", lambda cell: cell.status),
        ("error", lambda cell: cell.error),
        ("duration_s", lambda cell: cell.duration_s),
        ("rps", lambda cell: cell.rps),
        ("requests", lambda cell: cell.requests),
        ("ok", lambda cell: cell.ok),
        # A failed cell that sent nothing has no error count, rather than zero errors.
        ("errors", lambda cell: cell.error_count if cell.requests is not None else None),
        *latency,
        ("requests_per_server_cpu_s", lambda cell: cell.requests_per_server_cpu_s),
        ("statements_per_request", lambda cell: cell.statements_per_request),
        *cpu_seconds,
        *shares,
        ("server_rss_peak_bytes", lambda cell: cell.resources.get("server_rss_peak_bytes")),
        ("steady_start_s", lambda cell: cell.steady.start_s if cell.steady else None),
        # The within-cell interval of `rps`: batch means over this repeat's steady state.
        ("rps_ci95_low", lambda cell: getattr(_steady_rps(cell), "ci95_low", None)),
        ("rps_ci95_high", lambda cell: getattr(_steady_rps(cell), "ci95_high", None)),
        # Appended last, so that readers of older files' columns find them where they were.
        ("new_connections_per_s", lambda cell: cell.new_connections_per_s),
    ]


def _key_columns() -> list[Column]:
    return [(name, lambda record, name=name: getattr(record, name)) for name in KEY_FIELDS]


def _estimate_columns(name: str) -> list[Column]:
    def part(field: str) -> Column:
        return (
            f"{name}_{field}",
            lambda summary: getattr(getattr(summary, name), field, None),
        )

    return [part("mean"), part("ci95_low"), part("ci95_high")]


def _summary_columns() -> list[Column]:
    shares = [
        (f"cpu_share_{part}", lambda summary, part=part: summary.cpu_share.get(part))
        for part in CPU_PARTS
    ]
    return [
        *_key_columns(),
        ("repeats", lambda summary: summary.repeats),
        ("failed", lambda summary: summary.failed),
        ("requests", lambda summary: summary.requests),
        *_estimate_columns("rps"),
        *_estimate_columns("requests_per_server_cpu_s"),
        *_estimate_columns("latency_p50_ms"),
        *_estimate_columns("latency_p99_ms"),
        ("error_rate", lambda summary: summary.error_rate),
        *shares,
        ("peak_rss_bytes", lambda summary: summary.peak_rss_bytes),
        ("statements_per_request", lambda summary: summary.statements_per_request),
        ("warnings", lambda summary: "; ".join(w.message for w in summary.warnings)),
        ("new_connections_per_s", lambda summary: summary.new_connections_per_s),
    ]


CELL_COLUMNS = _cell_columns()
SUMMARY_COLUMNS = _summary_columns()
SERIES_POINT_FIELDS = [name for name in SeriesPoint.__dataclass_fields__ if name != "histogram"]
SERIES_FIELDS = [*KEY_FIELDS, "repeat", *SERIES_POINT_FIELDS, "rps"]


def _write_csv(path: Path, columns: list[Column], records: Iterable[Any]) -> Path:
    # newline="" as the csv module asks: it writes its own line endings, and an error
    # message with a newline in it stays one quoted field.
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([name for name, _ in columns])
        # The csv module writes None as an empty field and a float as its repr (all digits).
        writer.writerows([read(record) for _, read in columns] for record in records)
    return path


def write_cells_csv(run: Run, out_dir: Path) -> Path:
    """Write `cells.csv`, one row per cell (failed ones too) in run order; return its path."""
    return _write_csv(out_dir / CELLS_FILENAME, CELL_COLUMNS, run.cells)


def write_summary_csv(run: Run, out_dir: Path) -> Path:
    """Write `summary.csv`, one row per summary in the file's order; return its path."""
    return _write_csv(out_dir / SUMMARY_FILENAME, SUMMARY_COLUMNS, run.summaries)


def series_records(run: Run) -> Iterator[Row]:
    """Every series point of every cell as one flat record with the fields of
    `SERIES_FIELDS`: the cell's key and repeat, the point's figures, and `rps` (ok requests
    over the point's duration, as the series chart plots it).

    The point's encoded HdrHistogram is left out: a compressed base64 string that only an
    HdrHistogram library decodes, half again the size of the rest of the line, that no
    plotting tool reads. Whoever needs percentiles merged over several intervals reads the
    histograms from results.json.
    """
    # A point without its own duration lasted one interval of the plan.
    interval_s = run.plan.get("series_interval_s")
    for cell in run.cells:
        for point in cell.series:
            duration = point.duration_s or interval_s
            record: Row = {**cell.key.to_dict(), "repeat": cell.repeat}
            record.update((name, getattr(point, name)) for name in SERIES_POINT_FIELDS)
            record["rps"] = point.ok / duration if duration else None
            yield record


def write_series_jsonl(run: Run, out_dir: Path) -> Path:
    """Write `series.jsonl` (see `series_records`); empty when the run has no series (a
    version-1 result file). Returns its path."""
    path = out_dir / SERIES_FILENAME
    with path.open("w", encoding="utf-8") as stream:
        for record in series_records(run):
            stream.write(json.dumps(record, allow_nan=False) + "\n")
    return path
