"""A run as a terminal table, a JSON document and a standalone HTML page."""
from __future__ import annotations

import html
import json
import textwrap

from tmf_server.conformance.runner import FAILED, PASSED, SKIPPED, Outcome, Run

SYMBOLS = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
REPORT_VERSION = 1


def verdict(run: Run) -> str:
    optional_failures = sum(1 for o in run.outcomes if o.result == FAILED and not o.check.required)
    text = (f"{run.count(PASSED)} passed, {run.count(FAILED)} failed"
            + (f" ({optional_failures} optional)" if optional_failures else "")
            + f", {run.count(SKIPPED)} skipped in {run.seconds:.1f} s")
    return ("CONFORMANT: " if run.passed else "NOT CONFORMANT: ") + text


def table(run: Run, width: int | None = None) -> str:
    """One line per check; on a terminal of `width` columns, long details wrap under their column."""
    id_width = max(len(o.check.id) for o in run.outcomes) if run.outcomes else 10
    lines = [f"TMF656 v4 conformance of {run.base_url}", "",
             f"{'RESULT':<6}  {'CHECK':<{id_width}}  {'TIME':>6}  DETAILS"]
    indent = 6 + 2 + id_width + 2 + 6 + 2
    for outcome in run.outcomes:
        result = SYMBOLS[outcome.result] + ("" if outcome.check.required or outcome.result != FAILED else "*")
        details = outcome.reason or outcome.check.title
        if outcome.result == FAILED and outcome.exchange:
            details += f" [{_request_line(outcome)}]"
        wrapped = (textwrap.wrap(details, max(30, width - indent)) if width else [details]) or [""]
        lines.append(f"{result:<6}  {outcome.check.id:<{id_width}}  {outcome.seconds:>5.1f}s  {wrapped[0]}")
        lines.extend(" " * indent + more for more in wrapped[1:])
        lines.extend(" " * indent + f"note: {note}" for note in outcome.notes)
    if any(o.result == FAILED and not o.check.required for o in run.outcomes):
        lines.append("* optional check: its failure does not fail the run")
    lines += ["", verdict(run)]
    return "\n".join(lines)


def _request_line(outcome: Outcome) -> str:
    request = outcome.exchange["request"]
    response = outcome.exchange["response"]
    answer = response["status"] if response else "no answer"
    return f"{request['method']} {request['url']} -> {answer}"


def as_json(run: Run) -> dict:
    return {
        "reportVersion": REPORT_VERSION,
        "target": run.base_url,
        "started": run.started,
        "seconds": round(run.seconds, 3),
        "conformant": run.passed,
        "summary": {PASSED: run.count(PASSED), FAILED: run.count(FAILED), SKIPPED: run.count(SKIPPED)},
        "checks": [
            {"id": o.check.id, "title": o.check.title, "required": o.check.required, "result": o.result,
             "reason": o.reason, "seconds": round(o.seconds, 3), "failedExchange": o.exchange, "notes": o.notes}
            for o in run.outcomes
        ],
    }


def write_json(run: Run, path: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(as_json(run), file, indent=2)
        file.write("\n")


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:top}
.passed{color:#176f2c}.failed{color:#b00020;font-weight:bold}.skipped{color:#8a6d00}
.verdict{font-size:1.1rem;margin:1rem 0}pre{background:#f6f6f6;padding:.6rem;white-space:pre-wrap;
word-break:break-all;max-height:24rem;overflow:auto}code{font-size:.9em}
"""


def html_page(run: Run) -> str:
    rows = []
    for o in run.outcomes:
        details = ""
        if o.exchange:
            details = ("<details><summary>Request that failed</summary><pre>"
                       + html.escape(json.dumps(o.exchange, indent=2)) + "</pre></details>")
        notes = "".join(f"<div>note: {html.escape(n)}</div>" for n in o.notes)
        rows.append(
            f"<tr><td class='{o.result}'>{o.result}</td><td><code>{html.escape(o.check.id)}</code></td>"
            f"<td>{html.escape(o.check.title)}</td><td>{'required' if o.check.required else 'optional'}</td>"
            f"<td>{o.seconds:.1f} s</td><td>{html.escape(o.reason)}{details}{notes}</td></tr>")
    klass = PASSED if run.passed else FAILED
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>TMF656 v4 conformance: {html.escape(run.base_url)}</title><style>{STYLE}</style></head><body>"
        f"<h1>TMF656 v4 conformance of <code>{html.escape(run.base_url)}</code></h1>"
        f"<p>Started {html.escape(run.started)}.</p>"
        f"<p class='verdict {klass}'>{html.escape(verdict(run))}</p>"
        "<table><thead><tr><th>Result</th><th>Check</th><th>What it checks</th><th>Kind</th><th>Time</th>"
        "<th>Details</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></body></html>\n")


def write_html(run: Run, path: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(html_page(run))
