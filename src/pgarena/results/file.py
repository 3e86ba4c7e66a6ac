"""The result file: one versioned JSON document per run, the source of truth for every report.

`ResultWriter` rewrites the whole document after each cell: to a temporary file in the same
directory, flushed to disk, then renamed over `results.json`. A rename is atomic, so at any
moment the file is the previous complete version or the new one, never half of each: a
crash, kill or Ctrl-C keeps every finished cell. `load_results` reads and validates it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from pgarena.errors import UserError
from pgarena.results.stats import summarize

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
RESULT_FILENAME = "results.json"


def utc_now() -> str:
    """Now, as ISO-8601 UTC with seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the result file."""
    return json.loads(SCHEMA_PATH.read_text())


def validate(document: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` unless `document` follows the schema."""
    import jsonschema

    jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator)


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a result file (or the `results.json` inside a directory)."""
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
    if version != SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema_version {version!r}; this pgarena reads version {SCHEMA_VERSION}"
        )
    try:
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
    """Builds the result document cell by cell and keeps `results.json` up to date."""

    def __init__(self, out_dir: Path, metadata: dict[str, Any], plan: dict[str, Any]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / RESULT_FILENAME
        self.document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "status": "running",
            "started_at": utc_now(),
            "finished_at": None,
            "metadata": metadata,
            "plan": plan,
            "cells": [],
            "summary": [],
        }
        self.write()

    @property
    def cells(self) -> list[dict[str, Any]]:
        """The cells written so far."""
        return self.document["cells"]

    def add_cell(self, cell: dict[str, Any]) -> None:
        """Append a finished cell, refresh the summary, write."""
        self.document["cells"].append(cell)
        self.document["summary"] = summarize_cells(self.document["cells"])
        self.write()

    def finish(self, status: str) -> None:
        """Mark the run complete or interrupted, write."""
        self.document["status"] = status
        self.document["finished_at"] = utc_now()
        self.write()

    def write(self) -> None:
        """Write the document as it is now."""
        write_atomically(self.path, self.document)


def _figure(values: Sequence[float]) -> dict[str, Any]:
    return summarize(values).to_dict()


def summarize_cells(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (stack, workload, concurrency), across repeats, in first-seen order.

    Only cells with status "ok" contribute figures; failed repeats and request errors become
    warnings, as does a coefficient of variation of throughput above 10% (pyperf's rule).
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        key = (cell["stack"], cell["workload"], cell["concurrency"])
        groups.setdefault(key, []).append(cell)
    summaries = []
    for (stack, workload, concurrency), members in groups.items():
        ok = [cell for cell in members if cell["status"] == "ok"]
        rps = _figure([cell["rps"] for cell in ok])
        efficiency_values = [
            cell["requests_per_server_cpu_s"]
            for cell in ok
            if cell.get("requests_per_server_cpu_s") is not None
        ]
        summaries.append(
            {
                "stack": stack,
                "workload": workload,
                "concurrency": concurrency,
                "rps": rps,
                "requests_per_server_cpu_s": _figure(efficiency_values)
                if efficiency_values
                else None,
                "latency_p50_ms": _figure(
                    [c["latency_ms"]["p50"] for c in ok if c["latency_ms"]["p50"] is not None]
                ),
                "latency_p99_ms": _figure(
                    [c["latency_ms"]["p99"] for c in ok if c["latency_ms"]["p99"] is not None]
                ),
                "warnings": _warnings(members, ok, rps),
            }
        )
    return summaries


def _warnings(
    members: list[dict[str, Any]], ok: list[dict[str, Any]], rps: dict[str, Any]
) -> list[str]:
    warnings = []
    failed = len(members) - len(ok)
    if failed:
        reason = next(cell["error"] for cell in members if cell["status"] != "ok")
        warnings.append(f"failed: {failed} of {len(members)} repeats ({reason})")
    if rps["cv"] is not None and rps["cv"] > 0.10:
        warnings.append(f"unstable: CV {rps['cv']:.0%} > 10%")
    if len(ok) == 1:
        warnings.append("one repeat: no confidence interval")
    errors: dict[str, int] = {}
    for cell in ok:
        for kind, count in cell["errors"].items():
            if count:
                errors[kind] = errors.get(kind, 0) + count
    if errors:
        total = sum(errors.values())
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items()))
        warnings.append(f"errors: {total} failed requests ({kinds})")
    return warnings
