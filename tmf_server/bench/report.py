"""A run's JSON document as a terminal table, and the progress bar drawn while it runs."""
from __future__ import annotations

import time
from typing import TextIO

from tmf_server.bench.runner import HUBS, Progress

NAME_WIDTH = 22


def _number(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _population_title(document: dict, population: str) -> str:
    stored = (document["populations"].get(population) or {}).get("stored")
    return f"{population} ({_number(stored)} stored)" if stored is not None else population


def table(document: dict) -> str:
    options = document["options"]
    populations = [p for p in ("small", "large") if any(s["population"] == p for s in document["scenarios"])]
    lines = [f"TMF656 benchmark of {document['target']}",
             f"{options['connections']} connections, {options['duration']:g} s measured per scenario after "
             f"{options['warmup']:g} s of warm-up; intake at {document['intakeUrl']}", ""]
    cell = f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    header = " " * NAME_WIDTH + "".join(f"  {_population_title(document, p):<{len(cell)}}" for p in populations)
    lines.append(header + ("  large/small" if len(populations) == 2 else ""))
    lines.append(f"{'SCENARIO':<{NAME_WIDTH}}" + "".join(f"  {cell}" for _ in populations)
                 + ("  p50 ratio" if len(populations) == 2 else ""))
    names = list(dict.fromkeys(s["name"] for s in document["scenarios"]))
    for name in names:
        row = f"{name:<{NAME_WIDTH}}"
        for population in populations:
            found = next((s for s in document["scenarios"] if s["name"] == name
                          and (s["population"] == population or (s["population"] is None and population == "small"))),
                         None)
            if found is None:
                row += "  " + " " * len(cell)
            elif found.get("skipped"):
                row += "  " + f"{'skipped':>{len(cell)}}"
            else:
                row += (f"  {_number(found['requestsPerSecond']):>8} {_number(found['p50Ms']):>8} "
                        f"{_number(found['p99Ms']):>8} {found['errors']:>7}")
        if name in document["largeSmallP50"]:
            row += f"  {document['largeSmallP50'][name]:>9.2f}"
        lines.append(row.rstrip())
    lines.append("")
    for seeding in document["seeding"]:
        if seeding["requests"]:
            lines.append(f"seeding {seeding['population']}: {seeding['requests']:,} creates in "
                         f"{seeding['seconds']:.1f} s ({_number(seeding['requestsPerSecond'])}/s), "
                         f"{seeding['errors']} errors")
    lines.extend(quiet_lines(document))
    for scenario in document["scenarios"]:
        if scenario["name"] in HUBS:
            lines.append(hub_line(scenario))
    for item in [*document["seeding"], *document["scenarios"]]:
        if item.get("firstError"):
            first = item["firstError"]
            where = f"{item['name']} ({item['population']})" if item["population"] else item["name"]
            lines.append(f"errors in {where}: {item['errors']}, the first: {first['request']} -> "
                         f"{first['status'] if first['status'] is not None else 'no answer'}: {first['reason']}"
                         + (f"; body {first['body']}" if first.get("body") else ""))
    for scenario in document["scenarios"]:
        if scenario.get("skipped") and scenario["name"] not in HUBS:
            lines.append(f"{scenario['name']} ({scenario['population']}) skipped: {scenario['skipped']}")
    lines.append(f"{document['requestsSent']:,} requests in {document['seconds']:.0f} s; "
                 f"{document['reportsCreated']:,} reports created; stored reports "
                 f"{_number(document['storedAtStart'])} before, {_number(document['storedAtEnd'])} after")
    lines.append("OK: every answer was the expected one" if document["errors"] == 0
                 else f"NOT OK: {document['errors']} unexpected answers")
    return "\n".join(lines)


def quiet_lines(document: dict) -> list[str]:
    """How long the server's event records took to stop growing before the scenarios (work left by earlier ones)."""
    waited = [s for s in document["scenarios"] if s.get("quiet") is not None]
    if not waited:
        return []
    total = sum(s["quietSeconds"] for s in waited)
    longest = max(waited, key=lambda s: s["quietSeconds"])
    where = longest["name"] + (f" ({longest['population']})" if longest["population"] else "")
    lines = [f"waits for the server's event records to stop growing: {total:.1f} s in all, the longest "
             f"{longest['quietSeconds']:g} s before {where}"]
    late = [s["name"] + (f" ({s['population']})" if s["population"] else "") for s in waited if not s["quiet"]]
    if late:
        lines.append(f"NOT quiet within --quiet-wait before: {', '.join(late)}")
    return lines


def hub_line(hub: dict) -> str:
    name = hub["name"] + (f" (creates paced at {_number(hub['pacedRate'])}/s)" if hub.get("pacedRate") else "")
    if hub.get("skipped"):
        return f"{name} skipped: {hub['skipped']}"
    within = "all within" if hub["allDelivered"] else "NOT all within"
    settled = (f"settled in {hub['settleSeconds']:g} s" if hub.get("settled")
               else f"NOT settled within {hub['settleLimitSeconds']:g} s")
    return (f"{name}: {hub['listeners']} listeners ({settled}), {hub['creates']:,} creates "
            f"({_number(hub['requestsPerSecond'])}/s "
            f"measured), {hub['delivered']:,}/{hub['expected']:,} create events delivered, {within} "
            f"{hub['waitLimitSeconds']:g} s after the load (last after {hub['lastArrivalAfterLoadSeconds']:g} s); "
            f"lag p50 {_number(hub['lagP50Ms'], 0)} ms, p99 {_number(hub['lagP99Ms'], 0)} ms"
            + (f"; {hub['duplicates']} duplicates" if hub["duplicates"] else ""))


class ProgressBar(Progress):
    """`[#####.....] 3/17 list (small)  2.4 s  1,234 requests` on one line of stderr, redrawn in place."""

    WIDTH = 30

    def __init__(self, stream: TextIO, steps: int):
        self.stream = stream
        self.steps = max(steps, 1)
        self.done = -1
        self.label = ""
        self.began = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        self.label = label
        self.began = time.monotonic()
        self._draw(0.0, None)

    def tick(self, fraction: float, requests: int) -> None:
        self._draw(fraction, requests)

    def _draw(self, fraction: float, requests: int | None) -> None:
        overall = min(1.0, (max(self.done, 0) + fraction) / self.steps)
        filled = int(self.WIDTH * overall)
        detail = f"{time.monotonic() - self.began:5.1f} s" + (f"  {requests:,} requests" if requests else "")
        text = f"{self.label:<32} {detail}"
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {min(self.done + 1, self.steps)}/"
                          f"{self.steps} {text:<60}")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\r" + " " * (self.WIDTH + 80) + "\r")
        self.stream.flush()
