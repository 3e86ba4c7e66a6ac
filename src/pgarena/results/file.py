"""The result file: one versioned JSON document per run, the source of truth for every report.

`ResultWriter` rewrites the whole document after each cell: to a temporary file in the same
directory, then renamed over `results.json`. A rename is atomic, so at any moment the file
is the previous complete version or the new one, never half of each: a crash, kill or
Ctrl-C keeps every finished cell. `load_run` reads, validates and (for files of an older
schema version) migrates it into a `Run`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from pgarena.errors import UserError
from pgarena.results.model import Cell, Run
from pgarena.results.summary import finish_cell, summarize_run

SCHEMA_VERSION = 2
# Older versions this pgarena still reads, migrating them on load.
READABLE_VERSIONS = (1, 2)
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
RESULT_FILENAME = "results.json"


def utc_now() -> str:
    """Now, as ISO-8601 UTC with seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the result file."""
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _v1_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.with_name("results-1.schema.json").read_text())


def validate(document: dict[str, Any], against: dict[str, Any] | None = None) -> None:
    """Raise `jsonschema.ValidationError` unless `document` follows the (current) schema."""
    import jsonschema

    jsonschema.validate(document, against or schema(), cls=jsonschema.Draft202012Validator)


def migrate_v1(document: dict[str, Any]) -> dict[str, Any]:
    """A version-1 document in version 2's shape.

    Version 1 cells have no time series, so each keeps its whole-window figures and has no
    within-cell interval; the summaries are recomputed by the current rules (version 1's
    stored only per-repeat statistics, in another shape).
    """
    cells = tuple(Cell.from_dict(cell) for cell in document["cells"])
    run = Run(
        schema_version=SCHEMA_VERSION,
        status=document["status"],
        started_at=document["started_at"],
        finished_at=document["finished_at"],
        metadata=document["metadata"],
        plan=document["plan"],
        cells=cells,
        summaries=tuple(summarize_run(cells)),
    )
    return run.to_dict()


def load_run(path: str | Path) -> Run:
    """Read a result file (or the `results.json` inside a directory) into a `Run`."""
    return Run.from_dict(load_results(path))


def load_results(path: str | Path) -> dict[str, Any]:
    """Read, validate and migrate a result file to the current schema version, as JSON."""
    import jsonschema

    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILENAME
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no result file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} is not a pgarena result file")
    version = document.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise UserError(
            f"{path} has schema_version {version!r}; this pgarena reads versions {readable}"
        )
    try:
        if version == 1:
            validate(document, _v1_schema())
            document = migrate_v1(document)
        validate(document)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise UserError(f"{path} is not a valid result file ({where}: {error.message})") from None
    return document


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Replace `path` with `document` as JSON, all or nothing."""
    text = json.dumps(document, indent=1, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=".results-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        # mkstemp makes the file private (0600); a result file is meant to be shared.
        os.chmod(temporary, 0o644)
        # The rename is what makes a crash or kill of the run safe. No fsync: surviving a
        # power cut is not worth a disk flush per cell on a machine being measured.
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ResultWriter:
    """Builds the run cell by cell and keeps `results.json` up to date.

    Each cell's steady-state figures and every summary are computed here, once, as the cell
    is written; readers of the file never recompute them.
    """

    def __init__(self, out_dir: Path, metadata: dict[str, Any], plan: dict[str, Any]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / RESULT_FILENAME
        self.interval_s = float(plan.get("series_interval_s") or 0.25)
        self.run = Run(
            schema_version=SCHEMA_VERSION,
            status="running",
            started_at=utc_now(),
            finished_at=None,
            metadata=metadata,
            plan=plan,
        )
        self.write()

    def add_cell(self, cell: Cell) -> Cell:
        """Finish a cell's figures, append it, refresh the summaries, write; returns the
        cell as stored."""
        if cell.measured:
            cell = finish_cell(cell, self.interval_s)
        cells = (*self.run.cells, cell)
        self.run = self.run.with_cell(cell, summarize_run(cells))
        self.write()
        return cell

    def set_slo_results(self, results: list[dict[str, Any]]) -> None:
        """Record the SLO verdicts of the run, write."""
        self.run = replace(self.run, slo=tuple(results))
        self.write()

    def finish(self, status: str) -> None:
        """Mark the run complete or interrupted, write."""
        self.run = replace(self.run, status=status, finished_at=utc_now())
        self.write()

    def write(self) -> None:
        """Write the run as it is now."""
        write_atomically(self.path, self.run.to_dict())
