"""The served document's resource schemas are the official TMF656 v4.0.0 ones (after the $ref rewrite)."""
import json
from pathlib import Path

import pytest

from tmf_server.app import load_spec
from tmf_server.problems.rules import GROUP_LINKS, SERVER_OWNED_DATES

# The official TMF656 v4.0.0 Swagger 2 document, kept unmodified beside the served one.
OFFICIAL = Path(__file__).resolve().parents[2] / "openapi" / "official" / "TMF656-ServiceProblem-v4.0.0.swagger.json"


def official_document() -> dict:
    return json.loads(OFFICIAL.read_text(encoding="utf-8"))


def rewrite_refs(node):
    """Swagger 2 `#/definitions/X` -> OpenAPI 3 `#/components/schemas/X`; nothing else changes."""
    if isinstance(node, dict):
        return {k: ("#/components/schemas/" + v.rsplit("/", 1)[-1] if k == "$ref" else rewrite_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite_refs(item) for item in node]
    return node


SERVED = load_spec()["components"]["schemas"]
DEFINITIONS = official_document()["definitions"]


@pytest.mark.parametrize("name", ["ServiceProblem", "ServiceProblem_Create", "ServiceProblem_Update", "Error"])
def test_resource_schema_equals_official(name):
    assert SERVED[name] == rewrite_refs(DEFINITIONS[name])


def test_every_official_definition_is_served_unchanged():
    changed = [name for name, schema in DEFINITIONS.items() if SERVED.get(name) != rewrite_refs(schema)]
    assert changed == []


def test_merge_patch_schema_is_update_with_nullable_attributes():
    """Each ServiceProblem_Update attribute but the server-owned dates and the links the group tasks own, nullable
    (null removes it) unless mandatory; objects loose, since RFC 7396 merges them; nothing else (AMENDMENTS items 6
    and 7)."""
    update = SERVED["ServiceProblem_Update"]["properties"]
    merge = SERVED["ServiceProblem_MergePatch"]["properties"]
    mandatory = {*SERVED["ServiceProblem_Create"]["required"], "status"}
    assert set(merge) == set(update) - SERVER_OWNED_DATES - GROUP_LINKS
    assert SERVED["ServiceProblem_MergePatch"]["additionalProperties"] is False
    for name, prop in update.items():
        if name in SERVER_OWNED_DATES | GROUP_LINKS:
            continue
        if "$ref" not in prop:
            assert merge[name] == ({**prop} if name in mandatory else {**prop, "nullable": True}), name
            continue
        target = SERVED[prop["$ref"].rsplit("/", 1)[-1]]
        if "enum" in target:
            assert merge[name] == prop, name
        else:
            assert merge[name]["type"] == "object" and merge[name].get("nullable", False) is (name not in mandatory), name


@pytest.mark.parametrize("request_schema, official, left_out", [
    ("ServiceProblem_CreateRequest", "ServiceProblem_Create", {"id", "href", *SERVER_OWNED_DATES, *GROUP_LINKS, "status"}),
    ("ProblemAcknowledgement_CreateRequest", "ProblemAcknowledgement_Create", {"ackProblem"}),
    ("ProblemUnacknowledgement_CreateRequest", "ProblemUnacknowledgement_Create", {"unackProblem"}),
    ("ProblemGroup_CreateRequest", "ProblemGroup_Create", set()),
    ("ProblemUngroup_CreateRequest", "ProblemUngroup_Create", set()),
])
def test_request_schemas_are_the_official_create_schemas_less_server_owned_attributes(request_schema, official, left_out):
    """The bodies the server accepts (AMENDMENTS items 3 and 15): the official attributes, those the server sets
    left out, no other attribute; ServiceProblem_CreateRequest's status can only be `acknowledged`."""
    served, original = SERVED[request_schema], SERVED[official]
    assert served["additionalProperties"] is False
    assert served["required"] == original["required"]
    for name, prop in original["properties"].items():
        if name in left_out or name in ("id", "href"):
            assert name not in served["properties"] or name == "status", name
        else:
            assert served["properties"][name] == prop, name
    if request_schema == "ServiceProblem_CreateRequest":
        assert served["properties"]["status"]["enum"] == ["acknowledged"]


def test_every_operation_is_routed_to_a_handler():
    import importlib

    for item in load_spec()["paths"].values():
        for operation in item.values():
            module = importlib.import_module(operation["x-openapi-router-controller"])
            assert callable(getattr(module, operation["operationId"])), operation["operationId"]
