"""The corpus (tests/intake/corpus/, its README says how a case reads): notifications modelled on what real systems
send, in the shapes of the source documents (TMF621 v4 and v5, TMF642 v4 and the v5 shapes, TMF623 v2, TMF688 v4
and v5), played against a real server; each answer and each report checked against what the case expects."""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from tests.intake.test_intake_api import get_problem

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(CORPUS.glob("*.json"))


def _with_run(value, run: str):
    if isinstance(value, str):
        return value.replace("{run}", run)
    if isinstance(value, list):
        return [_with_run(v, run) for v in value]
    if isinstance(value, dict):
        return {_with_run(k, run): _with_run(v, run) for k, v in value.items()}
    return value


def _actual(report: dict, key: str):
    """The value an expectation key names in a report (see the corpus README)."""
    if key.startswith("characteristic."):
        name = key.split(".", 1)[1]
        return next((c["value"] for c in report.get("characteristic", []) if c["name"] == name), None)
    if key == "customers":
        return [p["id"] for p in report.get("relatedParty", []) if p.get("role") == "customer"]
    listed = re.fullmatch(r"(\w+)\[(@?\w+)\]", key)
    if listed:
        return sorted(str(e[listed[2]]) for e in report.get(listed[1], []) if listed[2] in e)
    value = report
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _check_report(report: dict, expected: dict, where: str) -> None:
    for key, wanted in expected.items():
        if key == "absent":
            present = [name for name in wanted if name in report]
            assert not present, f"{where}: the report should not have {present}"
        elif key == "tracking~":
            texts = [t["description"] for t in report.get("trackingRecord", [])]
            assert any(wanted in t for t in texts), f"{where}: no tracking record contains {wanted!r}: {texts}"
        else:
            found = _actual(report, key)
            if isinstance(wanted, list):
                wanted = sorted(wanted)
            assert found == wanted, f"{where}: {key} is {found!r}, expected {wanted!r}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_corpus_case_gives_the_outcomes_and_reports_it_expects(path, intake, tmf):
    run = uuid.uuid4().hex[:8]
    case = _with_run(json.loads(path.read_text(encoding="utf-8")), run)
    problem_id = None
    for index, step in enumerate(case["steps"]):
        where = f"{path.name} step {index}"
        if "patch" in step:
            response = tmf.patch(problem_id, step["patch"])
            assert response.status_code == 200, f"{where}: {response.text}"
            continue
        notification, expected = step["notification"], step["expect"]
        response = intake.post(step["listener"], notification)
        assert response.status_code == expected["status"], f"{where}: {response.status_code} {response.text}"
        record = response.json()
        assert record["outcome"] == expected["outcome"], f"{where}: {record}"
        if "shape" in expected:
            assert record["shape"] == expected["shape"], f"{where}: {record}"
        if "reason~" in expected:
            assert expected["reason~"] in record["reason"], f"{where}: {record['reason']}"
        stored = intake.request("GET", f"/record/{record['id']}").json()
        assert stored["payload"] == notification, f"{where}: the stored record keeps the notification as received"
        assert stored["outcome"] == record["outcome"]
        if record.get("serviceProblem"):
            problem_id = record["serviceProblem"]["id"]
        if "report" in expected:
            assert problem_id, f"{where}: no report to check"
            _check_report(get_problem(tmf, problem_id), expected["report"], where)
        elif record["outcome"] in ("rejected", "ignored"):
            assert "serviceProblem" not in record, f"{where}: {record}"
