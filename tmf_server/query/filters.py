"""TMF630 filter terms -> one MongoDB filter in the canonical forms that both engines answer alike.

Canonical forms (see docs/mongodb.md): the TMF id lives in `_id`; a path that enters an array of
objects is reached only through `$elemMatch`; OR over such a path is `$or` of `$elemMatch`
equalities and "no element equals" is `$nor` of them; `$not` is never used.

A top-level date-time the store also keeps as epoch milliseconds (store/instants.py) is compared on that integer.

Where the embedded engine (nx-27017 on neosqlite) would compare across types or to the second only, a
condition also carries `"$type": "string"`: a no-op in MongoDB (only strings match a string or a regex
there anyway) that makes the engine compare exactly (tests/storage/test_query_differential.py,
docs/mongodb.md). "Not equal" on such a condition is `$nor` of the guarded
equality, since the guard alone would drop documents that lack the attribute.
"""
from __future__ import annotations

import re

from tmf_server.dates import canonical_datetime, parse_datetime
from tmf_server.errors import BadRequest
from tmf_server.query.catalog import Attribute, AttributeCatalog
from tmf_server.query.params import SUFFIX_OPERATORS, SYMBOLS, Term
from tmf_server.query.regex import UnsafeRegex, check_safe_regex
from tmf_server.store.instants import epoch_ms

# Query budgets (docs/mongodb.md): the embedded engine cannot cancel a query once sent, so what one query may ask
# is bounded before it is sent. An OR list on a scalar path is one index-served `$in`; on a path into an array it
# is an `$or` of `$elemMatch`, which the engine evaluates in Python for every stored document and every value.
MAX_FILTER_TERMS = 20
MAX_OR_VALUES = 50
MAX_ARRAY_OR_VALUES = 10
INT64 = (-(2 ** 63), 2 ** 63 - 1)  # MongoDB's widest integer
_RANGE = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
_INTEGER = re.compile(r"[+-]?\d+")
_STRING_ONLY = {"$type": "string"}
_NUMERIC = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
# Text that the embedded engine takes for a date (its detector's prefixes): it then compares through SQLite
# datetime(), which drops milliseconds and turns other text into NULL.
_DATE_LIKE = re.compile(r"\s*(?:\d{4}[-/]\d{2}[-/]\d{2}|\d{2}[-/]\d{2}[-/]\d{4})")


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalidQuery")


def typed_value(attribute: Attribute, text: str):
    kind = attribute.type
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise _bad(f"{attribute.path} is an integer; '{text}' is not.")
        value = int(text) if len(text) <= 20 else INT64[1] + 1
        if not INT64[0] <= value <= INT64[1]:
            raise _bad(f"{attribute.path}: '{_shortened(text)}' is beyond the 64-bit integers MongoDB stores.")
        return value
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise _bad(f"{attribute.path} is a number; '{text}' is not.") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise _bad(f"{attribute.path} is true or false; '{text}' is neither.")
        return text == "true"
    if kind == "date-time":
        try:
            return canonical_datetime(parse_datetime(text))
        except ValueError:
            raise _bad(f"{attribute.path} is a date-time (ISO 8601, e.g. 2026-01-31 or "
                       f"2026-01-31T08:00:00Z); '{text}' is not.") from None
    if attribute.enum is not None and text not in attribute.enum:
        raise _bad(f"{attribute.path} is one of {', '.join(attribute.enum)}; '{text}' is not.")
    return text


def _shortened(text: str, keep: int = 40) -> str:
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def _values(attribute: Attribute, text: str) -> list[str]:
    """The comma-separated values of a term, at most MAX_OR_VALUES of them."""
    values = text.split(",")
    cap = MAX_ARRAY_OR_VALUES if attribute.crosses_array else MAX_OR_VALUES
    if len(values) > cap:
        inside = " on an attribute inside a list" if attribute.crosses_array else ""
        raise _bad(f"{attribute.path} lists {len(values)} values; a filter{inside} takes at most {cap} "
                   f"(split the query).")
    return values


def _nest(attribute: Attribute, condition) -> dict:
    """Wraps a condition on the last path segment in $elemMatch for every array the path enters."""
    groups = attribute.groups
    query = {".".join(groups[-1]): condition}
    for group in reversed(groups[:-1]):
        query = {".".join(group): {"$elemMatch": query}}
    if len(groups) > 2:
        # $elemMatch inside $elemMatch: the embedded engine evaluates the inner one against the document
        # root unless it sits under a logical operator; a one-armed $or is the same query in MongoDB.
        return {"$or": [query]}
    return _id_path(query)


def _id_path(query: dict) -> dict:
    return {("_id" if key == "id" else key): value for key, value in query.items()}


def resolve_term(catalog: AttributeCatalog, term: Term) -> tuple[Attribute, str]:
    """The attribute and the operator a term names, from `path.op=v` or `path<op>v`."""
    operator = SYMBOLS[term.symbol]
    path = term.name
    head, _, last = path.rpartition(".")
    if head and last in SUFFIX_OPERATORS:
        if term.symbol != "=":
            raise _bad(f"'{term.name}{term.symbol}' names two operators; use one.")
        path, operator = head, last
    try:
        attribute = catalog.lookup(path)
    except BadRequest as exc:
        if head and last not in SUFFIX_OPERATORS and _is_scalar(catalog, head):
            raise _bad(f"'{last}' in '{term.name}' is not an operator; use one of "
                       f"{', '.join(SUFFIX_OPERATORS)} (or {', '.join(SYMBOLS)}).") from None
        raise exc
    if not attribute.is_scalar:
        raise _bad(f"{attribute.path} is {'a list' if attribute.type == 'array' else 'an object'}; "
                   f"filter on one of its attributes (for example {attribute.path}.id).")
    return attribute, operator


def _is_scalar(catalog: AttributeCatalog, path: str) -> bool:
    try:
        return catalog.lookup(path).is_scalar
    except BadRequest:
        return False


def _string_only(attribute: Attribute, operator: str, values: list) -> bool:
    """Whether the condition needs `"$type": "string"` for the embedded engine to answer as MongoDB does."""
    texts = [v for v in values if isinstance(v, str)]
    if not texts:
        return False
    if operator in _RANGE or operator == "regex":
        if attribute.type not in ("string", "date-time"):
            return True  # numbers (of an integer or Any attribute) must not match a string bound or a regex
    if attribute.crosses_array:
        # Inside $elemMatch the engine compares strings exactly, except text made only of digits, which it
        # then finds nowhere (`relatedParty.id=4701`).
        return operator != "regex" and any(_NUMERIC.fullmatch(v) for v in texts)
    if operator == "regex":
        return False  # the engine compares strings exactly for $regex
    if attribute.type == "date-time":
        # datetime() keeps whole seconds: only >= and < a whole second come out exact without the guard.
        return not (operator in ("gte", "lt") and texts[0].endswith(".000Z"))
    return any(_DATE_LIKE.match(v) for v in texts)


def exact_string(value: str) -> dict:
    """An equality with `value` that the embedded engine answers exactly at any path, with the index on a scalar
    path: guarded with `"$type": "string"` only where the engine would otherwise compare it as a date or a number,
    since the guard makes the engine evaluate the condition in Python."""
    guarded = _NUMERIC.fullmatch(value) or _DATE_LIKE.match(value)
    return {"$eq": value, **(_STRING_ONLY if guarded else {})}


def _guarded_equality(values: list) -> dict:
    return {**({"$eq": values[0]} if len(values) == 1 else {"$in": values}), **_STRING_ONLY}


def _instant_condition(attribute: Attribute, operator: str, text: str) -> dict:
    """A condition on the epoch-millisecond copy of a date-time (exact, and index-served on both engines)."""
    values = [epoch_ms(typed_value(attribute, v)) for v in _values(attribute, text)]
    field = attribute.instant_field
    if operator in _RANGE:
        if len(values) != 1:
            raise _bad(f"{operator} on {attribute.path} takes one value, not a list.")
        return {field: {_RANGE[operator]: values[0]}}
    if operator == "eq":
        return {field: {"$eq": values[0]} if len(values) == 1 else {"$in": values}}
    return {field: {"$nin": values}}  # like $ne, matches documents without the attribute


def term_condition(catalog: AttributeCatalog, term: Term) -> dict:
    attribute, operator = resolve_term(catalog, term)
    if attribute.instant_field and operator != "regex":
        return _instant_condition(attribute, operator, term.value)
    if operator == "regex":
        pattern = term.value
        try:
            check_safe_regex(pattern)
        except UnsafeRegex as exc:
            raise _bad(f"The regular expression '{_shortened(pattern)}' for {attribute.path} {exc} "
                       f"(the safe form: docs/mongodb.md, Query budgets).") from None
        guard = _STRING_ONLY if _string_only(attribute, operator, [pattern]) else {}
        return _nest(attribute, {"$regex": pattern, **guard})
    values = [typed_value(attribute, v) for v in _values(attribute, term.value)]
    guarded = _string_only(attribute, operator, values)
    if operator in _RANGE:
        if len(values) != 1:
            raise _bad(f"{operator} on {attribute.path} takes one value, not a list.")
        return _nest(attribute, {_RANGE[operator]: values[0], **(_STRING_ONLY if guarded else {})})
    if operator == "eq":
        if guarded:
            return _nest(attribute, _guarded_equality(values))
        if len(values) == 1:
            # `$eq`, not the bare value, on a scalar path: the engine's count command then compares with the
            # index (the bare form also looks for the value inside arrays, which scans every document).
            return _nest(attribute, values[0] if attribute.crosses_array else {"$eq": values[0]})
        if attribute.crosses_array:
            return {"$or": [_nest(attribute, v) for v in values]}
        return _nest(attribute, {"$in": values})
    # ne: no value matches; on arrays, no element equals any of the values.
    if guarded:
        return {"$nor": [_nest(attribute, _guarded_equality(values))]}
    if attribute.crosses_array:
        return {"$nor": [_nest(attribute, v) for v in values]}
    # $nin even for one value: the engine's count command reads $ne as SQL "!=", which drops documents
    # that lack the attribute (MongoDB's $ne matches them).
    return _nest(attribute, {"$nin": values})


def build_filter(catalog: AttributeCatalog, terms: list[Term]) -> dict:
    if len(terms) > MAX_FILTER_TERMS:
        raise _bad(f"The query has {len(terms)} filter terms; at most {MAX_FILTER_TERMS} are allowed.")
    nul = next((t for t in terms if "\x00" in t.name or "\x00" in t.value), None)
    if nul is not None:
        raise _bad(f"'{_shortened(nul.name)}': query values cannot contain the NUL character (U+0000); "
                   f"no stored text holds it.")
    return all_of([term_condition(catalog, term) for term in terms])


def all_of(conditions: list[dict]) -> dict:
    """The AND of conditions, as one document of fields when they name different fields (or different operators
    of one field): the embedded engine answers that form in SQL, but evaluates a top-level `$and` in Python over
    every document (docs/mongodb.md). In MongoDB both forms are the same query."""
    merged: dict = {}
    for condition in conditions:
        for key, value in condition.items():
            if key.startswith("$") or (key in merged and not _mergeable(merged[key], value)):
                return {"$and": conditions} if len(conditions) > 1 else conditions[0]
            merged[key] = {**merged[key], **value} if key in merged else value
    return merged


def _mergeable(current, value) -> bool:
    """Whether two conditions on one field can be one operator document (no operator named twice)."""
    operators = (isinstance(current, dict) and isinstance(value, dict) and
                 all(k.startswith("$") for k in (*current, *value)) and not set(current) & set(value))
    return operators and "$elemMatch" not in current and "$elemMatch" not in value
