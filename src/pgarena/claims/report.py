"""The claims' reports, beside their result file: `claims.json` (every verdict, for other
tools), `report.md`, `report.html` (self-contained: charts inline as SVG) and
`charts/sweep-*.png`.

The result file is the only input, so `write_claims_reports` can be run again on a kept run
(`docs/claims/`) without measuring anything.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from pgarena.claims.catalogue import Claim
from pgarena.claims.charts import sweep_charts
from pgarena.claims.table import describe_claim, describe_condition, judge_all
from pgarena.results.model import Run
from pgarena.results.verdicts import MIN_EFFECT

CLAIMS_FILENAME = "claims.json"
FAILED_CELLS_RULE = (
    "A failed cell is shown in its row, never hidden. For error-rate claims ('Timeout/Error', "
    "'start failing') a cell that failed because no answer was correct counts as evidence, "
    "by the requests it sent and the kinds of error they met (timeouts, refused "
    "connections...), which the row lists; a cell that failed without sending load (server "
    "never healthy, generator broke) is evidence for nothing. Other claims read only the "
    "repeats that finished."
)
VERDICT_RULE = (
    "holds: the 95% interval meets the claimed value (or range) or lies beyond it in the "
    "claimed direction; does not hold: it lies wholly on the wrong side; inconclusive: "
    "neither, or a ratio whose interval meets both the claim and 'no difference' (1, "
    f"within {MIN_EFFECT:.0%}, the band in which a run names no winner). "
    "A sweep that holds at some values and fails at all others says where: holds only when."
)


def describe_mode(run: Run, quick: bool) -> str:
    plan = run.plan
    measured = f"{plan.get('duration_s'):g} s" if plan.get("duration_s") else "the seed's requests"
    return (
        f"{'--quick' if quick else 'full'}: {plan.get('repeats')} repeats of {measured} or more "
        "per cell (a whole turn of a thread-limited queue) "
        f"after a warmup of at least {plan.get('warmup_s'):g} s, {len(run.cells)} cells, "
        f"measured from {run.started_at} to {run.finished_at or 'now'}"
    )


def write_claims_reports(claims: tuple[Claim, ...], run: Run, out: Path, quick: bool) -> Path:
    """Judge `claims` on `run`, write every output into `out`; return report.md's path."""
    rows = judge_all(claims, run, quick)
    charts = sweep_charts(rows)
    chart_files = [chart.write_png(out / "charts").relative_to(out).as_posix() for chart in charts]
    counts = Counter(row.verdict for row in rows)
    context: dict[str, Any] = {
        "rows": rows,
        "mode": describe_mode(run, quick),
        "run": run,
        "counts": sorted(counts.items(), key=lambda item: -item[1]),
        "verdict_rule": VERDICT_RULE,
        "failed_cells_rule": FAILED_CELLS_RULE,
        "claimed": describe_claim,
        "condition": describe_condition,
    }
    (out / CLAIMS_FILENAME).write_text(
        json.dumps(
            {
                "results": "results.json",
                "mode": context["mode"],
                "verdict_rule": VERDICT_RULE,
                "failed_cells_rule": FAILED_CELLS_RULE,
                "claims": [row.to_dict() for row in rows],
            },
            indent=1,
            allow_nan=False,
        ),
        "utf-8",
    )
    environment = Environment(
        loader=PackageLoader("pgarena.claims", "templates"),
        autoescape=select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["cell"] = _markdown_cell
    markdown = environment.get_template("report.md.j2").render(charts=chart_files, **context)
    path = out / "report.md"
    path.write_text(markdown, "utf-8")
    views = [{"title": chart.title, "svg": chart.svg()} for chart in charts]
    html = environment.get_template("report.html.j2").render(charts=views, **context)
    (out / "report.html").write_text(html, "utf-8")
    return path


def _markdown_cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")
