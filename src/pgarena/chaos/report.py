"""`chaos.md` and `chaos.html`: one section per stack, one row per fault, from `chaos.json`
alone. The HTML is the same tables, self-contained, for a CI artifact or a browser."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

_HTML = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pgarena chaos</title>
<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.fail{color:#b00;font-weight:bold}.pass{color:#070}</style></head><body>
<h1>pgarena chaos</h1>
<p>Started {{ d.started_at }}, status <b>{{ d.status }}</b>{{ ", quick" if d.quick }}.
Request deadline {{ "%g" % d.bounds.request_deadline_s }} s: no request may take longer than
{{ "%g" % d.bounds.longest_request_s }} s.</p>
{% for stack, rows in stacks %}<h2>{{ stack }}</h2>
<table><tr><th>fault</th><th>during</th><th>after</th><th>longest</th><th>recovery</th>
<th>leaks</th><th>verdict</th></tr>
{% for r in rows %}<tr><td>{{ r.fault }}</td><td>{{ counts(r.during) }}</td>
<td>{{ counts(r.after) }}</td><td>{{ seconds(r.longest_s) }}</td>
<td>{{ seconds(r.recovery_s) }}</td><td>{{ r.leaks | join("; ") or "none" }}</td>
<td class="{{ 'pass' if r.passed else 'fail' }}">{{ verdict(r) }}</td></tr>
{% endfor %}</table><ul>
{% for r in rows %}{% for c in r.checks if not c.passed %}<li class="fail">{{ r.fault }}:
{{ c.name }}: {{ c.measured }} (bound {{ c.bound }})</li>{% endfor %}
{% for note in r.notes %}<li>{{ r.fault }}: {{ note }}</li>{% endfor %}{% endfor %}
</ul>{% endfor %}</body></html>
""")


def _verdict(result: dict[str, Any]) -> str:
    if not result["checks"]:
        return "skipped"
    return "pass" if result["passed"] else "FAIL"


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
            verdict = _verdict(r).replace("FAIL", "**FAIL**")
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


def html(document: dict[str, Any]) -> str:
    """The same report as `markdown`, as one self-contained HTML page."""
    stacks = [
        (stack, [r for r in document["results"] if r["stack"] == stack])
        for stack in document["stacks"]
    ]
    return _HTML.render(
        d=document,
        stacks=[(stack, rows) for stack, rows in stacks if rows],
        counts=_counts,
        seconds=_seconds,
        verdict=_verdict,
    )
