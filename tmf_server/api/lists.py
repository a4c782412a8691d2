"""The TMF630 list and retrieve operations, the same for every resource collection."""
from __future__ import annotations

from pymongo.errors import ExecutionTimeout

from tmf_server.api.context import api_base_url, raw_query_string, services
from tmf_server.api.paging import page_headers
from tmf_server.errors import NotFound, ServiceUnavailable
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.listing import DEFAULT_SORT, parse_fields, parse_list_query
from tmf_server.store.documents import to_api
from tmf_server.store.reader import CollectionReader


def list_response(reader: CollectionReader, catalog: AttributeCatalog, collection_path: str, *, fields, offset,
                  limit, sort, default_sort=DEFAULT_SORT, present=to_api, scope: dict | None = None):
    """A TMF630 list; `scope` (a MongoDB filter on stored fields) narrows it to what the caller may see."""
    settings = services().settings
    raw = raw_query_string()
    query = parse_list_query(catalog, raw, fields=fields, sort=sort, offset=offset, limit=limit,
                             default_limit=settings.default_limit, max_limit=settings.max_limit,
                             default_sort=default_sort)
    filter_ = query.filter
    if scope:
        filter_ = {"$and": [scope, filter_]} if filter_ else scope
    budget = settings.query_timeout_ms
    try:
        items = [present(d) for d in reader.find(filter_, query.sort, query.offset, query.limit, query.projection,
                                                 budget)]
        total = reader.count(filter_, budget)
    except ExecutionTimeout:
        raise ServiceUnavailable(f"The query took longer than its budget of {budget} ms; narrow the filter "
                                 f"or retry later.", code="queryTimeout",
                                 headers={"Retry-After": str(settings.retry_after_seconds)}) from None
    status, headers = page_headers(api_base_url() + collection_path, raw, query.offset, query.limit,
                                   len(items), total)
    return items, status, headers


def retrieve(reader: CollectionReader, catalog: AttributeCatalog, resource_id: str, fields, what: str,
             present=to_api) -> dict:
    document = reader.get(resource_id, parse_fields(catalog, fields))
    if document is None:
        raise NotFound(f"No {what} with id '{resource_id}'.")
    return present(document)
