"""`tmf-server bench --local` (`make bench`): this server measured against its own database engine.

In one run: a temporary data directory and embedded engine; the raw engine measured with pymongo from one
MongoClient (insert_one of a document shaped like a stored report, find_one by _id); the real server process
started on that engine; every scenario run against it over HTTP; the server's RSS read after the first
--rss-after requests and at the end; every ratio printed against its target. The engine and the server are
stopped by their pid whatever happens (an error, Ctrl-C, SIGTERM), and the data directory is removed.

`python -m tmf_server.bench.local [options]` is the same as `tmf-server bench --local [options]`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import bson
import pymongo

from tmf_server.bench.command import config_from, progress_for, run_bench
from tmf_server.bench.load import percentile
from tmf_server.bench.report import table
from tmf_server.bench.runner import LISTS, PER_POPULATION, Bench, BenchAborted
from tmf_server.settings import BASE_PATH
from tmf_server.store.embedded import EmbeddedEngine, die_with_parent, free_port, terminate

RAW_DATABASE = "benchRaw"
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 30.0


# -- the raw engine -----------------------------------------------------------------------------------

def raw_document(index: int) -> dict:
    """A document shaped like a stored report (about 1.5 KB): the attributes and version the server stores."""
    problem_id = str(uuid.uuid4())
    customer = f"C{index % 100}"
    now = "2026-11-30T08:04:22.181Z"
    return {
        "_id": problem_id, "category": "customer.qosDegradation", "priority": 1 + (index // 100) % 5,
        "description": f"Broadband throughput far below the contracted rate every evening (raw {index})",
        "reason": "throughput degradation",
        "originatorParty": {"id": customer, "@referredType": "Individual"},
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Individual"}],
        "affectedService": [{"id": f"svc-broadband-{customer}", "name": "Fibre 500"}],
        "characteristic": [{"name": "metric", "value": "downlinkThroughput"}, {"name": "observedValue", "value": "120"},
                           {"name": "threshold", "value": "500"}, {"name": "unit", "value": "Mbit/s"},
                           {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}],
        "href": f"http://127.0.0.1:8080/tmf-api/serviceProblemManagement/v4/serviceProblem/{problem_id}",
        "status": "acknowledged", "creationDate": now, "lastUpdate": now, "statusChangeDate": now,
        "@type": "ServiceProblem", "affectedNumberOfServices": 1,
        "responsibleParty": {"id": "qos-management", "name": "Customer QoS/SLA Management", "role": "responsible",
                             "@referredType": "Organization"},
        "trackingRecord": [{"id": "1", "description": "created", "systemId": "tmf656-qos-server", "time": now,
                            "user": "bench"}],
        "_version": 1,
    }


def _threads(threads: int, duration: float, warmup: float, operation) -> dict:
    """`threads` threads calling operation(index) back to back; the window after the warm-up is measured
    (the operations that ended in it), as the HTTP scenarios are."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    start = threading.Barrier(threads + 1)
    times: dict[str, float] = {}

    def loop(slot: int) -> None:
        start.wait()
        window_start, window_end = times["start"] + warmup, times["start"] + warmup + duration
        mine = latencies[slot]
        while True:
            began = time.perf_counter()
            if began >= window_end:
                return
            try:
                operation(next(counter))
            except Exception as exc:  # noqa: BLE001 - counted and shown, the measurement goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            done = time.perf_counter()
            if window_start <= done <= window_end:
                mine.append(done - began)

    workers = [threading.Thread(target=loop, args=(slot,), daemon=True) for slot in range(threads)]
    for worker in workers:
        worker.start()
    times["start"] = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join()
    merged = sorted(value for values in latencies for value in values)
    return {"operations": len(merged), "operationsPerSecond": round(len(merged) / duration, 1),
            "p50Ms": _ms(percentile(merged, 0.5)), "p99Ms": _ms(percentile(merged, 0.99)),
            "errors": len(errors), "firstError": errors[0] if errors else None}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def measure_raw(uri: str, threads: int, duration: float, warmup: float) -> dict:
    """insert_one and find_one by _id from one MongoClient shared by `threads` threads."""
    client = pymongo.MongoClient(uri, maxPoolSize=threads + 4)
    try:
        client.drop_database(RAW_DATABASE)
        collection = client[RAW_DATABASE]["report"]
        ids: list[str] = []

        def insert(index: int) -> None:
            document = raw_document(index)
            collection.insert_one(document)
            ids.append(document["_id"])

        inserted = _threads(threads, duration, warmup, insert)

        def find(index: int) -> None:
            if collection.find_one({"_id": ids[(index * 7919) % len(ids)]}) is None:
                raise LookupError("an inserted document was not found")

        found = _threads(threads, duration, warmup, find) if ids else None
        client.drop_database(RAW_DATABASE)
        return {"threads": threads, "documentBytes": len(bson.encode(raw_document(0))), "insert_one": inserted,
                "find_one": found}
    finally:
        client.close()


# -- the server process -------------------------------------------------------------------------------

class Server:
    """`python -m tmf_server serve` on a free loopback port, on the given database, its output in a log file."""

    def __init__(self, data_dir: Path, mongodb_uri: str, workers: int):
        self.data_dir = data_dir
        self.mongodb_uri = mongodb_uri
        self.workers = workers
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self) -> "Server":
        for _attempt in range(3):  # a free port can be taken before the server binds it
            self.port = free_port()
            env = {**os.environ, "MONGODB_URI": self.mongodb_uri, "TMF_CALLBACK_ALLOW": "loopback",
                   "TMF_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tmf_server", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", str(self.workers)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, preexec_fn=die_with_parent)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"the server did not start; its log ends:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.base_url}/serviceProblem?limit=1", timeout=2):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers
            except OSError:
                time.sleep(0.1)
        return False

    def rss_kb(self) -> int | None:
        """VmRSS of the server process and of all its descendants (uvicorn's workers), in KiB."""
        if self.process is None or self.process.poll() is not None:
            return None
        return sum(filter(None, (_vm_rss(pid) for pid in [self.process.pid, *_descendants(self.process.pid)])))

    def stop(self) -> None:
        if self.process is None:
            return
        terminate(self.process, SERVER_STOP_SECONDS)
        self.process = None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


def _vm_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, pending = [], [root]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


# -- targets ------------------------------------------------------------------------------------------

def targets(raw: dict, document: dict, rss: dict) -> list[dict]:
    """Every ratio against its target: {what, figure, target, value, met} (met None: not measured)."""
    scenarios = {(s["name"], s["population"]): s for s in document["scenarios"]}
    insert = (raw.get("insert_one") or {}).get("operationsPerSecond")
    find = (raw.get("find_one") or {}).get("operationsPerSecond")
    found: list[dict] = []

    def rate(name: str, population: str | None) -> float | None:
        scenario = scenarios.get((name, population))
        return None if scenario is None or scenario.get("skipped") else scenario["requestsPerSecond"]

    def throughput(name: str, population: str | None, raw_name: str, raw_rate: float | None, least: float) -> None:
        mine = rate(name, population)
        label = f"{name}" + (f" ({population})" if population else "") + f" / raw {raw_name}"
        if mine is None or not raw_rate:
            found.append({"what": label, "figure": "not measured", "target": f">= {least:.2f}", "value": None,
                          "met": None})
            return
        value = mine / raw_rate
        found.append({"what": label, "figure": f"{mine:,.1f} / {raw_rate:,.1f} req/s", "target": f">= {least:.2f}",
                      "value": round(value, 3), "met": value >= least})

    throughput("create", "small", "insert_one", insert, 0.5)
    for name in ("intake_new", "intake_correlated"):
        for population in ("small", "large"):
            throughput(name, population, "insert_one", insert, 0.25)
    throughput("get", "small", "find_one", find, 0.7)
    throughput("patch", "small", "insert_one", insert, 0.25)
    for name in LISTS:
        throughput(name, "small", "find_one", find, 0.15)
    for name in PER_POPULATION:
        small, large = scenarios.get((name, "small")), scenarios.get((name, "large"))
        label = f"{name} p50 large / small"
        if not small or not large or small.get("skipped") or large.get("skipped") or not small["p50Ms"] \
                or large["p50Ms"] is None:
            found.append({"what": label, "figure": "not measured", "target": "<= 2.00", "value": None, "met": None})
            continue
        value = large["p50Ms"] / small["p50Ms"]
        found.append({"what": label, "figure": f"{large['p50Ms']:,.1f} / {small['p50Ms']:,.1f} ms",
                      "target": "<= 2.00", "value": round(value, 3), "met": value <= 2.0})
    hub = scenarios.get(("hub", None))
    if hub is None or hub.get("skipped"):
        found.append({"what": "hub: all delivered, lag p99", "figure": "not measured", "target": "all, <= 2 s",
                      "value": None, "met": None})
    else:
        lag = hub["lagP99Ms"]
        found.append({"what": "hub: all delivered, lag p99",
                      "figure": f"{hub['delivered']:,}/{hub['expected']:,}, p99 "
                                + ("-" if lag is None else f"{lag / 1000:.2f} s"),
                      "target": "all, <= 2 s", "value": None if lag is None else round(lag / 1000, 3),
                      "met": hub["allDelivered"] and lag is not None and lag <= 2000})
    after, end = rss.get("afterRequestsKb"), rss.get("endKb")
    label = f"RSS end / after {rss.get('afterRequests'):,} requests"
    if not after or not end:
        found.append({"what": label, "figure": f"not measured (the run made {document['requestsSent']:,} requests)"
                      if not after else "not measured", "target": "<= 1.25", "value": None, "met": None})
    else:
        found.append({"what": label, "figure": f"{end / 1024:,.1f} / {after / 1024:,.1f} MiB", "target": "<= 1.25",
                      "value": round(end / after, 3), "met": end / after <= 1.25})
    return found


def targets_table(found: list[dict]) -> str:
    width = max(len(item["what"]) for item in found)
    figure_width = max(len(item["figure"]) for item in found)
    lines = [f"{'TARGET':<{width}}  {'FIGURES':<{figure_width}}  {'RATIO':>6}  {'TARGET':<11}  RESULT"]
    for item in found:
        value = "-" if item["value"] is None else f"{item['value']:.2f}"
        result = {True: "met", False: "NOT MET", None: "not measured"}[item["met"]]
        lines.append(f"{item['what']:<{width}}  {item['figure']:<{figure_width}}  {value:>6}  {item['target']:<11}  "
                     f"{result}")
    met = sum(1 for item in found if item["met"])
    measured = sum(1 for item in found if item["met"] is not None)
    lines.append(f"{met} of {measured} measured targets met" + (f", {len(found) - measured} not measured"
                                                                  if measured < len(found) else ""))
    return "\n".join(lines)


def raw_table(raw: dict) -> str:
    lines = [f"Raw engine (pymongo, one MongoClient, {raw['threads']} threads, documents of ~{raw['documentBytes']:,} "
             f"bytes):"]
    for name in ("insert_one", "find_one"):
        figures = raw.get(name)
        if figures:
            lines.append(f"  {name:<10} {figures['operationsPerSecond']:>10,.1f} ops/s   "
                         f"p50 {figures['p50Ms']:>7} ms   p99 {figures['p99Ms']:>7} ms   errors {figures['errors']}")
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------------------

def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace, parser_error) -> int:
    if args.workers < 1:
        parser_error("--workers must be at least 1")
    config = config_from(args, parser_error, "http://127.0.0.1:1" + BASE_PATH)  # checks the options
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM stops the processes like Ctrl-C
    data_dir = Path(tempfile.mkdtemp(prefix="tmf-bench-"))
    engine = EmbeddedEngine(data_dir / "engine")
    server: Server | None = None
    status = sys.stderr
    try:
        print(f"tmf-server bench --local: data in {data_dir}", file=status, flush=True)
        engine.start()
        print(f"embedded engine on {engine.uri} (pid {engine.process.pid}); measuring it raw "
              f"({config.warmup_seconds:g} s warm-up + {config.duration:g} s per operation) ...", file=status,
              flush=True)
        raw = measure_raw(engine.uri, config.connections, config.duration, config.warmup_seconds)
        server = Server(data_dir, engine.uri, args.workers).start()
        print(f"server on {server.base_url} (pid {server.process.pid}, {args.workers} worker(s))", file=status,
              flush=True)
        config.base_url = server.base_url
        config.intake_url = None
        rss = {"afterRequests": args.rss_after, "afterRequestsKb": None, "endKb": None}

        def at_milestone(_count: int) -> None:
            rss["afterRequestsKb"] = server.rss_kb()

        document = run_bench(Bench(config, progress_for(args, config), milestone=(args.rss_after, at_milestone)))
        rss["endKb"] = server.rss_kb()
        found = targets(raw, document, rss)
    except BenchAborted as exc:
        print(f"tmf-server bench: {exc}", file=sys.stderr)
        if server is not None:
            print(f"server log:\n{server.log_tail()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server and the engine", file=sys.stderr)
        return 130
    except (RuntimeError, pymongo.errors.PyMongoError) as exc:
        print(f"tmf-server bench --local: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        engine.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps({"raw": raw, "server": {"workers": args.workers, "rss": rss}, "bench": document,
                          "targets": found}, indent=2))
    else:
        print(raw_table(raw))
        print()
        print(table(document))
        print()
        after = "-" if not rss["afterRequestsKb"] else f"{rss['afterRequestsKb'] / 1024:,.1f} MiB"
        end = "-" if not rss["endKb"] else f"{rss['endKb'] / 1024:,.1f} MiB"
        print(f"Server RSS ({args.workers} worker(s), with its children): {after} after {args.rss_after:,} "
              f"requests, {end} at the end")
        print()
        print(targets_table(found))
    return 0 if document["errors"] == 0 else 1


def _standalone(argv: list[str] | None = None) -> int:
    from tmf_server.bench.command import add_parser

    parser = argparse.ArgumentParser(prog="python -m tmf_server.bench")
    bench_parser = add_parser(parser.add_subparsers(dest="command"))
    bench_parser.prog = "python -m tmf_server.bench.local"
    args = bench_parser.parse_args(argv)
    if args.base_url:
        bench_parser.error("measures this server on a temporary engine: no BASE_URL (use tmf-server bench URL)")
    return main(args, bench_parser.error)


if __name__ == "__main__":
    sys.exit(_standalone())
