"""The benchmark (`tmf-server bench URL`) run as users run it: a separate process that knows the server only by
its URL, against the real server process. It must run every scenario with answers only of the expected kind,
deliver every hub notification it waits for, and store exactly the reports it says it created. Speed is
never asserted: these are short runs on a shared machine."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from tests.support.server import PROJECT_ROOT, ServerProcess
from tmf_server.bench.runner import HUBS, PER_POPULATION, SCENARIOS
from tmf_server.settings import BASE_PATH
from tmf_server.store.embedded import free_port

SMALL, LARGE = 20, 40


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory):
    """A server of its own, so that the stored population is exactly what the bench seeds."""
    process = ServerProcess(tmp_path_factory.mktemp("bench-server"), env={"TMF_CALLBACK_ALLOW": "loopback"}).start()
    yield process
    process.stop()


def run_bench(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tmf_server", "bench", *arguments], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=180)


def stored(server: ServerProcess) -> int:
    response = requests.get(server.base_url + "/serviceProblem", params={"limit": 1}, timeout=10)
    return int(response.headers["X-Total-Count"])


def test_every_scenario_runs_with_expected_answers_and_stores_what_it_created(bench_server):
    before = stored(bench_server)
    # --hub-wait: on a busy machine the ~1,000 deliveries can take longer than the default 30 s; the bench stops
    # waiting as soon as they have all arrived, so this only bounds a slow run.
    result = run_bench(bench_server.base_url, "--json", "--duration", "0.5", "--small", str(SMALL),
                       "--large", str(LARGE), "--connections", "4", "--hub-wait", "90", "--hub-rate", "20")
    assert result.returncode == 0, result.stderr + result.stdout[-4000:] + "\nserver log:\n" + bench_server.log()
    document = json.loads(result.stdout)

    runs = {(s["name"], s["population"]): s for s in document["scenarios"]}
    expected_runs = {(name, "small") for name in SCENARIOS if name not in HUBS} \
        | {(name, "large") for name in PER_POPULATION} | {(name, None) for name in HUBS}
    assert set(runs) == expected_runs
    for (name, population), scenario in runs.items():
        assert not scenario.get("skipped"), (name, population, scenario["skipped"])
        assert scenario["requests"] > 0, (name, population)
        assert scenario["errors"] == 0, (name, population, scenario["firstError"])
        assert scenario["p50Ms"] is not None and scenario["p99Ms"] >= scenario["p50Ms"]
    assert set(document["largeSmallP50"]) == set(PER_POPULATION)

    for name in HUBS:
        hub = runs[(name, None)]
        assert hub["listeners"] == 10 and hub["settled"] is True and hub["creates"] > 0
        assert hub["expected"] == hub["creates"] * 10
        assert hub["delivered"] == hub["expected"] and hub["allDelivered"] is True
    # Paced: the schedule allows at most 20 creates per second over the warm-up and the measured window.
    paced = runs[("hub_paced", None)]
    assert paced["pacedRate"] == 20 and paced["creates"] <= 20 * (0.5 + 0.25) + 1
    subscriptions = requests.get(bench_server.base_url + "/hub", params={"limit": 1}, timeout=10)
    assert subscriptions.headers["X-Total-Count"] == "0", "the bench left its subscriptions behind"

    # Seeding tops the store up to each population; every report the run created is stored, and no other.
    small, large = document["populations"]["small"], document["populations"]["large"]
    assert small["storedBefore"] == before and small["seeded"] == SMALL - before and small["stored"] == SMALL
    assert large["seeded"] == max(0, LARGE - large["storedBefore"])
    assert large["stored"] == max(LARGE, large["storedBefore"])
    seeded = sum(s["reportsCreated"] for s in document["seeding"])
    assert seeded == small["seeded"] + large["seeded"]
    created_by_scenarios = {name: sum(s["reportsCreated"] for s in document["scenarios"] if s["name"] == name)
                            for name in ("create", "intake_new", "intake_correlated", *HUBS)}
    assert created_by_scenarios["intake_correlated"] == 2 * 20  # the open reports, one set per population
    assert all(count > 0 for count in created_by_scenarios.values()), created_by_scenarios
    assert document["reportsCreated"] == seeded + sum(created_by_scenarios.values())
    assert stored(bench_server) == before + document["reportsCreated"] == document["storedAtEnd"]


def test_a_url_where_nothing_listens_is_refused_with_a_clear_message():
    url = f"http://127.0.0.1:{free_port()}{BASE_PATH}"
    result = run_bench(url, "--duration", "0.5", "--small", "2", "--large", "0")
    assert result.returncode == 2
    assert f"cannot reach {url}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
