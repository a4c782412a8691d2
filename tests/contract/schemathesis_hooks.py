"""Schemathesis hooks for tests/contract/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

One hook: a positive_data_acceptance failure ("schema-valid request rejected") is dropped only when the answer
is a TMF Error whose code the test module lists in ACCEPTED_REFUSALS for that operation (passed here as JSON in
CONTRACT_ACCEPTED_REFUSALS): refusals by documented rules that no OpenAPI 3.0 schema can state. Any other
refusal of a schema-valid request, and every other check, still fails the run.
"""
from __future__ import annotations

import json
import os
import re

import schemathesis

_ACCEPTED = json.loads(os.environ.get("CONTRACT_ACCEPTED_REFUSALS", "[]"))


def accepted(operation: str, status: int, body) -> bool:
    if not isinstance(body, dict):
        return False
    for rule in _ACCEPTED:
        if (re.fullmatch(rule["operation"], operation) and status == rule["status"] and body.get("code") == rule["code"]
                and re.search(rule.get("message", ""), str(body.get("message", "")))):
            return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if "positive_data_acceptance" not in getattr(failure, "checks", ()):
        return True
    try:
        body = response.json()
    except Exception:
        return True
    return not accepted(f"{case.method.upper()} {case.operation.path}", response.status_code, body)
