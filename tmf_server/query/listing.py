"""A whole TMF630 list request: filter, attribute selection, sort and page."""
from __future__ import annotations

from dataclasses import dataclass

from tmf_server.errors import BadRequest
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.filters import build_filter
from tmf_server.query.params import split_query_string

RESERVED = ("fields", "offset", "limit", "sort")
DEFAULT_SORT = (("creationDate", -1), ("_id", 1))


@dataclass(frozen=True)
class ListQuery:
    filter: dict
    sort: tuple[tuple[str, int], ...]
    projection: dict | None  # None: every attribute
    offset: int
    limit: int


def parse_fields(catalog: AttributeCatalog, text: str | None) -> dict | None:
    """`fields=a,b` -> a MongoDB projection of those first-level attributes (plus id and href)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        names = []
    else:
        unknown = [n for n in names if n not in catalog.top_level]
        if unknown:
            raise BadRequest(f"fields: {', '.join(repr(n) for n in unknown)} "
                             f"{'is not a first-level attribute' if len(unknown) == 1 else 'are not first-level attributes'}"
                             f" of {catalog.schema_name}.", code="invalidQuery")
    projection = {name: 1 for name in names if name != "id"}
    projection["href"] = 1
    projection["_version"] = 1
    return projection


def parse_sort(catalog: AttributeCatalog, text: str | None,
               default: tuple[tuple[str, int], ...] = DEFAULT_SORT) -> tuple[tuple[str, int], ...]:
    if not text:
        return tuple((_instant_or(catalog, key), direction) for key, direction in default)
    keys: list[tuple[str, int]] = []
    for item in text.split(","):
        item = item.strip()
        direction = -1 if item.startswith("-") else 1
        path = item.lstrip("+-")
        attribute = catalog.lookup(path) if path else None
        if attribute is None or not attribute.is_scalar or attribute.crosses_array:
            raise BadRequest(f"sort: '{item}' is not a single-valued attribute of {catalog.schema_name}.",
                             code="invalidQuery")
        field = "_id" if path == "id" else attribute.instant_field or path
        if field not in (k for k, _ in keys):
            keys.append((field, direction))
    if "_id" not in (k for k, _ in keys):
        keys.append(("_id", 1))  # a total order, so pages never overlap or skip
    return tuple(keys)


def _instant_or(catalog: AttributeCatalog, field: str) -> str:
    """A default sort key, on the epoch-millisecond copy of the date-time where the store keeps one."""
    return catalog.lookup(field).instant_field if field in catalog.instants else field


def page_limit(limit: int | None, default_limit: int, max_limit: int) -> int:
    """The page size of every list: the default when none is asked, never beyond the maximum (the served
    documents state it too, so Connexion usually refuses first)."""
    limit = default_limit if limit is None else limit
    if limit > max_limit:
        raise BadRequest(f"limit is at most {max_limit}.", code="invalidQuery")
    return limit


def parse_list_query(catalog: AttributeCatalog, raw_query: str, *, fields: str | None, sort: str | None,
                     offset: int | None, limit: int | None, default_limit: int, max_limit: int,
                     default_sort: tuple[tuple[str, int], ...] = DEFAULT_SORT) -> ListQuery:
    terms = split_query_string(raw_query)
    misused = [t.name for t in terms if t.name in RESERVED and t.symbol != "="]
    if misused:
        raise BadRequest(f"{misused[0]} takes a value with '=', not an operator.", code="invalidQuery")
    terms = [t for t in terms if t.name not in RESERVED]
    limit = page_limit(limit, default_limit, max_limit)
    return ListQuery(
        filter=build_filter(catalog, terms),
        sort=parse_sort(catalog, sort, default_sort),
        projection=parse_fields(catalog, fields),
        offset=offset or 0,
        limit=limit,
    )
