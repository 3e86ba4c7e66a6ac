"""Reading a result file for a report, with one-line errors a user can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgarena.errors import UserError

# The result-file versions these reports understand.
SUPPORTED_SCHEMA_VERSIONS = (1,)


def read_results(path: Path | str) -> dict[str, Any]:
    """Load `results.json`; raise UserError when it is missing, unreadable or not supported."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such result file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(results, dict) or "schema_version" not in results:
        raise UserError(f"{path}: not a pgarena result file (no schema_version)")
    version = results["schema_version"]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise UserError(
            f"{path}: result file schema version {version} is not supported "
            f"(this pgarena reads version {supported})"
        )
    if not isinstance(results.get("cells"), list):
        raise UserError(f"{path}: not a pgarena result file (no cells)")
    return results
