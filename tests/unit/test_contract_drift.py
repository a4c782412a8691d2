"""The served document's resource schemas are the official TMF656 v4.0.0 ones (after the $ref rewrite)."""
import json
from pathlib import Path

import pytest

from tmf_server.app import load_spec

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
    """Each ServiceProblem_Update attribute, nullable (null removes it); objects loose, since RFC 7396 merges them."""
    update = SERVED["ServiceProblem_Update"]["properties"]
    merge = SERVED["ServiceProblem_MergePatch"]["properties"]
    assert set(merge) == set(update)
    for name, prop in update.items():
        if "$ref" not in prop:
            assert merge[name] == {**prop, "nullable": True}, name
            continue
        target = SERVED[prop["$ref"].rsplit("/", 1)[-1]]
        if "enum" in target:
            assert merge[name] == prop, name
        else:
            assert merge[name]["type"] == "object" and merge[name]["nullable"] is True, name


def test_every_operation_is_routed_to_a_handler():
    import importlib

    for item in load_spec()["paths"].values():
        for operation in item.values():
            module = importlib.import_module(operation["x-openapi-router-controller"])
            assert callable(getattr(module, operation["operationId"])), operation["operationId"]
