"""The served documents declare what the request guards (tmf_server/limits.py) and Idempotency-Key
(tmf_server/api/idempotency.py) can answer (AMENDMENTS item 21): 408, 414 and 503 with Retry-After on every
operation of the three documents; the header and 422 on every POST of the TMF656 document, whose `pattern`
accepts exactly the keys the server accepts. No process needed."""
from __future__ import annotations

import itertools
import re

import pytest

from tmf_server.api.idempotency import HEADER, key_of
from tmf_server.app import ADMIN_SPEC_PATH, INTAKE_SPEC_PATH, SPEC_PATH, load_spec

DOCUMENTS = {"tmf656": load_spec(SPEC_PATH), "admin": load_spec(ADMIN_SPEC_PATH), "intake": load_spec(INTAKE_SPEC_PATH)}
TMF = DOCUMENTS["tmf656"]


def resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def operations(document: dict):
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield f"{method.upper()} {template}", operation


def error_schema_of(document: dict, response: dict) -> dict:
    return resolve(document, response)["content"]["application/json"]["schema"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_operation_declares_408_414_and_503_with_retry_after(name):
    document = DOCUMENTS[name]
    for operation_name, operation in operations(document):
        responses = operation["responses"]
        for status in ("408", "414", "503"):
            assert status in responses, f"{name}: {operation_name} does not declare {status}"
            assert error_schema_of(document, responses[status]) == {"$ref": "#/components/schemas/Error"}, \
                (name, operation_name, status)
        assert "Retry-After" in resolve(document, responses["503"]).get("headers", {}), (name, operation_name)


def test_every_post_of_the_tmf_document_and_only_a_post_takes_an_idempotency_key_and_declares_422():
    for operation_name, operation in operations(TMF):
        headers = [p["name"] for p in map(lambda p: resolve(TMF, p), operation.get("parameters", ()))
                   if p["in"] == "header"]
        is_post = operation_name.startswith("POST ")
        assert (HEADER in headers) is is_post, operation_name
        assert ("422" in operation["responses"]) is is_post, operation_name
        if is_post:
            assert error_schema_of(TMF, operation["responses"]["422"]) == {"$ref": "#/components/schemas/Error"}


def candidate_keys():
    """Every string of up to 3 characters over an alphabet with the edge cases (quote, space, non-ASCII, the ends
    of printable ASCII), and keys around the length limit, quoted and not."""
    alphabet = ['"', "a", " ", "!", "~", "\x7f", "é"]
    for length in range(0, 4):
        yield from ("".join(chars) for chars in itertools.product(alphabet, repeat=length))
    for length in (253, 254, 255, 256, 257):
        yield "k" * length
        yield '"' + "k" * (length - 2) + '"'
        yield '"' + "k" * (length - 1)


def test_the_header_pattern_accepts_exactly_the_keys_the_server_accepts():
    # Header values reach the server without surrounding whitespace (HTTP strips it), so the pattern need not allow it.
    pattern = re.compile(resolve(TMF, {"$ref": "#/components/parameters/Idempotency-Key"})["schema"]["pattern"])
    differing = [key for key in candidate_keys() if key == key.strip()
                 and bool(pattern.search(key)) != (key_of(key) is not None)]
    assert differing == []
    assert key_of('"abc"') == "abc" and key_of('""') is None and key_of("k" * 256) is None
