"""/serviceProblemEventRecord operations: every event the server emitted, as TMF656 event records."""
from __future__ import annotations

from tmf_server.api.context import services
from tmf_server.api.lists import list_response, retrieve

COLLECTION = "/serviceProblemEventRecord"
NEWEST_FIRST = (("eventTime", -1), ("_id", 1))


def listServiceProblemEventRecord(fields=None, offset=None, limit=None, sort=None):
    app = services()
    return list_response(app.records, app.record_catalog, COLLECTION, fields=fields, offset=offset, limit=limit,
                         sort=sort, default_sort=NEWEST_FIRST)


def retrieveServiceProblemEventRecord(id, fields=None):  # noqa: A002
    app = services()
    return retrieve(app.records, app.record_catalog, id, fields, "ServiceProblemEventRecord")
