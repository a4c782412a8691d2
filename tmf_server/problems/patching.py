"""JSON Merge Patch (RFC 7396) and JSON Patch (RFC 6902) applied to a resource representation."""
from __future__ import annotations

import copy

import jsonpatch
import jsonpointer

from tmf_server.errors import BadRequest, Conflict

MERGE_PATCH = "merge"
JSON_PATCH = "json-patch"


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict, operations: list[dict]) -> dict:
    result = target
    for number, operation in enumerate(operations, start=1):
        source = f" from {operation['from']}" if "from" in operation else ""
        where = f"operation {number} ({operation.get('op')} {operation.get('path')}{source})"
        try:
            result = jsonpatch.JsonPatch([operation]).apply(result)
        except jsonpatch.JsonPatchTestFailed:
            raise Conflict(f"JSON Patch {where}: the test failed; nothing was changed.",
                           code="patchTestFailed") from None
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException):
            raise BadRequest(f"JSON Patch {where}: the path does not exist in the resource.",
                             code="invalidPatch") from None
        except (jsonpatch.JsonPatchException, TypeError, ValueError, KeyError):
            raise BadRequest(f"JSON Patch {where} is not a valid operation (RFC 6902).", code="invalidPatch") from None
    if not isinstance(result, dict):
        raise BadRequest("JSON Patch must leave the resource a JSON object.", code="invalidPatch")
    return result


def touched_attributes(kind: str, body) -> set[str]:
    """First-level attributes a patch body writes (a JSON Patch `test` only reads)."""
    if kind == MERGE_PATCH:
        return set(body)
    touched = set()
    for operation in body:
        if operation.get("op") == "test":
            continue
        for pointer in (operation.get("path"), operation.get("from") if operation.get("op") == "move" else None):
            if pointer is None:
                continue
            if pointer == "":
                raise BadRequest("JSON Patch cannot replace the whole resource; patch its attributes.",
                                 code="invalidPatch")
            touched.add(_unescape(pointer.split("/")[1]) if pointer.startswith("/") else pointer)
    return touched


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")
