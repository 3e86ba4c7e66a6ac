"""`chaos.md`: one section per stack, one row per fault, from `chaos.json` alone."""

from __future__ import annotations

from typing import Any


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} x {status}" for status, n in counts.items()) or "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def markdown(document: dict[str, Any]) -> str:
    """The report of a chaos run: per stack, requests by status during and after each
    fault, the longest request, time to recovery, leaks, and every failed check."""
    bounds = document["bounds"]
    lines = [
        "# pgarena chaos",
        "",
        f"Started {document['started_at']}, status **{document['status']}**"
        f"{', quick' if document.get('quick') else ''}. Request deadline "
        f"{bounds['request_deadline_s']:g} s (from the service's settings): no request may "
        f"take longer than {bounds['longest_request_s']:g} s.",
    ]
    lines += [
        "",
        "*during*: requests started before PostgreSQL accepted connections again (pool "
        "exhaustion: the flood; concurrent writes: the orders). *after*: requests started "
        "after it (pool exhaustion: the /health probes; concurrent writes: 20 clients "
        "creating one user). *recovery*: from PostgreSQL accepting to the first 200 "
        "(disconnect storm: to the fresh /db's answer).",
    ]
    verdict = document.get("passed")
    if verdict is not None:
        lines += ["", "**Every check passed.**" if verdict else "**Some checks failed.**"]
    for stack in document["stacks"]:
        results = [r for r in document["results"] if r["stack"] == stack]
        if not results:
            continue
        lines += [
            "",
            f"## {stack}",
            "",
            "| fault | during | after | longest | recovery | leaks | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in results:
            verdict = "pass" if r["passed"] else "**FAIL**"
            if not r["checks"]:
                verdict = "skipped"
            lines.append(
                f"| {r['fault']} | {_counts(r['during'])} | {_counts(r['after'])} "
                f"| {_seconds(r['longest_s'])} | {_seconds(r['recovery_s'])} "
                f"| {'; '.join(r['leaks']) or 'none'} | {verdict} |"
            )
        failed = [(r, c) for r in results for c in r["checks"] if not c["passed"]]
        notes = [(r, note) for r in results for note in r["notes"]]
        if failed:
            lines += ["", "Failed checks:", ""]
            lines += [
                f"- {r['fault']}: {c['name']}: {c['measured']} (bound {c['bound']})"
                for r, c in failed
            ]
        if notes:
            lines += ["", "Notes:", "", *[f"- {r['fault']}: {note}" for r, note in notes]]
    return "\n".join(lines) + "\n"
