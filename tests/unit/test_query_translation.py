"""The TMF630 translator emits only the canonical MongoDB forms (docs/mongodb.md)."""
from datetime import datetime, timedelta, timezone

import pytest

from tmf_server.app import load_spec
from tmf_server.dates import canonical_datetime
from tmf_server.errors import BadRequest
from tmf_server.problems.repository import problem_catalog
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.filters import build_filter
from tmf_server.query.listing import parse_list_query
from tmf_server.query.params import Term, split_query_string

CATALOG = AttributeCatalog(load_spec(), "ServiceProblem")


def translate(query: str) -> dict:
    return build_filter(CATALOG, split_query_string(query))


@pytest.mark.parametrize("raw, term", [
    ("priority=2", Term("priority", "=", "2")),
    ("priority.gte=2", Term("priority.gte", "=", "2")),
    ("priority>=2", Term("priority", ">=", "2")),
    ("priority%3E%3D2", Term("priority", ">=", "2")),
    ("priority%3E=2", Term("priority", ">=", "2")),
    ("priority>2", Term("priority", ">", "2")),
    ("creationDate<2026-01-01", Term("creationDate", "<", "2026-01-01")),
    ("status!=closed", Term("status", "!=", "closed")),
    ("description=a>b", Term("description", "=", "a>b")),
    ("description=x%3Dy%26z", Term("description", "=", "x=y&z")),
    ("name=Jane+Doe", Term("name", "=", "Jane Doe")),
])
def test_split_query_string(raw, term):
    assert split_query_string(raw) == [term]


@pytest.mark.parametrize("query, expected", [
    ("status=held", {"status": {"$eq": "held"}}),
    ("status=pending,held", {"status": {"$in": ["pending", "held"]}}),
    ("status!=closed", {"status": {"$nin": ["closed"]}}),
    ("status.ne=closed,cancelled", {"status": {"$nin": ["closed", "cancelled"]}}),
    ("priority>=2", {"priority": {"$gte": 2}}),
    ("priority.lt=5", {"priority": {"$lt": 5}}),
    ("id=abc", {"_id": {"$eq": "abc"}}),
    ("originatorParty.id=C1,C2", {"originatorParty.id": {"$in": ["C1", "C2"]}}),
    ("relatedParty.id=C42", {"relatedParty": {"$elemMatch": {"id": "C42"}}}),
    ("relatedParty.id=4701", {"relatedParty": {"$elemMatch": {"id": {"$eq": "4701", "$type": "string"}}}}),
    ("relatedParty.id=C1,C2", {"$or": [{"relatedParty": {"$elemMatch": {"id": "C1"}}},
                                       {"relatedParty": {"$elemMatch": {"id": "C2"}}}]}),
    ("relatedParty.id!=C1", {"$nor": [{"relatedParty": {"$elemMatch": {"id": "C1"}}}]}),
    ("relatedParty.id.regex=^C", {"relatedParty": {"$elemMatch": {"id": {"$regex": "^C"}}}}),
    ("note.date>2026-01-01", {"note": {"$elemMatch": {"date": {"$gt": "2026-01-01T00:00:00.000Z"}}}}),
    ("characteristic.characteristicRelationship.id=E1",
     {"$or": [{"characteristic": {"$elemMatch": {"characteristicRelationship": {"$elemMatch": {"id": "E1"}}}}}]}),
    ("creationDate<2026-01-01T01:00:00+01:00", {"creationDate": {"$lt": "2026-01-01T00:00:00.000Z"}}),
    # AND: one document of fields where the terms name different fields or operators, else $and.
    ("priority=1&status=held", {"priority": {"$eq": 1}, "status": {"$eq": "held"}}),
    ("priority>=1&priority<4&status!=closed", {"priority": {"$gte": 1, "$lt": 4}, "status": {"$nin": ["closed"]}}),
    ("priority>=1&priority>=2", {"$and": [{"priority": {"$gte": 1}}, {"priority": {"$gte": 2}}]}),
    ("status=held&status!=closed", {"status": {"$eq": "held", "$nin": ["closed"]}}),
    ("status=held&status=closed", {"$and": [{"status": {"$eq": "held"}}, {"status": {"$eq": "closed"}}]}),
    ("status=held&relatedParty.id=C1,C2", {"$and": [{"status": {"$eq": "held"}}, {"$or": [
        {"relatedParty": {"$elemMatch": {"id": "C1"}}}, {"relatedParty": {"$elemMatch": {"id": "C2"}}}]}]}),
    ("relatedParty.id=C1&relatedParty.role=customer", {"$and": [{"relatedParty": {"$elemMatch": {"id": "C1"}}},
                                                               {"relatedParty": {"$elemMatch": {"role": "customer"}}}]}),
])
def test_canonical_forms(query, expected):
    assert translate(query) == expected


def test_no_operator_a_client_sends_reaches_mongodb_as_operator():
    assert translate("category=$ne") == {"category": {"$eq": "$ne"}}
    assert translate("category={\"$gt\":\"\"}") == {"category": {"$eq": '{"$gt":""}'}}


@pytest.mark.parametrize("query, message", [
    ("foo=1", "'foo' is not an attribute"),
    ("originatorParty.foo=1", "originatorParty has no attribute 'foo'"),
    ("priority.between=1", "'between' in 'priority.between' is not an operator"),
    ("priority.gte>=2", "two operators"),
    ("relatedParty=x", "is a list"),
    ("originatorParty=x", "is an object"),
    ("priority=high", "is an integer"),
    ("priority.gt=1,2", "takes one value"),
    ("creationDate>yesterday", "is a date-time"),
    ("status=open", "is one of"),
    ("description.regex=(", "not a valid regular expression"),
    ("priority", "has no value"),
    ("priority!x", "is not an operator"),
])
def test_invalid_filters_are_bad_requests(query, message):
    with pytest.raises(BadRequest) as caught:
        translate(query)
    assert message in caught.value.message


def parse(query: str, **params):
    values = {"fields": None, "sort": None, "offset": None, "limit": None, **params}
    return parse_list_query(CATALOG, query, default_limit=100, max_limit=1000, **values)


def test_sort_always_ends_with_id_for_stable_pages():
    assert parse("", sort="-priority,creationDate").sort == (("priority", -1), ("creationDate", 1), ("_id", 1))
    assert parse("").sort == (("creationDate", -1), ("_id", 1))


@pytest.mark.parametrize("sort", ["relatedParty.id", "note", "foo", "-", "originatorParty"])
def test_sort_needs_a_single_valued_attribute(sort):
    with pytest.raises(BadRequest):
        parse("", sort=sort)


def test_fields_projection():
    assert parse("", fields="status,priority").projection == {"status": 1, "priority": 1, "href": 1, "_version": 1}
    assert parse("", fields="none").projection == {"href": 1, "_version": 1}
    with pytest.raises(BadRequest):
        parse("", fields="status,nope")


def test_limit_has_a_default_and_a_maximum():
    assert parse("").limit == 100
    with pytest.raises(BadRequest):
        parse("", limit=1001)
    with pytest.raises(BadRequest):
        parse("limit>5")


@pytest.mark.parametrize("value, stored", [
    (datetime(149, 6, 3, 23, 4, 4, 783000, tzinfo=timezone(-timedelta(hours=20, minutes=5))), "0149-06-04T19:09:04.783Z"),
    (datetime(1, 1, 1, tzinfo=timezone.utc), "0001-01-01T00:00:00.000Z"),
    (datetime(2026, 11, 25, 8, 0, 0, 123456), "2026-11-25T08:00:00.123Z"),
])
def test_stored_date_times_have_four_digit_years(value, stored):
    # RFC 3339 (the OpenAPI date-time format) requires four year digits; strftime's %Y does not pad them.
    assert canonical_datetime(value) == stored


STORED = problem_catalog(load_spec())  # the catalog of the stored reports: dates also as epoch milliseconds
T1 = "2026-01-31T08:00:00.123Z"
T1_MS = 1769846400123


@pytest.mark.parametrize("query, expected", [
    (f"creationDate>{T1}", {"_creationDateMs": {"$gt": T1_MS}}),
    (f"creationDate.lte={T1}", {"_creationDateMs": {"$lte": T1_MS}}),
    ("creationDate.gte=2026-01-31T09:00:00.123+01:00", {"_creationDateMs": {"$gte": T1_MS}}),
    (f"lastUpdate={T1}", {"_lastUpdateMs": {"$eq": T1_MS}}),
    (f"resolutionDate={T1},1970-01-01", {"_resolutionDateMs": {"$in": [T1_MS, 0]}}),
    (f"statusChangeDate!={T1}", {"_statusChangeDateMs": {"$nin": [T1_MS]}}),
    ("creationDate.regex=^2026", {"creationDate": {"$regex": "^2026"}}),  # text stays text
    ("note.date>2026-01-01", {"note": {"$elemMatch": {"date": {"$gt": "2026-01-01T00:00:00.000Z"}}}}),  # text
])
def test_top_level_dates_compare_as_epoch_milliseconds(query, expected):
    assert build_filter(STORED, split_query_string(query)) == expected


def test_sorts_on_dates_use_the_epoch_millisecond_copies():
    query = parse_list_query(STORED, "", fields=None, sort="-lastUpdate,priority", offset=None, limit=None,
                             default_limit=10, max_limit=100)
    assert query.sort == (("_lastUpdateMs", -1), ("priority", 1), ("_id", 1))
    default = parse_list_query(STORED, "", fields=None, sort=None, offset=None, limit=None,
                               default_limit=10, max_limit=100)
    assert default.sort == (("_creationDateMs", -1), ("_id", 1))


def test_a_catalog_refuses_instants_that_are_not_top_level_dates():
    with pytest.raises(ValueError, match="priority"):
        AttributeCatalog(load_spec(), "ServiceProblem", instants=("creationDate", "priority"))
