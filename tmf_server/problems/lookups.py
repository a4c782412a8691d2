"""Ids by which the intake finds reports, kept as scalars so that each search is index-served on both engines.

The intake looks reports up by a customer, a trouble ticket, an alarm, a service, a resource or the cause a parent
was made for: ids held in arrays of sub-documents. The embedded engine cannot index inside arrays (it evaluates an
`$elemMatch` by reading every document), so each stored report also carries, per kind, one indexed scalar
(`_customerKey`): its first id prefixed with "=" when that is the report's only id of the kind, with "+" when it
names more (the prefix also keeps the engine from reading the key as a number or a date). "A report naming id X" is
then the union of two searches of that one index, exact on every engine: the key "=X", and among the flagged
reports (the range of keys starting with "+"), those with an element X (`search_forms`). Parents and reports with
several customers or tickets are those few. (Earlier forms flagged them in a second indexed field, `_customerMore`;
one index less per kind costs every write less.)

Lists count their matches with the same keys (`counting_forms`): a filter on one party's or service's id (the
`relatedParty.id=C7` of a CRM polling its customer's reports) is counted as two index-served counts, where the
embedded engine's count command would read every document in Python to evaluate the `$elemMatch`.
"""
from __future__ import annotations

GROUPED_BY = "groupedBy"  # characteristic of a parent report made by the intake: the common cause's key

# kind -> (array attribute, what an entry must also match, the attribute holding the id)
LOOKUPS = {
    "party": ("relatedParty", {}, "id"),
    "customer": ("relatedParty", {"role": "customer"}, "id"),
    "ticket": ("troubleTicket", {}, "id"),
    "alarm": ("underlyingAlarm", {}, "id"),
    "service": ("affectedService", {}, "id"),
    "resource": ("affectedResource", {}, "id"),
    "groupedBy": ("characteristic", {"name": GROUPED_BY}, "value"),
}


ONLY, FIRST_OF_MORE = "=", "+"  # the key's prefix: the report's only id of the kind, or the first of several
# Every key of a report naming more than one id of its kind: from "+" up to the next character.
_FLAGGED = {"$gte": FIRST_OF_MORE, "$lt": chr(ord(FIRST_OF_MORE) + 1)}


def key_field(kind: str) -> str:
    return f"_{kind}Key"


def retired_flag_field(kind: str) -> str:
    """The flag that earlier stored forms kept beside the key (`_customerMore: true`), dropped when rewritten."""
    return f"_{kind}More"


def key_value(value: str) -> str:
    """The key of a report whose only id of the kind is `value`."""
    return ONLY + value


def ids_of(representation: dict, kind: str) -> list[str]:
    """The distinct ids of one kind that a report names, in their order."""
    array, match, attribute = LOOKUPS[kind]
    found: list[str] = []
    for entry in representation.get(array) or ():
        if (isinstance(entry, dict) and all(entry.get(k) == v for k, v in match.items())
                and isinstance(entry.get(attribute), str) and entry[attribute] not in found):
            found.append(entry[attribute])
    return found


def with_lookup_keys(document: dict) -> dict:
    """`document` with the scalar key of each kind it names (stale keys and flags dropped)."""
    for kind in LOOKUPS:
        ids = ids_of(document, kind)
        document.pop(key_field(kind), None)
        document.pop(retired_flag_field(kind), None)
        if ids:
            document[key_field(kind)] = (ONLY if len(ids) == 1 else FIRST_OF_MORE) + ids[0]
    return document


def search_forms(kind: str, value: str, element_condition) -> tuple[dict, dict]:
    """The two conditions whose union finds the reports naming `value` among their ids of `kind`: the reports
    whose only id it is, and the flagged reports with an element `value`. `element_condition(value)` is the
    engine-exact equality."""
    array, match, attribute = LOOKUPS[kind]
    element = {**{k: element_condition(v) for k, v in match.items()}, attribute: element_condition(value)}
    return ({key_field(kind): {"$eq": key_value(value)}},
            {key_field(kind): dict(_FLAGGED), array: {"$elemMatch": element}})


def first_id_forms(kind: str, value: str) -> tuple[dict, dict]:
    """The two conditions whose union finds the reports whose first id of `kind` is `value` (their only one, or
    the first of several): two equalities on the one index, without reading the flagged reports."""
    return ({key_field(kind): {"$eq": key_value(value)}}, {key_field(kind): {"$eq": FIRST_OF_MORE + value}})


def index_fields() -> list[str]:
    return [key_field(kind) for kind in LOOKUPS]


# Single-id `$elemMatch` conditions that lists count through the lookup keys: array attribute -> kind.
_COUNTED_BY_KEY = {"relatedParty": "party", "affectedService": "service"}


def one_id_condition(filter_: dict) -> tuple[str, str, str, dict] | None:
    """(array attribute, kind, id, the other conditions) when `filter_` requires an element with one id of a party
    or service array (`{"relatedParty": {"$elemMatch": {"id": "C7"}}}`, beside other fields); else None."""
    for array, kind in _COUNTED_BY_KEY.items():
        condition = filter_.get(array)
        if not (isinstance(condition, dict) and list(condition) == ["$elemMatch"]):
            continue
        element = condition["$elemMatch"]
        value = element.get("id") if isinstance(element, dict) and list(element) == ["id"] else None
        if not isinstance(value, str):
            continue
        rest = {k: v for k, v in filter_.items() if k != array}
        if key_field(kind) in rest:
            continue
        return array, kind, value, rest
    return None


def counting_forms(filter_: dict) -> tuple[dict, dict] | None:
    """Two disjoint filters whose counts add up to the count of `filter_`, each index-served, when `filter_`
    requires an element with one id of a party or service array (one_id_condition); else None."""
    found = one_id_condition(filter_)
    if found is None:
        return None
    array, kind, value, rest = found
    return {**rest, key_field(kind): {"$eq": key_value(value)}}, {**filter_, key_field(kind): dict(_FLAGGED)}


def among_the_flagged(filter_: dict, kind: str, value: str) -> dict:
    """`filter_` (which requires an element with id `value`) restricted to the flagged reports whose first id of
    `kind` is another; with all the reports whose first id is `value`, every match once."""
    return {**filter_, key_field(kind): {**_FLAGGED, "$ne": FIRST_OF_MORE + value}}
