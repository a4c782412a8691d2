"""The lookup keys of stored reports (problems/lookups.py): what is derived, and which filters are counted by key.
Their agreement with MongoDB semantics is checked on both engines by tests/storage/test_query_differential.py."""
from tmf_server.problems.lookups import among_the_flagged, counting_forms, ids_of, with_lookup_keys

REPORT = {"relatedParty": [{"id": "C1", "role": "customer"}, {"id": "agent7", "role": "reporter"},
                           {"id": "C1", "role": "customer"}],
          "affectedService": [{"id": "S1"}], "troubleTicket": [{"id": "T1"}, {"id": "T2"}],
          "characteristic": [{"name": "groupedBy", "value": "alarm:A1"}, {"name": "metric", "value": "latency"}]}


def test_first_id_prefixed_by_whether_there_are_more():
    document = with_lookup_keys({**REPORT, "_partyKey": "=stale", "_alarmKey": "=stale", "_ticketMore": True})
    assert ids_of(document, "party") == ["C1", "agent7"] and ids_of(document, "customer") == ["C1"]
    assert document["_partyKey"] == "+C1"  # two parties: the first, flagged
    assert document["_customerKey"] == "=C1"  # one distinct customer
    assert document["_ticketKey"] == "+T1"
    assert document["_groupedByKey"] == "=alarm:A1" and document["_serviceKey"] == "=S1"
    assert "_alarmKey" not in document  # no alarm any more: the stale key is dropped
    assert "_ticketMore" not in document  # the flag of earlier stored forms is dropped
    assert not any(name.endswith("More") for name in document)


def test_a_single_party_or_service_id_is_counted_by_key():
    status = {"status": {"$eq": "held"}}
    first, more = counting_forms({"relatedParty": {"$elemMatch": {"id": "C7"}}, **status})
    assert first == {**status, "_partyKey": {"$eq": "=C7"}}
    assert more == {**status, "_partyKey": {"$gte": "+", "$lt": ","}, "relatedParty": {"$elemMatch": {"id": "C7"}}}
    assert counting_forms({"affectedService": {"$elemMatch": {"id": "S1"}}})[0] == {"_serviceKey": {"$eq": "=S1"}}
    assert among_the_flagged({"relatedParty": {"$elemMatch": {"id": "C7"}}}, "party", "C7") == \
        {"relatedParty": {"$elemMatch": {"id": "C7"}}, "_partyKey": {"$gte": "+", "$lt": ",", "$ne": "+C7"}}


def test_other_conditions_are_counted_as_they_are():
    for filter_ in ({"relatedParty": {"$elemMatch": {"id": {"$eq": "4701", "$type": "string"}}}},
                    {"relatedParty": {"$elemMatch": {"id": "C7", "role": "customer"}}},
                    {"relatedParty": {"$elemMatch": {"role": "customer"}}},
                    {"$or": [{"relatedParty": {"$elemMatch": {"id": "C7"}}}]},
                    {"status": {"$eq": "held"}}):
        assert counting_forms(filter_) is None
