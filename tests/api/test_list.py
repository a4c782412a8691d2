"""GET /serviceProblem: TMF630 fields, filters, sort and paging against the real server."""
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest


@pytest.fixture()
def tagged(api):
    """Five reports that share a category unique to the test, with distinct priorities and parties."""
    tag = f"cat-{uuid.uuid4().hex[:10]}"
    shapes = [
        (1, "C1", "acknowledged"), (2, "C2", "acknowledged"), (3, "C1", "acknowledged"),
        (4, "C3", "acknowledged"), (5, "C2", "acknowledged"),
    ]
    created = []
    for priority, party, _status in shapes:
        created.append(api.created(
            category=tag, priority=priority,
            relatedParty=[{"id": f"{tag}-{party}", "role": "customer", "@referredType": "Individual"},
                          {"id": f"{tag}-agent", "role": "agent", "@referredType": "Individual"}],
            originatorParty={"id": f"{tag}-{party}", "@referredType": "Individual"},
        ))
    return tag, created


def ids(response):
    return [item["id"] for item in response.json()]


def by_priority(created, *priorities):
    return {p["id"] for p in created if p["priority"] in priorities}


def test_equality_filter_and_total_count(api, tagged):
    tag, created = tagged
    response = api.list(f"category={tag}")
    assert response.status_code == 200
    assert set(ids(response)) == {p["id"] for p in created}
    assert response.headers["X-Total-Count"] == "5" and response.headers["X-Result-Count"] == "5"


@pytest.mark.parametrize("query, priorities", [
    ("priority=2", (2,)),
    ("priority=2,4", (2, 4)),
    ("priority.eq=3", (3,)),
    ("priority.ne=3", (1, 2, 4, 5)),
    ("priority!=3", (1, 2, 4, 5)),
    ("priority.ne=3,4", (1, 2, 5)),
    ("priority.gt=3", (4, 5)),
    ("priority>3", (4, 5)),
    ("priority.gte=3", (3, 4, 5)),
    ("priority>=3", (3, 4, 5)),
    ("priority.lt=3", (1, 2)),
    ("priority<3", (1, 2)),
    ("priority.lte=3", (1, 2, 3)),
    ("priority<=3", (1, 2, 3)),
    ("priority.gte=2&priority.lt=5", (2, 3, 4)),
    ("priority>=2&priority<5", (2, 3, 4)),
])
def test_scalar_operators_suffix_and_symbolic(api, tagged, query, priorities):
    tag, created = tagged
    response = api.list(f"category={tag}&{query}")
    assert response.status_code == 200
    assert set(ids(response)) == by_priority(created, *priorities)
    assert response.headers["X-Total-Count"] == str(len(priorities))


@pytest.mark.parametrize("party, priorities", [
    ("C1", (1, 3)), ("C2", (2, 5)), ("C3", (4,)), ("C1,C3", (1, 3, 4)), ("nobody", ()),
])
def test_array_path_matches_any_element(api, tagged, party, priorities):
    tag, created = tagged
    values = ",".join(f"{tag}-{p}" for p in party.split(","))
    response = api.list(f"relatedParty.id={values}")
    assert set(ids(response)) == by_priority(created, *priorities)


def test_array_path_not_equal_means_no_element_equals(api, tagged):
    tag, created = tagged
    response = api.list(f"category={tag}&relatedParty.id!={tag}-C1")
    assert set(ids(response)) == by_priority(created, 2, 4, 5)
    everyone_has_agent = api.list(f"category={tag}&relatedParty.id.ne={tag}-agent")
    assert ids(everyone_has_agent) == []


def test_two_conditions_on_array_elements_and_together(api, tagged):
    tag, created = tagged
    response = api.list(f"category={tag}&relatedParty.id={tag}-C2&relatedParty.role=agent")
    assert set(ids(response)) == by_priority(created, 2, 5)


def test_sub_document_path(api, tagged):
    tag, created = tagged
    response = api.list(f"originatorParty.id={tag}-C2")
    assert set(ids(response)) == by_priority(created, 2, 5)


def test_regex(api, tagged):
    tag, created = tagged
    assert set(ids(api.list(f"category.regex=^{tag}$"))) == {p["id"] for p in created}
    assert ids(api.list(f"category.regex=^{tag}x")) == []


def test_status_or_list(api, tagged):
    tag, created = tagged
    first, second = created[0]["id"], created[1]["id"]
    assert api.patch(first, {"status": "inProgress"}).status_code == 200
    assert api.patch(second, {"status": "inProgress"}).status_code == 200
    assert api.patch(second, {"status": "held"}).status_code == 200
    response = api.list(f"category={tag}&status=inProgress,held")
    assert set(ids(response)) == {first, second}
    assert set(ids(api.list(f"category={tag}&status=acknowledged"))) == {p["id"] for p in created[2:]}


def test_date_filters_are_typed(api, tagged):
    tag, created = tagged
    newest = max(p["creationDate"] for p in created)
    assert set(ids(api.list(f"category={tag}&creationDate.lte={newest}"))) == {p["id"] for p in created}
    assert ids(api.list(f"category={tag}&creationDate>{newest}")) == []
    assert set(ids(api.list(f"category={tag}&creationDate>2000-01-01"))) == {p["id"] for p in created}
    assert ids(api.list(f"category={tag}&creationDate<2000-01-01")) == []
    # The same instant written with an offset compares equal.
    assert len(ids(api.list(f"category={tag}&creationDate.gte=2000-01-01T02:00:00%2B02:00"))) == 5


def test_filter_by_id(api, tagged):
    _tag, created = tagged
    target = created[2]["id"]
    assert ids(api.list(f"id={target}")) == [target]


def test_sort_several_keys(api, tagged):
    tag, created = tagged
    response = api.list(f"category={tag}&sort=-priority")
    assert [p["priority"] for p in response.json()] == [5, 4, 3, 2, 1]
    response = api.list(f"category={tag}&sort=originatorParty.id,-priority")
    assert [p["priority"] for p in response.json()] == [3, 1, 5, 2, 4]


def test_default_order_is_newest_first(api, tagged):
    tag, _ = tagged
    dates = [p["creationDate"] for p in api.list(f"category={tag}").json()]
    assert dates == sorted(dates, reverse=True)


def test_fields_selects_first_level_attributes(api, tagged):
    tag, _ = tagged
    for item in api.list(f"category={tag}&fields=priority,status").json():
        assert set(item) == {"id", "href", "priority", "status"}
    for item in api.list(f"category={tag}&fields=none").json():
        assert set(item) == {"id", "href"}


def test_paging_headers_status_and_links(api, tagged):
    tag, created = tagged
    expected = [p["id"] for p in sorted(created, key=lambda p: p["priority"])]
    first = api.list(f"category={tag}&sort=priority&offset=0&limit=2")
    assert first.status_code == 206
    assert ids(first) == expected[:2]
    assert first.headers["X-Total-Count"] == "5" and first.headers["X-Result-Count"] == "2"
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', first.headers["Link"]))
    assert set(links) == {"self", "first", "next", "last"}
    assert parse_qs(urlsplit(links["next"]).query)["offset"] == ["2"]
    assert parse_qs(urlsplit(links["last"]).query)["offset"] == ["4"]
    assert parse_qs(urlsplit(links["next"]).query)["category"] == [tag]

    following = api.request("GET", links["next"])
    assert following.status_code == 206 and ids(following) == expected[2:4]
    last = api.request("GET", links["last"])
    assert last.status_code == 200 and ids(last) == expected[4:]
    last_links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', last.headers["Link"]))
    assert "next" not in last_links and "prev" in last_links

    beyond = api.list(f"category={tag}&offset=10&limit=2")
    assert beyond.status_code == 200 and beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "5" and beyond.headers["X-Result-Count"] == "0"


def test_default_limit_is_documented_100(api, tagged):
    response = api.list("fields=none")
    assert int(response.headers["X-Result-Count"]) == min(100, int(response.headers["X-Total-Count"]))


def test_query_values_are_literals_not_operators(api, tagged):
    tag, _ = tagged
    assert ids(api.list("category=$ne")) == []
    assert ids(api.list(f"category={tag}&description=$exists")) == []
