"""The conformance kit (`tmf-server conformance`), run as users run it: a separate process that knows the
server only by its URL. Our own server must pass every check; deliberately broken servers (a real proxy in
front of ours that breaks one thing) must fail exactly the checks about that thing, with a clear reason."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from tests.support.proxy import BreakingProxy, Forwarded
from tmf_server.settings import BASE_PATH
from tmf_server.store.embedded import free_port

KIT = [str(Path(sys.executable).with_name("tmf-server")), "conformance"]
EVERY_CHECK = ["create", "create-schema", "retrieve", "list", "fields-retrieve", "fields-list", "filter-equality",
               "filter-dotted", "filter-operators", "sort", "paging", "merge-patch", "json-patch", "delete",
               "unknown-id", "invalid-create", "invalid-patch", "hub"]


def run_kit(*arguments: str, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([*KIT, *arguments], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300)


def kit_report(path: Path) -> dict:
    return json.loads(path.read_text())


def results(report: dict) -> dict[str, str]:
    return {c["id"]: c["result"] for c in report["checks"]}


def counts(server) -> tuple[int, int]:
    problems = requests.get(server.base_url + "/serviceProblem", params={"limit": 1}, timeout=10)
    subscriptions = requests.get(server.base_url + "/hub", params={"limit": 1}, timeout=10)
    return int(problems.headers["X-Total-Count"]), int(subscriptions.headers["X-Total-Count"])


def test_our_server_passes_every_check_and_the_kit_leaves_nothing_behind(server, tmp_path):
    before = counts(server)
    json_path, html_path = tmp_path / "report.json", tmp_path / "report.html"
    # stderr on a pseudo-terminal: the kit draws its progress bar only there.
    terminal, terminal_end = pty.openpty()
    try:
        result = run_kit(server.base_url, "--json", str(json_path), "--html", str(html_path), stderr=terminal_end)
        os.close(terminal_end)
        progress = read_all(terminal)
    finally:
        os.close(terminal)
    assert result.returncode == 0, result.stdout + "\nserver log:\n" + server.log()
    report = kit_report(json_path)
    assert results(report) == {check: "passed" for check in EVERY_CHECK}
    assert report["conformant"] is True and report["target"] == server.base_url
    assert report["summary"] == {"passed": len(EVERY_CHECK), "failed": 0, "skipped": 0}
    assert "CONFORMANT: 18 passed, 0 failed, 0 skipped" in result.stdout
    assert re.search(r"\[#{30}\] 18/18", progress), progress
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in re.sub(
        re.escape(server.base_url), "", page), "the HTML report must be standalone"
    assert page.count("<td class='passed'>") == len(EVERY_CHECK)
    assert counts(server) == before, "the kit must delete the service problems and subscriptions it created"


def read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


# -- deliberately broken servers ------------------------------------------------------------------------

def drop_total_count(exchange: Forwarded) -> None:
    exchange.headers = {k: v for k, v in exchange.headers.items() if k.lower() != "x-total-count"}


def found_for_unknown_ids(exchange: Forwarded) -> None:
    if exchange.method == "GET" and exchange.status == 404:
        exchange.status, exchange.body = 200, b"{}"
        exchange.headers["Content-Type"] = "application/json"


def drop_query_parameter(test) -> callable:
    def breakage(exchange: Forwarded) -> None:
        if exchange.status == 0 and "?" in exchange.target:
            path, query = exchange.target.split("?", 1)
            kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not test(k)]
            exchange.target = path + ("?" + urlencode(kept) if kept else "")
    return breakage


def sort_ignores_descending(exchange: Forwarded) -> None:
    if exchange.status == 0 and "sort=-" in exchange.target:
        exchange.target = exchange.target.replace("sort=-", "sort=")


def plain_text_errors(exchange: Forwarded) -> None:
    if exchange.status >= 400:
        exchange.body = b"something went wrong"
        exchange.headers["Content-Type"] = "text/plain"


def merge_patch_also_changes_reason(exchange: Forwarded) -> None:
    content_type = {k.lower(): v for k, v in exchange.request_headers.items()}.get("content-type", "")
    if exchange.status == 0 and exchange.method == "PATCH" and content_type.startswith("application/merge-patch"):
        body = json.loads(exchange.request_body)
        if isinstance(body, dict) and "description" in body:
            exchange.request_body = json.dumps({**body, "reason": "changed behind the client's back"}).encode()


def lists_labelled_as_text(exchange: Forwarded) -> None:
    if exchange.method == "GET" and exchange.status in (200, 206) and urlsplit(exchange.target).path.endswith(
            "/serviceProblem"):
        exchange.headers = {k: v for k, v in exchange.headers.items() if k.lower() != "content-type"}
        exchange.headers["Content-Type"] = "text/plain"


def drop_location(exchange: Forwarded) -> None:
    if exchange.method == "POST":
        exchange.headers = {k: v for k, v in exchange.headers.items() if k.lower() != "location"}


def priority_as_text_on_retrieve(exchange: Forwarded) -> None:
    path = urlsplit(exchange.target).path
    if exchange.method == "GET" and exchange.status == 200 and re.search(r"/serviceProblem/[^/]+$", path):
        body = json.loads(exchange.body)
        if "priority" in body:
            exchange.body = json.dumps({**body, "priority": str(body["priority"])}).encode()


BROKEN_SERVERS = {
    # name: (breakage, the checks that must fail, words the reason of the first of them must contain)
    "drops X-Total-Count": (drop_total_count, {"paging"}, "no X-Total-Count header"),
    "answers 200 to an unknown id": (found_for_unknown_ids, {"unknown-id", "delete"}, "expected 404, got 200"),
    "ignores fields": (drop_query_parameter(lambda k: k == "fields"), {"fields-retrieve", "fields-list"},
                       "returned other attributes too"),
    "ignores operator filters": (drop_query_parameter(lambda k: re.search(r"\.(gt|gte|lt|lte)$", k)),
                                 {"filter-operators"}, "priority.gt=1"),
    "ignores dotted filters": (drop_query_parameter(lambda k: k == "originatorParty.id"), {"filter-dotted"},
                               "expected exactly"),
    "sorts only ascending": (sort_ignores_descending, {"sort"}, "sort=-priority"),
    "answers errors in plain text": (plain_text_errors, {"unknown-id", "delete", "invalid-create", "invalid-patch"},
                                     "expected a JSON object body"),
    "merge patch changes more than it names": (merge_patch_also_changes_reason, {"merge-patch"},
                                               "also changed ['reason']"),
    "drops Location": (drop_location, {"create"}, "no Location header"),
    "labels lists as text": (lists_labelled_as_text, {"list", "fields-list", "filter-equality", "filter-dotted",
                                                      "filter-operators", "sort", "paging", "invalid-create"},
                             "labelled Content-Type 'text/plain'"),
    "priority as text on retrieve": (priority_as_text_on_retrieve, {"retrieve", "merge-patch", "json-patch"},
                                     "priority"),
}


@pytest.mark.parametrize("name", BROKEN_SERVERS)
def test_a_broken_server_fails_exactly_the_checks_about_what_it_breaks(server, tmp_path, name):
    breakage, failing, words = BROKEN_SERVERS[name]
    json_path = tmp_path / "report.json"
    with BreakingProxy(server.root_url, breakage) as proxy:
        result = run_kit(proxy.url(BASE_PATH), "--json", str(json_path), "--skip-hub")
    assert result.returncode == 1, result.stdout
    report = kit_report(json_path)
    assert report["conformant"] is False
    expected = {check: ("failed" if check in failing else "passed") for check in EVERY_CHECK}
    expected["hub"] = "skipped"
    assert results(report) == expected, result.stdout
    first = next(c for c in report["checks"] if c["result"] == "failed")
    assert words in first["reason"], first
    assert first["failedExchange"]["request"]["url"].startswith(proxy.url(BASE_PATH))
    assert first["failedExchange"]["response"]["status"] > 0
    assert "NOT CONFORMANT" in result.stdout
    for check in failing:
        assert re.search(rf"^FAIL\*?\s+{re.escape(check)}\s", result.stdout, re.MULTILINE), result.stdout


def test_a_hub_that_never_notifies_fails_the_hub_check(server, tmp_path):
    json_path = tmp_path / "report.json"
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens there: notifications never reach the kit
    result = run_kit(server.base_url, "--check", "hub", "--callback-url", silent, "--event-timeout", "2",
                     "--json", str(json_path))
    assert result.returncode == 1, result.stdout
    (hub,) = kit_report(json_path)["checks"]
    assert hub["result"] == "failed"
    assert "no ServiceProblemCreateEvent" in hub["reason"] and "within 2 s" in hub["reason"]


def test_an_unreachable_server_fails_every_check_saying_so(tmp_path):
    json_path = tmp_path / "report.json"
    result = run_kit(f"http://127.0.0.1:{free_port()}{BASE_PATH}", "--json", str(json_path), "--skip-hub",
                     "--timeout", "5")
    assert result.returncode == 1
    report = kit_report(json_path)
    assert {c["result"] for c in report["checks"] if c["id"] != "hub"} == {"failed"}
    assert all("ConnectError" in c["reason"] for c in report["checks"] if c["id"] != "hub")


def test_optional_checks_do_not_fail_the_run(server, tmp_path):
    def no_json_patch(exchange: Forwarded) -> None:
        content_type = {k.lower(): v for k, v in exchange.request_headers.items()}.get("content-type", "")
        if exchange.status and content_type.startswith("application/json-patch"):
            exchange.status, exchange.body = 500, b'{"code": "boom", "reason": "Internal Server Error"}'

    json_path = tmp_path / "report.json"
    with BreakingProxy(server.root_url, no_json_patch) as proxy:
        result = run_kit(proxy.url(BASE_PATH), "--check", "json-patch", "--check", "create", "--json",
                         str(json_path))
    assert result.returncode == 0, result.stdout
    assert results(kit_report(json_path)) == {"create": "passed", "json-patch": "failed"}
    assert "FAIL*" in result.stdout and "optional check" in result.stdout


def test_html_report_shows_the_failed_request(server, tmp_path):
    html_path = tmp_path / "report.html"
    with BreakingProxy(server.root_url, drop_total_count) as proxy:
        result = run_kit(proxy.url(BASE_PATH), "--check", "paging", "--html", str(html_path))
    assert result.returncode == 1
    page = html_path.read_text()
    assert "<td class='failed'>failed</td>" in page and "NOT CONFORMANT" in page
    assert "Request that failed" in page and "limit=2" in page


def test_headers_are_sent_and_credentials_never_reach_the_reports(server, tmp_path):
    seen = []

    def record_headers(exchange: Forwarded) -> None:
        if exchange.status == 0:
            seen.append({k.lower(): v for k, v in exchange.request_headers.items()})
        drop_total_count(exchange)

    json_path, html_path = tmp_path / "report.json", tmp_path / "report.html"
    with BreakingProxy(server.root_url, record_headers) as proxy:
        result = run_kit(proxy.url(BASE_PATH), "--check", "paging", "--json", str(json_path), "--html",
                         str(html_path), "--header", "Authorization: Bearer s3cret-token", "--header", "X-Tenant: t1")
    assert result.returncode == 1
    assert seen and all(h.get("authorization") == "Bearer s3cret-token" and h.get("x-tenant") == "t1" for h in seen)
    (paging,) = kit_report(json_path)["checks"]
    assert paging["failedExchange"]["request"]["headers"]["Authorization"] == "[redacted]"
    assert paging["failedExchange"]["request"]["headers"]["X-Tenant"] == "t1"
    for text in (json_path.read_text(), html_path.read_text(), result.stdout):
        assert "s3cret-token" not in text


def test_help_documents_the_kit():
    result = run_kit("--help")
    assert result.returncode == 0
    for words in ("BASE_URL", "--json FILE", "--html FILE", "--callback-url", "--event-timeout", "--skip-hub",
                  "--check ID", "exit status"):
        assert words in result.stdout, words


def test_list_checks_names_every_check():
    result = run_kit("--list-checks")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == EVERY_CHECK


@pytest.mark.parametrize("arguments, words", [
    ((), "BASE_URL is required"),
    (("localhost:8080",), "must be an http(s) URL"),
    (("http://127.0.0.1:1/", "--check", "nonsense"), "unknown check(s) nonsense"),
    (("http://127.0.0.1:1/", "--header", "no colon"), "--header must look like"),
])
def test_usage_errors_exit_2(arguments, words):
    result = run_kit(*arguments)
    assert result.returncode == 2
    assert words in result.stderr
