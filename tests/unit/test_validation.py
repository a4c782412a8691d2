"""The server's schema checks do not depend on import order: `format: uri` is checked by the server's own format
checker whichever module was imported first (nothing is registered on jsonschema's global checker)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.server import PROJECT_ROOT

_CHECK = textwrap.dedent("""
    import json, sys
    {first}
    from tmf_server.app import load_spec
    from tmf_server.errors import BadRequest
    from tmf_server.problems.rules import ServiceProblemRules
    from tmf_server.query.catalog import AttributeCatalog
    spec = load_spec()
    rules = ServiceProblemRules(spec, AttributeCatalog(spec, "ServiceProblem"))
    base = {{"id": "p1", "href": "http://h/p1", "category": "c", "priority": 1, "description": "d",
             "originatorParty": {{"id": "C1", "@referredType": "Individual"}}, "reason": "r", "status": "acknowledged",
             "affectedService": [{{"id": "s1"}}], "affectedNumberOfServices": 1}}
    rules.check_result(base)  # valid
    try:
        rules.check_result({{**base, "@schemaLocation": "not a uri"}})
    except BadRequest as error:
        print(json.dumps({{"refused": True, "message": str(error.message)}}))
    else:
        print(json.dumps({{"refused": False}}))
    import jsonschema
    print(json.dumps({{"global_uri": "uri" in jsonschema.Draft4Validator.FORMAT_CHECKER.checkers}}))
""")


@pytest.mark.parametrize("first", ["", "import tmf_server.api.validators", "import tmf_server.app"])
def test_uri_format_is_checked_whatever_was_imported_first(first):
    result = subprocess.run([sys.executable, "-c", _CHECK.format(first=first)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert '"refused": true' in lines[0], lines
    assert "@schemaLocation" in lines[0] and "uri" in lines[0], lines
    assert lines[1] == '{"global_uri": false}', "jsonschema's global format checker was changed"
