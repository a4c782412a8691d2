"""Walking JSON documents in tests, and a stored report's representation with every kind of attribute."""
from __future__ import annotations


def paths(node, prefix: tuple = ()):
    """Every path in `node` (keys and list indexes), the empty path first, parents before their children."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


# A ServiceProblem as the server stores and answers it (dates, parties, characteristics, a tracking record).
STORED_REPORT = {
    "id": "x", "href": "http://h/x", "category": "customer.qosDegradation", "priority": 1, "description": "d",
    "reason": "r", "originatorParty": {"id": "C1", "@referredType": "Individual"},
    "relatedParty": [{"id": "C1", "role": "customer", "@referredType": "Individual"}],
    "affectedService": [{"id": "svc", "name": "F"}],
    "characteristic": [{"name": "metric", "value": "downlinkThroughput"},
                       {"name": "degradationStart", "value": "2026-11-20T18:00:00Z"}],
    "status": "acknowledged", "creationDate": "2026-11-30T08:04:22.181Z", "lastUpdate": "2026-11-30T08:04:22.181Z",
    "statusChangeDate": "2026-11-30T08:04:22.181Z", "@type": "ServiceProblem", "affectedNumberOfServices": 1,
    "responsibleParty": {"id": "q", "name": "n", "role": "responsible", "@referredType": "Organization"},
    "trackingRecord": [{"id": "1", "description": "created", "systemId": "s", "time": "2026-11-30T08:04:22.181Z",
                        "user": "b"}],
    "parentProblem": [{"id": "p", "href": "http://x"}], "note": [{"text": "t", "date": "2026-11-30T08:04:22.181Z"}],
}
