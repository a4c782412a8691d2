"""The check of a changed report against the report it was changed from (`ServiceProblemRules.check_result` with
`stored`, what the intake's appends use) refuses exactly what the whole check refuses, with the same error: both
are run on the same changes of a stored report, valid ones and bad ones (appended entries, entries changed in
place, dropped, moved, attributes replaced or removed), made by hand and at random from a fixed seed."""
from __future__ import annotations

import copy
import random

import pytest

from tests.support.documents import paths
from tmf_server.app import load_spec
from tmf_server.errors import BadRequest
from tmf_server.problems.repository import problem_catalog
from tmf_server.problems.rules import ServiceProblemRules

NOW = "2026-11-30T08:04:22.181Z"


def _event(i: int) -> dict:
    return {"id": f"troubleTicket:evt-{i}", "href": f"http://tmf.test/intake/record/troubleTicket%3Aevt-{i}",
            "eventType": "TroubleTicketCreateEvent", "eventTime": NOW, "@referredType": "Event"}


def _tracking(i: int) -> dict:
    return {"id": f"trk-{i}", "description": f"intake: appended TroubleTicketCreateEvent evt-{i} (troubleTicket)",
            "time": NOW, "systemId": "tmf656-qos-server", "@type": "TrackingRecord"}


def _ticket(i: int) -> dict:
    return {"id": f"TT-{i}", "href": f"https://crm.example.com/tmf-api/troubleTicket/v4/troubleTicket/TT-{i}",
            "name": "Slow broadband in the evening", "@referredType": "TroubleTicket"}


def stored_report() -> dict:
    """A report as the intake leaves it after a few appended notifications (valid: the test checks it)."""
    return {
        "id": "p1", "href": "http://tmf.test/api/serviceProblem/p1", "@type": "ServiceProblem",
        "category": "customer.qosDegradation", "priority": 6, "description": "Throughput far below the contract",
        "name": "Slow broadband in the evening", "reason": "throughput degradation", "status": "acknowledged",
        "creationDate": NOW, "lastUpdate": NOW, "statusChangeDate": NOW, "originatingSystem": "crm",
        "impactImportanceFactor": "50",
        "impactPattern": {"description": "major impact on downlinkThroughput for a bronze customer",
                          "characteristic": [{"name": "slaTier", "value": "bronze"}]},
        "originatorParty": {"id": "K1", "role": "originator", "@referredType": "Individual"},
        "responsibleParty": {"id": "qos-management", "name": "Customer QoS/SLA Management", "role": "responsible",
                             "@referredType": "Organization"},
        "firstAlert": {"id": "TT-0", "name": "Slow broadband in the evening", "role": "ticket",
                       "@referredType": "TroubleTicket"},
        "relatedParty": [{"id": "K1", "role": "customer", "@referredType": "Individual"}],
        "relatedEntity": [{"id": "prod-1", "role": "impactedProduct", "@referredType": "Product", "name": "Fibre"}],
        "affectedService": [{"id": "svc-1", "@referredType": "Service"}], "affectedNumberOfServices": 1,
        "troubleTicket": [_ticket(i) for i in range(4)],
        "externalIdentifier": [{"id": f"TT-{i}", "externalIdentifierType": "TroubleTicket", "owner": "crm"}
                               for i in range(4)],
        "characteristic": [{"name": "metric", "value": "downlinkThroughput", "valueType": "string"},
                           {"name": "observedValue", "value": "120", "valueType": "string"},
                           {"name": "degradationStart", "value": "2026-11-20T18:00:00.000Z"},
                           {"name": "relatedEventCount", "value": 4, "valueType": "integer"}],
        "relatedEvent": [_event(i) for i in range(4)],
        "trackingRecord": [_tracking(i) for i in range(3)],
        "note": [{"text": "customer called twice", "date": NOW, "author": "agent-7"}],
    }


@pytest.fixture(scope="module")
def rules() -> ServiceProblemRules:
    spec = load_spec()
    return ServiceProblemRules(spec, problem_catalog(spec))


def outcome(check, representation: dict, stored: dict | None = None):
    """None when the check passes, else the refusal (code, message, status)."""
    try:
        check(representation, stored=stored)
    except BadRequest as error:
        return error.code, error.message, error.status
    return None


def assert_same(rules: ServiceProblemRules, stored: dict, changed: dict):
    whole = outcome(rules.check_result, changed)
    assert outcome(rules.check_result, changed, stored) == whole
    return whole


def appended(report: dict, i: int) -> dict:
    changed = copy.deepcopy(report)
    changed["troubleTicket"].append(_ticket(i))
    changed["relatedEvent"].append(_event(i))
    changed["trackingRecord"].append(_tracking(i))
    changed["characteristic"][3]["value"] = i + 1
    return changed


def test_the_stored_report_is_valid_and_an_append_passes_both_checks(rules):
    stored = stored_report()
    assert outcome(rules.check_result, stored) is None
    assert assert_same(rules, stored, appended(stored, 4)) is None


# Each: (what it does, the change of a copy of the stored report). Every one refused by the whole check but two.
HAND_MADE = [
    ("an appended ticket without its id", lambda r: r["troubleTicket"].append({"name": "no id"})),
    ("an appended event whose id is a number", lambda r: r["relatedEvent"].append({**_event(9), "id": 9})),
    ("an appended tracking record with a bad date",
     lambda r: r["trackingRecord"].append({**_tracking(9), "time": "yesterday"})),
    ("an appended ticket whose href is no URI", lambda r: r["troubleTicket"].append({**_ticket(9), "href": "a b"})),
    ("an entry changed in place", lambda r: r["relatedParty"][0].update(id=7)),
    ("an entry in the middle dropped and a bad one appended",
     lambda r: (r["relatedEvent"].pop(1), r["relatedEvent"].append({"href": "x"}))),
    ("an appended entry with a name MongoDB reads as an operator",
     lambda r: r["externalIdentifier"].append({"id": "x", "$where": "1"})),
    ("a NaN in an appended characteristic",
     lambda r: r["characteristic"].append({"name": "observedValue", "value": float("nan")})),
    ("a priority that is not an integer", lambda r: r.update(priority="high")),
    ("an impact pattern that is not an object", lambda r: r.update(impactPattern=["x"])),
    ("a status not in the enumeration", lambda r: r.update(status="sleeping")),
    ("a mandatory attribute removed", lambda r: r.pop("description")),
    ("an attribute ServiceProblem does not have", lambda r: r.update(colour="red")),
    ("a bad @type", lambda r: r.update({"@type": "Banana"})),
    ("a list replaced by an object", lambda r: r.update(troubleTicket={"id": "TT-9"})),
    ("entries moved (valid)", lambda r: r["troubleTicket"].reverse()),
    ("an optional attribute removed (valid)", lambda r: r.pop("note")),
]


@pytest.mark.parametrize("what, change", HAND_MADE, ids=[what for what, _ in HAND_MADE])
def test_a_change_is_refused_by_both_checks_or_by_neither_with_the_same_error(rules, what, change):
    stored = stored_report()
    changed = appended(stored, 4)
    change(changed)
    whole = assert_same(rules, stored, changed)
    assert (whole is None) == what.endswith("(valid)"), whole


_VALUES = [None, 0, 7, -1, 2.5, True, "", "x", "not a uri", "http://h/x", "2026-11-30T08:04:22.181Z", "yesterday",
           [], ["x"], [{}], {}, {"id": "a"}, {"$bad": 1}, {"a.b": 1}, float("nan"), 2**70, "\x00"]


def _mutate(report: dict, rng: random.Random) -> None:
    """One random change: a value set, an entry appended (a copy of one, perhaps changed), a key or entry removed."""
    path = rng.choice([p for p in paths(report) if p])
    parent = report
    for step in path[:-1]:
        parent = parent[step]
    kind = rng.random()
    if kind < 0.45:
        parent[path[-1]] = copy.deepcopy(rng.choice(_VALUES))
    elif kind < 0.8:
        lists = [p for p in paths(report) if p and isinstance(_at(report, p), list) and _at(report, p)]
        target = _at(report, rng.choice(lists))
        entry = copy.deepcopy(rng.choice(target))
        if isinstance(entry, dict) and entry and rng.random() < 0.6:
            entry[rng.choice(list(entry))] = copy.deepcopy(rng.choice(_VALUES))
        target.append(entry)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])


def _at(node, path):
    for step in path:
        node = node[step]
    return node


def test_random_changes_get_the_same_answer_from_both_checks(rules):
    rng = random.Random(656)
    answers = {"valid": 0, "refused": 0}
    for i in range(1500):
        stored = stored_report()
        changed = appended(stored, 10 + i) if rng.random() < 0.5 else copy.deepcopy(stored)
        for _ in range(rng.randint(1, 3)):
            _mutate(changed, rng)
        answers["refused" if assert_same(rules, stored, changed) else "valid"] += 1
    assert min(answers.values()) > 200, answers  # both kinds well represented


def test_what_did_not_change_is_not_checked_again(rules):
    # Only a report stored without the checks could be like this one (an entry without its mandatory id): the
    # change check takes what was stored as checked and looks only at the appended entries.
    stored = stored_report()
    stored["troubleTicket"][0].pop("id")
    changed = appended(stored, 4)
    assert outcome(rules.check_result, changed) is not None
    assert outcome(rules.check_result, changed, stored) is None
    changed["relatedEvent"].append({"href": "no id"})
    assert outcome(rules.check_result, changed, stored) == outcome(rules.check_result, changed)


@pytest.mark.parametrize("name, value", [("priority", True), ("priority", 1.0), ("priority", False)])
def test_a_value_that_changes_only_in_type_is_checked_again(rules, name, value):
    """`==` finds True and 1, 1.0 and 1 equal: a change of type alone is a change, checked as the whole check does."""
    stored = stored_report()
    stored[name] = int(value)
    changed = copy.deepcopy(stored)
    changed[name] = value
    whole = outcome(rules.check_result, changed)
    assert outcome(rules.check_result, changed, stored) == whole
    if isinstance(value, bool):
        assert whole is not None and whole[0] == "invalidValue"  # a boolean is no integer


# Date-times in other forms than the stored one (UTC, milliseconds, Z), and values that are no date at all.
_RESTATED = ["2026-11-30T09:04:22.181+01:00", "2026-11-30T08:04:22Z", "2026-11-30t08:04:22.181z",
             "2026-11-30T08:04:22.1812345Z", "yesterday", 7]


def _restate_a_date(report: dict, rng: random.Random) -> None:
    """An appended entry, or an attribute, with a date-time written in another form."""
    events = report.setdefault("relatedEvent", [])
    if rng.random() < 0.5 and isinstance(events, list):
        events.append({**_event(rng.randint(50, 99)), "eventTime": rng.choice(_RESTATED)})
    else:
        report[rng.choice(["creationDate", "lastUpdate"])] = rng.choice(_RESTATED)


def test_dates_normalised_where_the_report_differs_from_the_stored_one_as_everywhere(rules):
    """normalise_dates with `stored` (what an update of a stored report uses) leaves the report as normalising
    every date would, whatever changed: a stored report's dates are in the stored form already."""
    rng = random.Random(4711)
    restated = 0
    for i in range(1500):
        stored = stored_report()
        changed = appended(stored, 10 + i) if rng.random() < 0.5 else copy.deepcopy(stored)
        for _ in range(rng.randint(0, 2)):
            _mutate(changed, rng)
        if rng.random() < 0.6:
            _restate_a_date(changed, rng)
        before = copy.deepcopy(changed)
        everywhere = copy.deepcopy(changed)
        try:
            rules.normalise_dates(everywhere)
        except BadRequest as error:  # a date outside the years 1 to 9999 in UTC: refused either way, alike
            with pytest.raises(BadRequest) as refused:
                rules.normalise_dates(changed, stored=stored)
            assert refused.value.message == error.message
            continue
        rules.normalise_dates(changed, stored=stored)
        assert changed == everywhere
        restated += changed != before  # some date was rewritten
    assert restated > 300, restated
