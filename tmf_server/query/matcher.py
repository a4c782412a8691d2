"""Evaluates in memory the MongoDB filters the TMF630 translator (filters.py) emits, with MongoDB's semantics.

The fan-out matches each new event against every hub subscription's stored filter; doing it here instead of one
database query per subscription keeps a subscription's query from holding the database at all (the embedded
engine cannot cancel a query). tests/storage/test_event_matcher.py proves it answers as the database does.
Supported: `$and`, `$or`, `$nor`, `$eq`, `$ne`, `$in`, `$nin`, `$gt`, `$gte`, `$lt`, `$lte`, `$regex`,
`$type: "string"`, `$exists`, `$elemMatch`, dotted paths through sub-documents and arrays.
"""
from __future__ import annotations

import re
from functools import lru_cache

from tmf_server.query.regex import UnsafeRegex, check_safe_regex

_MISSING = object()


class UnsupportedFilter(ValueError):
    """The filter uses an operator the translator never emits."""


def matches(document: dict, filter_: dict) -> bool:
    return all(_clause(document, key, condition) for key, condition in filter_.items())


def _clause(document: dict, key: str, condition) -> bool:
    if key == "$and":
        return all(matches(document, part) for part in condition)
    if key == "$or":
        return any(matches(document, part) for part in condition)
    if key == "$nor":
        return not any(matches(document, part) for part in condition)
    if key.startswith("$"):
        raise UnsupportedFilter(f"unknown top-level operator {key}")
    values = _resolve(document, key.split("."))
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        return all(_operator(values, name, argument, condition) for name, argument in condition.items())
    return _equals_any(values, condition)


def _resolve(value, segments: list[str]) -> list:
    """The values a dotted path reaches (through arrays, as MongoDB does); an array at the end also yields its
    elements. `_MISSING` when nothing is there."""
    if not segments:
        return [value, *value] if isinstance(value, list) else [value]
    if isinstance(value, dict):
        return _resolve(value.get(segments[0], _MISSING), segments[1:]) if segments[0] in value else [_MISSING]
    if isinstance(value, list):
        found = [v for element in value if isinstance(element, (dict, list))
                 for v in _resolve(element, segments) if v is not _MISSING]
        return found or [_MISSING]
    return [_MISSING]


def _kind(value) -> str:
    if value is _MISSING or value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _same(a, b) -> bool:
    return _kind(a) == _kind(b) and (a is _MISSING or a == b or (a is None and b is None))


def _equals_any(values: list, wanted) -> bool:
    if wanted is None:
        return any(v is _MISSING or v is None for v in values)
    return any(v is not _MISSING and _same(v, wanted) for v in values)


_COMPARE = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b,
            "$lte": lambda a, b: a <= b}


@lru_cache(maxsize=1024)
def _compiled(pattern: str, options: str):
    """Only patterns in the safe form: a subscription stored before the rule existed cannot stall the fan-out."""
    try:
        check_safe_regex(pattern)
    except UnsafeRegex as exc:
        raise UnsupportedFilter(f"the regular expression '{pattern[:80]}' {exc}") from None
    flags = re.IGNORECASE if "i" in options else 0
    return re.compile(pattern, flags)


def _operator(values: list, name: str, argument, condition: dict) -> bool:
    if name == "$eq":
        return _equals_any(values, argument)
    if name == "$ne":
        return not _equals_any(values, argument)
    if name == "$in":
        return any(_equals_any(values, item) for item in argument)
    if name == "$nin":
        return not any(_equals_any(values, item) for item in argument)
    if name in _COMPARE:
        return any(v is not _MISSING and _kind(v) == _kind(argument) and _kind(v) in ("number", "str")
                   and _COMPARE[name](v, argument) for v in values)
    if name == "$regex":
        pattern = _compiled(argument, condition.get("$options", ""))
        return any(isinstance(v, str) and pattern.search(v) is not None for v in values)
    if name == "$options":
        return True
    if name == "$type":
        if argument != "string":
            raise UnsupportedFilter(f"$type {argument!r}")
        return any(isinstance(v, str) for v in values)
    if name == "$exists":
        return any(v is not _MISSING for v in values) == bool(argument)
    if name == "$elemMatch":
        return any(isinstance(array, list) and any(_element_matches(element, argument) for element in array)
                   for array in values[:1] if array is not _MISSING)
    raise UnsupportedFilter(f"unknown operator {name}")


def _element_matches(element, condition: dict) -> bool:
    if all(k.startswith("$") for k in condition) and condition:
        return all(_operator([element], name, argument, condition) for name, argument in condition.items())
    return isinstance(element, dict) and matches(element, condition)
