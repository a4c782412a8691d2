"""The checks, in the order they run. Each is independent: it creates what it needs under its own marker and
its session deletes it afterwards. Requirements come from the TMF656 v4 document and TMF630 (the API design
guidelines: filtering, `fields`, `sort`, paging headers, PATCH formats, error bodies, hub)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from tmf_server.conformance import schema
from tmf_server.conformance.listener import NotificationListener
from tmf_server.conformance.session import RESOURCE, CheckSkipped, Session, got

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# ServiceProblem attributes a PATCH may change besides those it names: the server keeps them up to date.
MAINTAINED_BY_SERVER = frozenset({"lastUpdate", "statusChangeDate"})


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    required: bool
    run: Callable[[Session], None]


CHECKS: list[Check] = []


def check(check_id: str, title: str, *, required: bool = True):
    def register(run: Callable[[Session], None]) -> Callable[[Session], None]:
        CHECKS.append(Check(check_id, title, required, run))
        return run
    return register


def family(session: Session) -> list[dict]:
    """Three reports under the session's marker: priorities 1, 2, 3 and labels a, b, c, in that order."""
    return [session.create(session.problem_body(label, priority=priority))
            for label, priority in (("a", 1), ("b", 2), ("c", 3))]


def ids(problems: list[dict]) -> list[str]:
    return [p["id"] for p in problems]


def unchanged_except(session: Session, before: dict, after: dict, changed: set[str], exchange, what: str) -> None:
    """`after` differs from `before` only in `changed` and in attributes a client cannot set."""
    settable = schema.attributes("ServiceProblem_Update") - MAINTAINED_BY_SERVER
    differing = sorted(name for name in (set(before) | set(after)) - changed
                       if name in settable and before.get(name) != after.get(name))
    session.expect(not differing, f"{what} also changed {differing}, which it did not name", exchange)


# -- create, read, list --------------------------------------------------------------------------------

@check("create", "POST /serviceProblem with the mandatory attributes: 201, body and Location")
def create(session: Session) -> None:
    sent = session.problem_body()
    created = session.create(sent)
    exchange = session.client.last
    session.expect(isinstance(created.get("href"), str) and created["href"] != "", "the 201 body has no href",
                   exchange)
    for name in ("category", "priority", "description", "reason"):
        session.expect(created.get(name) == sent[name],
                       f"{name} was sent as {sent[name]!r} but the 201 body has {created.get(name)!r}", exchange)
    party = created.get("originatorParty")
    session.expect(isinstance(party, dict) and party.get("id") == sent["originatorParty"]["id"],
                   f"originatorParty.id was sent as {sent['originatorParty']['id']!r}, the 201 body has "
                   f"{party!r}", exchange)
    location = session.expect_header(exchange, "Location")
    fetched = session.client.get(urljoin(exchange.url, location))
    session.expect_status(fetched, 200)
    body = session.expect_json(fetched, dict)
    session.expect(body.get("id") == created["id"],
                   f"the Location header {location!r} leads to {body.get('id')!r}, not to {created['id']!r}",
                   fetched)


@check("create-schema", "the created resource is a valid TMF656 v4 ServiceProblem")
def create_schema(session: Session) -> None:
    sent = session.problem_body(
        name="Slow broadband",
        impactImportanceFactor="high",
        affectedNumberOfServices=1,
        note=[{"text": "Customer reports pages loading slowly since this morning", "author": "CRM"}],
        characteristic=[{"name": "downloadThroughputMbps", "value": 3}],
        externalIdentifier=[{"id": f"crm-{session.marker}", "externalIdentifierType": "complaint"}],
    )
    created = session.create(sent)
    session.expect_valid("ServiceProblem", created, session.client.last, "the created resource")


@check("retrieve", "GET /serviceProblem/{id}: 200, the same resource, valid")
def retrieve(session: Session) -> None:
    created = session.create(session.problem_body())
    exchange = session.client.get(session.path_of(created["id"]))
    session.expect_status(exchange, 200)
    body = session.expect_json(exchange, dict)
    session.expect(body.get("id") == created["id"], f"asked for {created['id']!r}, got {body.get('id')!r}")
    session.expect_valid("ServiceProblem", body, exchange, "the retrieved resource")
    for name in ("category", "priority", "description", "reason", "originatorParty"):
        session.expect(body.get(name) == created.get(name),
                       f"{name} is {body.get(name)!r} on GET but was {created.get(name)!r} in the 201 body")


@check("list", "GET /serviceProblem: 200 (or 206), a JSON array, every element valid")
def list_all(session: Session) -> None:
    session.create(session.problem_body())
    exchange = session.client.get(RESOURCE)
    session.expect_status(exchange, 200, 206)
    body = session.expect_json(exchange, list)
    session.expect(len(body) > 0, "the list is empty although a service problem exists")
    for index, item in enumerate(body):
        session.expect_valid("ServiceProblem", item, exchange, f"element {index} of the list")


# -- TMF630 queries --------------------------------------------------------------------------------------

@check("fields-retrieve", "GET /serviceProblem/{id}?fields=category: only category, id and href")
def fields_retrieve(session: Session) -> None:
    created = session.create(session.problem_body())
    exchange = session.client.get(session.path_of(created["id"]), fields="category")
    session.expect_status(exchange, 200)
    body = session.expect_json(exchange, dict)
    extra = sorted(set(body) - {"category", "id", "href"})
    session.expect(not extra, f"fields=category returned other attributes too: {extra}")
    session.expect(body.get("category") == created["category"] and body.get("id") == created["id"],
                   f"fields=category must return category and id; got {body}")


@check("fields-list", "GET /serviceProblem?fields=reason (and reason,priority): only those, id and href")
def fields_list(session: Session) -> None:
    problems = family(session)
    for selection in (["reason"], ["reason", "priority"]):
        fields = ",".join(selection)
        exchange = session.client.get(RESOURCE, category=problems[0]["category"], fields=fields)
        session.expect_ids(exchange, ids(problems), what=f"category filter with fields={fields}")
        for item in exchange.json:
            extra = sorted(set(item) - {*selection, "id", "href"})
            session.expect(not extra, f"fields={fields} returned other attributes too: {extra}")
            missing = [name for name in selection if name not in item]
            session.expect(not missing, f"fields={fields} left out {missing}: {item}")


@check("filter-equality", "attribute=value filters return exactly the matching resources")
def filter_equality(session: Session) -> None:
    problems = family(session)
    session.expect_ids(session.client.get(RESOURCE, category=problems[0]["category"]), ids(problems),
                       what="category=<marker>")
    session.expect_ids(session.client.get(RESOURCE, reason=problems[1]["reason"]), [problems[1]["id"]],
                       what="reason=<one report's reason>")
    session.expect_ids(session.client.get(RESOURCE, category=problems[0]["category"], priority="3"),
                       [problems[2]["id"]], what="category=<marker>&priority=3")
    session.expect_ids(session.client.get(RESOURCE, id=problems[0]["id"]), [problems[0]["id"]], what="id=<one id>")


@check("filter-dotted", "dotted attribute paths (originatorParty.id=...) return exactly the matching resources")
def filter_dotted(session: Session) -> None:
    problems = family(session)
    party = problems[1]["originatorParty"]["id"]
    session.expect_ids(session.client.get(RESOURCE, **{"originatorParty.id": party}), [problems[1]["id"]],
                       what=f"originatorParty.id={party}")


@check("filter-operators", "operator filters (.gt .gte .lt .lte) return exactly the matching resources")
def filter_operators(session: Session) -> None:
    problems = family(session)
    category = problems[0]["category"]
    for operator, value, expected in (("gt", 1, problems[1:]), ("gte", 2, problems[1:]), ("lt", 3, problems[:2]),
                                      ("lte", 1, problems[:1])):
        session.expect_ids(session.client.get(RESOURCE, category=category, **{f"priority.{operator}": str(value)}),
                           ids(expected), what=f"priority.{operator}={value} (priorities 1, 2, 3)")


@check("sort", "sort=priority and sort=-priority order the results")
def sort(session: Session) -> None:
    problems = family(session)
    category = problems[0]["category"]
    session.expect_ids(session.client.get(RESOURCE, category=category, sort="priority"), ids(problems),
                       ordered=True, what="sort=priority")
    session.expect_ids(session.client.get(RESOURCE, category=category, sort="-priority"), ids(problems)[::-1],
                       ordered=True, what="sort=-priority")


@check("paging", "offset/limit: 206 for a partial page, X-Total-Count and X-Result-Count")
def paging(session: Session) -> None:
    problems = family(session)
    category = problems[0]["category"]

    def page(offset: int, limit: int, statuses: tuple[int, ...], expected: list[dict]) -> None:
        exchange = session.client.get(RESOURCE, category=category, sort="priority", offset=str(offset),
                                      limit=str(limit))
        session.expect_status(exchange, *statuses)
        session.expect_ids(exchange, ids(expected), ordered=True, what=f"offset={offset}&limit={limit}")
        total = session.expect_header(exchange, "X-Total-Count")
        session.expect(total.strip() == "3", f"X-Total-Count is {total!r} for 3 matching resources", exchange)
        count = session.expect_header(exchange, "X-Result-Count")
        session.expect(count.strip() == str(len(expected)),
                       f"X-Result-Count is {count!r} for a page of {len(expected)}", exchange)

    page(0, 2, (206,), problems[:2])
    page(2, 2, (200, 206), problems[2:])
    page(0, 3, (200,), problems)


# -- changes -------------------------------------------------------------------------------------------

@check("merge-patch", "PATCH with application/merge-patch+json changes exactly what it names")
def merge_patch(session: Session) -> None:
    created = session.create(session.problem_body(name="to be removed"))
    before = session.client.get(session.path_of(created["id"]))
    session.expect_status(before, 200)
    before_body = session.expect_json(before, dict)
    description = f"changed by merge patch {session.marker}"
    exchange = session.client.patch(session.path_of(created["id"]), {"description": description, "name": None},
                                     MERGE_PATCH)
    session.expect_status(exchange, 200)
    patched = session.expect_json(exchange, dict)
    session.expect(patched.get("description") == description,
                   f"description is {patched.get('description')!r} after the merge patch set it", exchange)
    session.expect("name" not in patched or patched["name"] is None,
                   f"name is {patched.get('name')!r} after the merge patch removed it (null, RFC 7396)", exchange)
    session.expect_valid("ServiceProblem", patched, exchange, "the patched resource")
    unchanged_except(session, before_body, patched, {"description", "name"}, exchange, "the merge patch")
    after = session.client.get(session.path_of(created["id"]))
    session.expect_status(after, 200)
    session.expect(session.expect_json(after, dict).get("description") == description,
                   "a GET after the merge patch does not show the new description", after)


@check("json-patch", "PATCH with application/json-patch+json changes exactly what it names", required=False)
def json_patch(session: Session) -> None:
    created = session.create(session.problem_body())
    before = session.client.get(session.path_of(created["id"]))
    session.expect_status(before, 200)
    before_body = session.expect_json(before, dict)
    description = f"changed by json patch {session.marker}"
    operations = [{"op": "replace", "path": "/description", "value": description},
                  {"op": "add", "path": "/name", "value": "Added by JSON Patch"}]
    exchange = session.client.patch(session.path_of(created["id"]), operations, JSON_PATCH)
    if exchange.status in (415, 501):
        raise CheckSkipped(f"the server does not accept {JSON_PATCH} ({exchange.status}); TMF630 makes it optional")
    session.expect_status(exchange, 200)
    patched = session.expect_json(exchange, dict)
    session.expect(patched.get("description") == description and patched.get("name") == "Added by JSON Patch",
                   f"after the JSON patch description is {patched.get('description')!r} and name "
                   f"{patched.get('name')!r}", exchange)
    session.expect_valid("ServiceProblem", patched, exchange, "the patched resource")
    unchanged_except(session, before_body, patched, {"description", "name"}, exchange, "the JSON patch")


@check("delete", "DELETE /serviceProblem/{id}: 204, then GET is 404")
def delete(session: Session) -> None:
    created = session.create(session.problem_body())
    exchange = session.client.delete(session.path_of(created["id"]))
    session.expect_status(exchange, 204)
    session.forget(created["id"])
    session.expect_tmf_error(session.client.get(session.path_of(created["id"])), 404)


# -- errors ------------------------------------------------------------------------------------------

@check("unknown-id", "GET, PATCH and DELETE of an unknown id: 404 with a TMF Error body")
def unknown_id(session: Session) -> None:
    path = session.path_of(f"conformance-unknown-{uuid.uuid4()}")
    session.expect_tmf_error(session.client.get(path), 404)
    session.expect_tmf_error(session.client.patch(path, {"description": "x"}, MERGE_PATCH), 404)
    session.expect_tmf_error(session.client.delete(path), 404)


@check("invalid-create", "invalid POST bodies: 400 with a TMF Error body, and nothing is created")
def invalid_create(session: Session) -> None:
    valid = session.problem_body()
    bodies: list[tuple[str, object]] = [
        (f"without {name}", {k: v for k, v in valid.items() if k != name})
        for name in schema.required("ServiceProblem_Create")
    ]
    bodies += [
        ("priority as text", {**valid, "priority": "urgent"}),
        ("originatorParty as text", {**valid, "originatorParty": "customer"}),
        ("category as a number", {**valid, "category": 7}),
        ("a JSON array", [valid]),
    ]
    for what, body in bodies:
        exchange = session.client.post(RESOURCE, body)
        if exchange.status == 201 and isinstance(exchange.json, dict) and exchange.json.get("id"):
            session.created.append(str(exchange.json["id"]))
        session.expect(exchange.status == 400, f"a body {what}: expected 400, got {got(exchange)}", exchange)
        session.expect_tmf_error(exchange, 400)
    malformed = session.client.request("POST", RESOURCE, content='{"category": "conformance",',
                                       content_type="application/json")
    session.expect_tmf_error(malformed, 400)
    listed = session.client.get(RESOURCE, category=valid["category"])
    session.expect_ids(listed, [], what="reports created by the refused bodies")


@check("invalid-patch", "an invalid PATCH: 400 with a TMF Error body, and the resource is unchanged")
def invalid_patch(session: Session) -> None:
    created = session.create(session.problem_body())
    path = session.path_of(created["id"])
    before = session.expect_json(session.client.get(path), dict)
    for what, body in (("priority as text", {"priority": "urgent"}), ("a JSON array", [1, 2])):
        exchange = session.client.patch(path, body, MERGE_PATCH)
        session.expect(exchange.status == 400, f"a merge patch with {what}: expected 400, got {got(exchange)}",
                       exchange)
        session.expect_tmf_error(exchange, 400)
    after_exchange = session.client.get(path)
    session.expect_status(after_exchange, 200)
    after = session.expect_json(after_exchange, dict)
    session.expect(after == before, "the refused patches changed the resource", after_exchange)


# -- hub ---------------------------------------------------------------------------------------------

@check("hub", "hub: subscribe, a create is notified to the kit's listener, unsubscribe stops notifications")
def hub(session: Session) -> None:
    options = session.options
    if options.skip_hub:
        raise CheckSkipped("turned off with --skip-hub")
    with NotificationListener(options.callback_host, options.callback_port, options.callback_url) as listener:
        subscribed = session.client.post("/hub", {"callback": listener.public_url})
        session.expect_status(subscribed, 201)
        subscription = session.expect_json(subscribed, dict)
        session.expect(bool(subscription.get("id")), "the 201 body of POST /hub has no id", subscribed)
        session.expect(subscription.get("callback") == listener.public_url,
                       f"the subscription's callback is {subscription.get('callback')!r}, not "
                       f"{listener.public_url!r}", subscribed)
        unsubscribed = False
        try:
            created = session.create(session.problem_body("notified"))
            notification = listener.wait_for(lambda n: _about(n, "ServiceProblemCreateEvent", created["id"]),
                                             options.event_timeout)
            session.expect(notification is not None,
                           f"no ServiceProblemCreateEvent for {created['id']} reached {listener.public_url} within "
                           f"{options.event_timeout:g} s", subscribed)
            session.expect_valid("ServiceProblemCreateEvent", notification, subscribed, "the notification")
            unsubscribe = session.client.delete(f"/hub/{subscription['id']}")
            session.expect_status(unsubscribe, 204)
            unsubscribed = True
            later = session.create(session.problem_body("after-unsubscribe"))
            stray = listener.wait_for(lambda n: _about(n, "ServiceProblemCreateEvent", later["id"]),
                                      options.quiet_period)
            session.expect(stray is None, f"a ServiceProblemCreateEvent for {later['id']} arrived after the "
                                          "subscription was deleted", unsubscribe)
        finally:
            if not unsubscribed:
                session.client.delete(f"/hub/{subscription['id']}")


def _about(notification: dict, event_type: str, problem_id: str) -> bool:
    event = notification.get("event")
    problem = event.get("serviceProblem") if isinstance(event, dict) else None
    return notification.get("eventType") == event_type and isinstance(problem, dict) and problem.get("id") == problem_id


# -- authentication (runs only when the kit authenticates: --token, or --token-url and the client's credentials) --

def _declares_security(document) -> bool:
    if not isinstance(document, dict):
        return False
    operations = [op for item in (document.get("paths") or {}).values() if isinstance(item, dict)
                  for op in item.values() if isinstance(op, dict)]
    return bool(document.get("security")) or any(op.get("security") for op in operations)


def anonymous_refused(session: Session) -> None:
    served = session.client.get("/openapi.json")
    if served.status != 200 or not _declares_security(served.json):
        raise CheckSkipped("the server publishes no OpenAPI document at BASE_URL/openapi.json that declares security")
    for method, body in (("GET", None), ("POST", session.problem_body("anonymous"))):
        exchange = session.client.request(method, RESOURCE, json_body=body, anonymous=True)
        if exchange.status == 201 and isinstance(exchange.json, dict) and exchange.json.get("id"):
            session.created.append(str(exchange.json["id"]))
        session.expect_tmf_error(exchange, 401)
        challenge = exchange.header("WWW-Authenticate") or ""
        session.expect(challenge.lower().startswith("bearer"),
                       f"a 401 must carry WWW-Authenticate: Bearer (RFC 6750), got {challenge!r}", exchange)


ANONYMOUS_REFUSED = Check("anonymous-refused", "the server declares security: requests without a token are 401 "
                                               "with WWW-Authenticate: Bearer and a TMF Error", True, anonymous_refused)
