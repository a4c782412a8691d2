"""Differential test: every query shape the TMF630 translator emits answers alike on the embedded engine
(nx-27017, with the server's real indexes) and on mongomock (the oracle of MongoDB query semantics).

Each shape is a raw TMF630 query string (plus sort, offset, limit, fields) that goes through the real
translator, `parse_list_query`, and then through the server's collection reads (`CollectionReader`, what the list operation uses) on both engines.
Compared for every shape: the count, the set of ids, the ids in sort order over the whole result, and the
requested page (ids in order and the documents themselves, with the requested projection).

Each shape also says what the oracle must find ("some" by default: 0 < matches < corpus size), so that the
suite cannot pass on queries that match nothing or everything; `test_the_suite_is_not_vacuous` checks that
most shapes are of the "some" kind.
"""
from __future__ import annotations

import copy
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import mongomock
import pymongo
import pytest

from tmf_server.app import load_spec
from tmf_server.dates import canonical_datetime
from tmf_server.events.outbox import Outbox
from tmf_server.intake.repository import INTAKE_EVENTS, IntakeRepository
from tmf_server.intake.repository import ensure_indexes as ensure_intake_indexes
from tmf_server.problems.lookups import ids_of
from tmf_server.problems.repository import (ServiceProblemRepository, ensure_indexes, problem_catalog,
                                            with_derived_fields)
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.listing import parse_list_query
from tmf_server.store.database import SERVICE_PROBLEMS
from tmf_server.store.embedded import EmbeddedEngine
from tmf_server.store.reader import CollectionReader

# --------------------------------------------------------------------------------------------------
# The corpus: stored ServiceProblem documents shaped as the server stores them (TMF id in _id, dates as
# canonical UTC strings with milliseconds, internal _version), generated from a fixed seed.
# --------------------------------------------------------------------------------------------------

CORPUS_SIZE = 480
CORPUS_SEED = 656_630

STATUSES = ("acknowledged", "rejected", "pending", "held", "inProgress", "resolved", "cancelled", "closed")
CATEGORIES = ("network", "service", "billing", "hardware", "Network")  # "Network": case matters to regex
REASONS = ("QoS degradation", "Outage", "Packet loss", "Latency above SLA", "Customer complaint")
ROLES = ("customer", "reporter", "technician", "Customer")
CHARACTERISTIC_NAMES = ("bandwidth", "latency", "jitter", "region", "packetLoss")
DATE_LIKE_TEXT = ("2025-03-01 fibre cut", "2025-03-01", "12/03/2025 outage", "2025-03-01T10:00:00 maintenance")
IMPORTANCE = ("1", "2", "3", "10", "high")  # a string attribute: "10" < "2" < "high" as strings
HREF_BASE = "http://localhost:8080/tmf-api/serviceProblemManagement/v4/serviceProblem"
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN_SECONDS = int(timedelta(days=540).total_seconds())  # creation dates 2025-01-01 .. 2026-06-25
# A few instants shared by many documents, so that sorts on dates have ties that the _id tiebreak orders.
SHARED_INSTANTS = tuple(EPOCH + timedelta(days=d, hours=9) for d in (40, 200, 365, 400))


def _when(rng: random.Random, start: datetime, span_seconds: int) -> datetime:
    return start + timedelta(seconds=rng.randrange(span_seconds), milliseconds=rng.randrange(1000))


def _characteristic(rng: random.Random) -> dict:
    name = rng.choice(CHARACTERISTIC_NAMES)
    # `value` is of type Any: clients store numbers and strings (digits too), so both are in the corpus.
    value = rng.choice((rng.randint(1, 200), round(rng.uniform(0, 50), 2), f"{rng.randint(1, 200)}",
                        rng.choice(("eu-west", "us-east", "apac")), rng.choice(("high", "low")),
                        rng.choice(("2025-11-02T01:00:00Z", "2025-11-02"))))
    item = {"name": name, "value": value}
    if rng.random() < 0.3:
        item["valueType"] = "number" if isinstance(value, (int, float)) else "string"
    if rng.random() < 0.25:
        item["characteristicRelationship"] = [
            {"id": f"CR{rng.randint(1, 8)}", "relationshipType": rng.choice(("dependsOn", "partOf"))}
            for _ in range(rng.randint(1, 2))]
    return item


def make_document(rng: random.Random, index: int) -> dict:
    problem_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    status = rng.choice(STATUSES)
    if rng.random() < 0.14:
        # A shared instant, or a few milliseconds after it: the same second, a different time.
        created = rng.choice(SHARED_INSTANTS) + timedelta(milliseconds=rng.choice((0, 0, 0, 1, 500, 999)))
    else:
        created = _when(rng, EPOCH, SPAN_SECONDS)
    status_changed = created + timedelta(seconds=rng.randrange(0, 20 * 86400))
    updated = status_changed + timedelta(seconds=rng.randrange(0, 5 * 86400))
    document = {
        "_id": problem_id,
        "href": f"{HREF_BASE}/{problem_id}",
        "@type": "ServiceProblem",
        "status": status,
        "priority": rng.randint(1, 10),
        "category": rng.choice(CATEGORIES),
        "description": f"{rng.choice(('Slow', 'No', 'Intermittent', 'Degraded'))} "
                       f"{rng.choice(('throughput', 'connectivity', 'voice quality', 'video'))} at site {index % 37}",
        "reason": rng.choice(REASONS),
        "creationDate": canonical_datetime(created),
        "lastUpdate": canonical_datetime(updated),
        "statusChangeDate": canonical_datetime(status_changed),
        "originatorParty": {"id": f"P{rng.randint(1, 12)}",
                            "@referredType": rng.choice(("Individual", "Organization")),
                            "name": rng.choice(("Alice", "Bob", "Carol", "Dan"))},
        "impactImportanceFactor": rng.choice(IMPORTANCE),
    }
    if rng.random() < 0.7:  # optional: absent from about 30% of the documents
        document["name"] = f"{rng.choice(('Outage', 'Degradation', 'Alarm storm'))} {rng.randint(1, 50)}"
        if rng.random() < 0.1:  # free text that starts like a date
            document["name"] = rng.choice(DATE_LIKE_TEXT)
    if status in ("resolved", "closed") or rng.random() < 0.05:
        document["resolutionDate"] = canonical_datetime(updated)
    # Arrays of sub-documents: absent, empty, or 1..3 elements (ids from small pools, so they repeat).
    shape = rng.random()
    if shape < 0.15:
        pass
    elif shape < 0.25:
        document["relatedParty"] = []
    else:
        document["relatedParty"] = [{"id": f"C{rng.randint(1, 20)}", "role": rng.choice(ROLES),
                                     "@referredType": rng.choice(("Individual", "Organization"))}
                                    for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.85:
        document["affectedService"] = [{"id": f"S{rng.randint(1, 30)}", "name": f"svc-{rng.randint(1, 30)}"}
                                       for _ in range(rng.randint(0, 3))]
    document["affectedNumberOfServices"] = (len(document.get("affectedService", []))
                                            if rng.random() < 0.7 else rng.randint(0, 12))
    if rng.random() < 0.75:
        notes = []
        for _ in range(rng.randint(0, 3)):
            note = {"text": rng.choice(("called customer", "waiting for field team", "fixed")),
                    "author": rng.choice(("ops", "noc", "field"))}
            if rng.random() < 0.7:  # some notes have no date
                note["date"] = canonical_datetime(_when(rng, created, 30 * 86400))
            notes.append(note)
        document["note"] = notes
    if rng.random() < 0.8:
        document["characteristic"] = [_characteristic(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.3:  # an object holding an array of objects
        document["impactPattern"] = {"description": "pattern",
                                     "characteristic": [_characteristic(rng) for _ in range(rng.randint(1, 2))]}
    if rng.random() < 0.3:  # an array of objects holding an object
        document["underlyingAlarm"] = [
            {"id": f"A{rng.randint(1, 40)}",
             **({"changeRequest": {"id": f"CHG{rng.randint(1, 6)}", "name": "change"}} if rng.random() < 0.6 else {})}
            for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.25:  # an array of objects holding an array of objects
        document["trackingRecord"] = [
            {"id": f"T{rng.randint(1, 99)}", "description": "escalated",
             "characteristic": [_characteristic(rng) for _ in range(rng.randint(0, 2))]}
            for _ in range(rng.randint(1, 2))]
    document["_version"] = rng.randint(1, 6)
    return document


def make_corpus(size: int = CORPUS_SIZE, seed: int = CORPUS_SEED) -> list[dict]:
    rng = random.Random(seed)
    corpus = [make_document(rng, index) for index in range(size)]
    # Ids made only of digits (numeric customer and alarm ids are common): every 7th party gets one.
    for index, document in enumerate(corpus):
        if index % 7 == 0 and document.get("relatedParty"):
            document["relatedParty"][0]["id"] = f"470{index % 3}"
    return corpus


CORPUS = make_corpus()

# Values taken from the corpus, named in the shapes as {placeholders} so that test ids stay readable.
_NOTE_DATES = [n["date"] for d in CORPUS for n in d.get("note", ()) if "date" in n]
_NAMED = [d for d in CORPUS if "name" in d]
SAMPLES = {
    "ID1": CORPUS[3]["_id"], "ID2": CORPUS[77]["_id"], "ID3": CORPUS[200]["_id"],
    "HREF": CORPUS[5]["href"],
    "NAME1": _NAMED[0]["name"], "NAME2": _NAMED[9]["name"],
    "SHARED1": canonical_datetime(SHARED_INSTANTS[1]), "SHARED2": canonical_datetime(SHARED_INSTANTS[2]),
    # The same instant as SHARED1 written with an offset: the translator normalises it to UTC.
    "SHARED1_OFFSET": (SHARED_INSTANTS[1] + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    "NOTE_DATE": _NOTE_DATES[10],
    # Instants inside the second of SHARED1, where stored creation dates differ only by their milliseconds.
    "SHARED1_1MS": canonical_datetime(SHARED_INSTANTS[1] + timedelta(milliseconds=1)),
    "SHARED1_500MS": canonical_datetime(SHARED_INSTANTS[1] + timedelta(milliseconds=500)),
    # A stored lastUpdate, as a client polling for changes since the last problem it saw would send it.
    "LAST_UPDATE": sorted(d["lastUpdate"] for d in CORPUS)[CORPUS_SIZE // 2],
    "RESOLVED": next(d["resolutionDate"] for d in CORPUS if "resolutionDate" in d),
    # A characteristic value stored as a string of digits (other documents store numbers).
    "DIGITS": next(c["value"] for d in CORPUS for c in d.get("characteristic", ())
                   if isinstance(c["value"], str) and c["value"].isdigit()),
}

# --------------------------------------------------------------------------------------------------
# The query shapes.
# --------------------------------------------------------------------------------------------------

SOME, NONE, ALL = "some", "none", "all"


@dataclass(frozen=True)
class Shape:
    query: str  # readable TMF630 filter terms joined by '&'; values are URL-encoded before parsing
    sort: str | None = None
    offset: int | None = None
    limit: int | None = None
    fields: str | None = None
    expect: str = SOME  # what the oracle must find: SOME (0 < n < corpus), NONE (n == 0) or ALL

    @property
    def id(self) -> str:
        parts = [self.query or "(no filter)"]
        if self.sort is not None:
            parts.append(f"sort={self.sort}")
        if self.offset is not None:
            parts.append(f"offset={self.offset}")
        if self.limit is not None:
            parts.append(f"limit={self.limit}")
        if self.fields is not None:
            parts.append(f"fields={self.fields}")
        return " ".join(parts)

    def raw_query(self) -> str:
        """The query string as a client sends it: each value percent-encoded (commas kept as separators)."""
        items = []
        for item in self.query.format(**SAMPLES).split("&") if self.query else ():
            cut = next(i for i, ch in enumerate(item) if ch in "=!<>")
            symbol = item[cut:cut + 2] if item[cut:cut + 2] in ("!=", ">=", "<=") else item[cut]
            items.append(item[:cut] + symbol + quote(item[cut + len(symbol):], safe=","))
        return "&".join(items)


def _suffix_and_symbol(path: str, operator: str, symbol: str, value: str) -> list[Shape]:
    """The same condition written both ways: `path.op=value` and `path<symbol>value`."""
    return [Shape(f"{path}.{operator}={value}"), Shape(f"{path}{symbol}{value}")]


FILTER_SHAPES: list[Shape] = [
    Shape("", expect=ALL),
    # ---- scalar string with an enum: status
    Shape("status=pending"), Shape("status.eq=held"),
    Shape("status!=closed"), Shape("status.ne=closed"),
    Shape("status=pending,held"), Shape("status.eq=resolved,closed,cancelled"),
    Shape("status!=pending,held"), Shape("status.ne=resolved,closed,cancelled"),
    *_suffix_and_symbol("status", "gt", ">", "inProgress"),
    *_suffix_and_symbol("status", "lte", "<=", "held"),
    Shape("status.regex=^(pending|held)$"), Shape("status.regex=ed$"),
    # ---- scalar integer: priority
    Shape("priority=5"), Shape("priority.eq=5"),
    Shape("priority!=5"), Shape("priority.ne=5"),
    Shape("priority=1,2,3"), Shape("priority!=1,2,3"), Shape("priority.ne=9,10"),
    *_suffix_and_symbol("priority", "gt", ">", "7"),
    *_suffix_and_symbol("priority", "gte", ">=", "7"),
    *_suffix_and_symbol("priority", "lt", "<", "3"),
    *_suffix_and_symbol("priority", "lte", "<=", "3"),
    Shape("priority>=3&priority<=6"),
    Shape("priority.gte=-5&priority.lt=+4"),
    Shape("priority>10", expect=NONE), Shape("priority>=1", expect=ALL),
    # MongoDB's $regex matches strings only, never numbers.
    Shape("priority.regex=^1", expect=NONE),
    # ---- scalar string: category, reason, description, impactImportanceFactor, href
    Shape("category=network"), Shape("category=Network"), Shape("category!=network"),
    Shape("category=network,billing"), Shape("category!=network,billing"),
    Shape("category.regex=^net"), Shape("category.regex=(?i)^net"), Shape("category.regex=work$"),
    Shape("category.regex=i"),
    *_suffix_and_symbol("category", "gte", ">=", "network"),
    *_suffix_and_symbol("category", "lt", "<", "network"),
    Shape("reason=QoS degradation"), Shape("reason!=Outage"), Shape("reason=Outage,Packet loss"),
    Shape("description.regex=voice"), Shape(r"description.regex=^Slow .* site 1\d$"),
    Shape("description.regex=(?i)^slow"),
    Shape("impactImportanceFactor=10,high"), Shape("impactImportanceFactor!=1"),
    Shape("impactImportanceFactor>2"),  # a string: "3" and "high" are greater than "2", "10" is not
    Shape("impactImportanceFactor.lte=10"), Shape("impactImportanceFactor.regex=^1"),
    Shape("href={HREF}"), Shape("href.regex=/0[0-9a-f]+-"),
    Shape("@type=ServiceProblem", expect=ALL), Shape("@type!=ServiceProblem", expect=NONE),
    # ---- scalar integer that is sometimes unrelated to the array it describes
    Shape("affectedNumberOfServices=0"), Shape("affectedNumberOfServices>3"),
    Shape("affectedNumberOfServices!=0,1"), Shape("affectedNumberOfServices.lte=2"),
    Shape("affectedNumberOfServices.regex=^1", expect=NONE),
    # ---- optional scalar, absent from about 30% of the documents: name
    Shape("name={NAME1}"), Shape("name={NAME1},{NAME2}"),
    Shape("name!={NAME1}"),  # absent names count as "not equal"
    Shape("name!={NAME1},{NAME2}"),
    Shape("name.ne={NAME2}"),
    Shape("name.regex=^Outage"), Shape("name>=M"), Shape("name.lt=D"),
    # Free text that begins like a date (the embedded engine's date detector looks at the value only).
    Shape("name=2025-03-01 fibre cut"), Shape("name=2025-03-01"), Shape("name=12/03/2025 outage"),
    Shape("name.eq=2025-03-01T10:00:00 maintenance"),
    Shape("name!=2025-03-01 fibre cut"), Shape("name=2025-03-01 fibre cut,{NAME1}"),
    Shape("name!=2025-03-01,12/03/2025 outage"), Shape("name>=2025-03-01 fibre cut"),
    Shape("name.lt=2025-03-01T"), Shape("name.regex=^2025-03-01"), Shape(r"name.regex=\d{{4}}-\d{{2}}-\d{{2}} f"),
    # ---- date-times (canonical strings): creationDate, lastUpdate, statusChangeDate, resolutionDate
    *_suffix_and_symbol("creationDate", "gt", ">", "2026-01-01"),
    *_suffix_and_symbol("creationDate", "gte", ">=", "{SHARED1}"),
    *_suffix_and_symbol("creationDate", "lt", "<", "2025-06-01T00:00:00Z"),
    *_suffix_and_symbol("creationDate", "lte", "<=", "{SHARED2}"),
    Shape("creationDate={SHARED1}"), Shape("creationDate.eq={SHARED1_OFFSET}"),
    Shape("creationDate!={SHARED1}"), Shape("creationDate={SHARED1},{SHARED2}"),
    Shape("creationDate!={SHARED1},{SHARED2}"),
    Shape("creationDate>=2025-06-01&creationDate<2026-01-01"),
    Shape("creationDate.regex=^2025-0[1-3]"),
    # Millisecond boundaries: documents created 0, 1, 500 and 999 ms after a shared whole second.
    Shape("creationDate>{SHARED1}"), Shape("creationDate<{SHARED1}"), Shape("creationDate.gte={SHARED1_1MS}"),
    Shape("creationDate.lt={SHARED1_500MS}"), Shape("creationDate<={SHARED1}"),
    Shape("creationDate={SHARED1_500MS}"), Shape("creationDate!={SHARED1_500MS}"),
    Shape("creationDate={SHARED1_1MS},{SHARED1_500MS}"),
    Shape("creationDate>={SHARED1}&creationDate<{SHARED1_500MS}"),
    Shape("lastUpdate>{LAST_UPDATE}"), Shape("lastUpdate>={LAST_UPDATE}"), Shape("lastUpdate={LAST_UPDATE}"),
    Shape("lastUpdate<2025-03-01"), Shape("statusChangeDate.gte=2026-03-01T12:30:00.5+01:00"),
    Shape("lastUpdate.lte={LAST_UPDATE}"), Shape("lastUpdate={LAST_UPDATE}"), Shape("lastUpdate!={LAST_UPDATE}"),
    Shape("statusChangeDate<2025-01-01T00:00:00.000Z", expect=NONE), Shape("creationDate>1999-12-31", expect=ALL),
    Shape("resolutionDate<2026-01-01"), Shape("resolutionDate>=2025-06-01"),  # absent from most documents
    Shape("resolutionDate!={SHARED1}", expect=ALL), Shape("resolutionDate!={SHARED1},{SHARED2}", expect=ALL),
    Shape("resolutionDate.ne={RESOLVED}"), Shape("resolutionDate={RESOLVED}"),
    # ---- the TMF id, stored in _id
    Shape("id={ID1}"), Shape("id.eq={ID2}"), Shape("id={ID1},{ID2},{ID3}"),
    Shape("id!={ID1}"), Shape("id.ne={ID1},{ID2}"),
    Shape("id>=8"), Shape("id.lt=4"), Shape("id.regex=^a"), Shape("id=no-such-id", expect=NONE),
    Shape("id=2025-01-01", expect=NONE), Shape("id!=2025-01-01", expect=ALL),
    # ---- a path into a sub-document: originatorParty
    Shape("originatorParty.id=P3"), Shape("originatorParty.id.eq=P3"),
    Shape("originatorParty.id!=P3"), Shape("originatorParty.id.ne=P3"),
    Shape("originatorParty.id=P1,P2,P3"), Shape("originatorParty.id!=P1,P2"),
    *_suffix_and_symbol("originatorParty.id", "gt", ">", "P5"),
    *_suffix_and_symbol("originatorParty.id", "lte", "<=", "P11"),
    Shape("originatorParty.id.regex=^P1"),
    Shape("originatorParty.name=Alice"), Shape("originatorParty.@referredType!=Individual"),
    # ---- paths into arrays of sub-documents (also absent or empty arrays): relatedParty
    Shape("relatedParty.id=C7"), Shape("relatedParty.id.eq=C7"),
    Shape("relatedParty.id=C1,C2"), Shape("relatedParty.id.eq=C1,C2,C3,C4"),
    Shape("relatedParty.id!=C7"), Shape("relatedParty.id.ne=C7"),
    Shape("relatedParty.id!=C1,C2"), Shape("relatedParty.id.ne=C1,C2,C3,C4,C5"),
    *_suffix_and_symbol("relatedParty.id", "gt", ">", "C5"),
    *_suffix_and_symbol("relatedParty.id", "gte", ">=", "C5"),
    *_suffix_and_symbol("relatedParty.id", "lt", "<", "C2"),
    *_suffix_and_symbol("relatedParty.id", "lte", "<=", "C12"),
    Shape(r"relatedParty.id.regex=^C1\d?$"),
    Shape("relatedParty.role=customer"), Shape("relatedParty.role!=customer"),
    Shape("relatedParty.role=customer,Customer"), Shape("relatedParty.role!=customer,Customer,reporter"),
    Shape("relatedParty.role.regex=(?i)^cust"),
    Shape("relatedParty.@referredType=Organization"),
    # digit-only strings inside $elemMatch
    Shape("relatedParty.id=4701"), Shape("relatedParty.id=4700,4702"), Shape("relatedParty.id!=4701"),
    Shape("relatedParty.id!=4700,C3"), Shape("relatedParty.id>=4701"), Shape("relatedParty.id=4701&status!=closed"),
    # ---- affectedService
    Shape("affectedService.id=S3"), Shape("affectedService.id=S1,S2,S3"),
    Shape("affectedService.id!=S3"), Shape("affectedService.id!=S1,S2"),
    Shape("affectedService.id.regex=^S2"), Shape("affectedService.id>=S3"),
    Shape("affectedService.name=svc-4"), Shape("affectedService.name!=svc-4,svc-5"),
    # ---- note (some notes have no date)
    *_suffix_and_symbol("note.date", "gt", ">", "2026-01-01"),
    *_suffix_and_symbol("note.date", "gte", ">=", "2026-01-01T00:00:00.000Z"),
    *_suffix_and_symbol("note.date", "lt", "<", "2025-03-01"),
    *_suffix_and_symbol("note.date", "lte", "<=", "{NOTE_DATE}"),
    Shape("note.date={NOTE_DATE}"), Shape("note.date!={NOTE_DATE}"),
    Shape("note.date>=2025-06-01&note.date<2025-07-01"),
    Shape("note.author=noc"), Shape("note.author!=noc"), Shape("note.author=noc,field"),
    Shape("note.text.regex=^wait"),
    # ---- characteristic (value is Any: numbers and strings)
    Shape("characteristic.name=latency"), Shape("characteristic.name.eq=latency"),
    Shape("characteristic.name!=latency"), Shape("characteristic.name.ne=latency"),
    Shape("characteristic.name=latency,jitter"), Shape("characteristic.name!=latency,jitter"),
    Shape("characteristic.name.regex=^(lat|jit)"), Shape("characteristic.name>=l"),
    Shape("characteristic.value=high"), Shape("characteristic.value=eu-west,apac"),
    Shape("characteristic.value!=high"),
    # The query value is the string "100": MongoDB compares it with strings only, never with numbers.
    Shape("characteristic.value>100"), Shape("characteristic.value.lte=5"),
    Shape("characteristic.value={DIGITS}"), Shape("characteristic.value<5"), Shape("characteristic.value.gte=2025-11-01"),
    Shape("characteristic.value=2025-11-02"), Shape("characteristic.value!=2025-11-02T01:00:00Z"),
    Shape("characteristic.value.regex=^1"), Shape("characteristic.valueType=number"),
    # ---- an array inside an array: characteristic.characteristicRelationship, trackingRecord.characteristic
    Shape("characteristic.characteristicRelationship.id=CR3"),
    Shape("characteristic.characteristicRelationship.id!=CR3"),
    Shape("characteristic.characteristicRelationship.id=CR1,CR2"),
    Shape("characteristic.characteristicRelationship.id!=CR1,CR2,CR3,CR4"),
    Shape("characteristic.characteristicRelationship.relationshipType=partOf"),
    Shape("characteristic.characteristicRelationship.id>CR6"),
    Shape("trackingRecord.characteristic.name=region"), Shape("trackingRecord.characteristic.name!=region"),
    Shape("trackingRecord.characteristic.name=region,latency"),
    Shape("trackingRecord.characteristic.value=high"), Shape("trackingRecord.id.regex=^T1"),
    # ---- an array inside an object: impactPattern.characteristic
    Shape("impactPattern.characteristic.name=latency"), Shape("impactPattern.characteristic.name!=latency"),
    Shape("impactPattern.characteristic.name=latency,jitter"),
    Shape("impactPattern.characteristic.value.regex=^e"), Shape("impactPattern.description=pattern"),
    Shape("impactPattern.description!=pattern"),  # the object is absent from most documents
    # ---- an object inside an array: underlyingAlarm.changeRequest
    Shape("underlyingAlarm.id=A26"), Shape("underlyingAlarm.id.regex=^A1"),
    Shape("underlyingAlarm.changeRequest.id=CHG2"), Shape("underlyingAlarm.changeRequest.id!=CHG2"),
    Shape("underlyingAlarm.changeRequest.id=CHG1,CHG2"),
    Shape("underlyingAlarm.changeRequest.id.gte=CHG5"),
    # ---- several terms ANDed
    Shape("status=pending,held&priority>=5"),
    # One status in creation-date order: served by the status-by-date key (problems/repository.py).
    Shape("status=pending&priority<=3"), Shape("status=inProgress&priority<=2", sort="creationDate"),
    Shape("status=held", sort="-creationDate,priority", offset=3, limit=7),
    Shape("status=acknowledged&relatedParty.id=C1,C2,C3", offset=1, limit=4),
    # One status and a priority range: counted on the status-by-priority key.
    Shape("status=acknowledged&priority>1&priority<=4"), Shape("status=pending&priority=3"),
    Shape("status=held&priority.gte=2"), Shape("status=closed&priority<2"), Shape("status=resolved&priority.gt=0"),
    Shape("status!=closed&relatedParty.id=C1,C2"),
    Shape("relatedParty.id=C3&relatedParty.role=customer"),  # two conditions: any element each
    Shape("relatedParty.id!=C1&affectedService.id=S1,S2,S3,S4,S5"),
    Shape("creationDate>=2025-06-01&creationDate<2026-01-01&category=network"),
    Shape("priority>3&priority<8&note.date>2025-09-01&characteristic.name!=latency"),
    Shape("originatorParty.id=P1,P2&status!=cancelled,rejected&name.regex=^Out"),
    Shape("id!={ID1}&status=held"),
    Shape("relatedParty.id!=C1,C2&affectedService.id!=S1,S2&note.author!=noc"),
    Shape("characteristic.name=latency&characteristic.value=high"),
    Shape("creationDate>{SHARED1}&name!=2025-03-01&priority.lte=5"),
    Shape("lastUpdate>={LAST_UPDATE}&resolutionDate!={SHARED1}"),
    Shape("status=pending&status=held", expect=NONE),
    # merged into one document of fields (different fields, or different operators of one field)
    Shape("status=acknowledged&priority.lte=5"), Shape("priority>=2&priority<5&category=network"),
    Shape("relatedParty.id=C1&status!=closed,cancelled"), Shape("lastUpdate>={LAST_UPDATE}&priority<=3&category!=billing"),
    Shape("creationDate>=2025-06-01&creationDate<2026-01-01&lastUpdate>={LAST_UPDATE}"),
    Shape("name.regex=^Out&reason=Outage&resolutionDate>=2025-06-01"),
]

# Sort (the translator appends the _id tiebreak unless id is a key) with offset/limit paging.
PAGED_SHAPES: list[Shape] = [
    Shape("", offset=0, limit=20, expect=ALL),  # default sort: -creationDate, then _id
    Shape("", offset=40, limit=25, expect=ALL),
    Shape("", offset=CORPUS_SIZE - 30, limit=50, expect=ALL),  # the last, partial page
    Shape("", offset=CORPUS_SIZE + 10, limit=10, expect=ALL),  # past the end: an empty page
    Shape("", sort="priority", offset=0, limit=30, expect=ALL),
    Shape("", sort="-priority", offset=30, limit=30, expect=ALL),
    Shape("", sort="creationDate", offset=0, limit=50, expect=ALL),  # ties at the shared instants
    Shape("", sort="-creationDate", offset=100, limit=50, expect=ALL),
    Shape("", sort="priority,-creationDate", offset=10, limit=40, expect=ALL),
    Shape("", sort="status,-priority,id", offset=60, limit=40, expect=ALL),
    Shape("", sort="id", offset=5, limit=15, expect=ALL),
    Shape("", sort="-id", offset=0, limit=15, expect=ALL),
    Shape("", sort="name", offset=120, limit=40, expect=ALL),  # absent names sort first
    Shape("", sort="-name", offset=300, limit=40, expect=ALL),
    Shape("", sort="resolutionDate", offset=0, limit=20, expect=ALL),  # absent from most documents
    Shape("", sort="-resolutionDate,priority", offset=0, limit=20, expect=ALL),
    Shape("", sort="originatorParty.id,-lastUpdate", offset=20, limit=20, expect=ALL),
    Shape("", sort="impactImportanceFactor,-affectedNumberOfServices", offset=90, limit=30, expect=ALL),
    Shape("", sort="category,name", offset=0, limit=100, expect=ALL),
    Shape("", sort="+statusChangeDate", offset=10, limit=10, fields="status,priority", expect=ALL),
    Shape("status=pending,held", sort="-priority,creationDate", offset=0, limit=10),
    Shape("status=pending,held", sort="-priority,creationDate", offset=10, limit=10),
    Shape("relatedParty.id=C1,C2,C3", sort="-creationDate", offset=5, limit=10),
    Shape("relatedParty.id!=C7&priority>=4", sort="priority,name", offset=0, limit=25),
    # One party in creation-date order: two index-served pages merged (the party-by-date key and the flagged few).
    Shape("relatedParty.id=C3", sort="creationDate", offset=2, limit=5),
    Shape("relatedParty.id=C3", sort="-creationDate", offset=0, limit=3, fields="status"),
    Shape("relatedParty.id.eq=C5&status!=closed", offset=1, limit=4),
    Shape("relatedParty.id=4701", sort="creationDate", offset=0, limit=50),
    Shape("relatedParty.id=C12", sort="-creationDate", offset=4, limit=2),
    Shape("relatedParty.id=C3&creationDate>=2025-06-01", offset=0, limit=6, fields="relatedParty"),
    Shape("relatedParty.id=C3", sort="-creationDate,priority", offset=0, limit=10),  # not merged: a third key
    Shape("note.date>=2026-01-01", sort="lastUpdate", offset=3, limit=7),
    Shape("category=network", sort="creationDate", offset=0, limit=1000),
    Shape("creationDate={SHARED1},{SHARED2}", sort="creationDate", offset=0, limit=12),  # all ties
    Shape("characteristic.name!=latency", sort="-id", offset=50, limit=50, fields="characteristic,name"),
    Shape("status!=closed", fields="relatedParty,note"),  # default page, projection of arrays
    Shape("originatorParty.id=P1,P2", fields="none"),
    Shape("affectedService.id=S1,S2,S3", sort="-affectedNumberOfServices,priority", offset=0, limit=30,
          fields="affectedService,affectedNumberOfServices"),
]

ALL_SHAPES = FILTER_SHAPES + PAGED_SHAPES

# --------------------------------------------------------------------------------------------------
# The two engines.
# --------------------------------------------------------------------------------------------------


class OracleRepository(CollectionReader):
    """The real repository on mongomock, except count.

    mongomock 4.3 does not implement the "count" database command (its Database.command() takes only one
    argument, and dispatches a handful of other commands), so CollectionReader.count, which runs
    db.command("count", collection, query=filter), cannot run on it. The oracle counts with
    count_documents instead, which mongomock implements with MongoDB's matching semantics. The engine side
    keeps the server's own count command.
    """

    def count(self, filter_: dict) -> int:
        return self.collection.count_documents(filter_)


def stored(corpus: list[dict]) -> list[dict]:
    """The corpus as the repository stores it: with the derived fields (date copies, lookup keys)."""
    return [with_derived_fields(copy.deepcopy(document)) for document in corpus]


@pytest.fixture(scope="module")
def catalog() -> AttributeCatalog:
    return problem_catalog(load_spec())


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The embedded engine with the server's indexes and the corpus."""
    process = EmbeddedEngine(tmp_path_factory.mktemp("embedded-engine")).start()
    client = pymongo.MongoClient(process.uri, serverSelectionTimeoutMS=5000)
    try:
        db = client["tmf656_differential"]
        ensure_indexes(db)  # indexes before the data, as in the server: some gaps only show with an index
        db[SERVICE_PROBLEMS].insert_many(stored(CORPUS))
        yield ServiceProblemRepository(db, Outbox(db))  # the server's reads, its counts through lookup keys too
    finally:
        client.close()
        process.stop()


@pytest.fixture(scope="module")
def oracle():
    client = mongomock.MongoClient()
    db = client["tmf656_differential"]
    ensure_indexes(db)
    db[SERVICE_PROBLEMS].insert_many(stored(CORPUS))
    yield OracleRepository(db, SERVICE_PROBLEMS)
    client.close()


def translate(catalog: AttributeCatalog, shape: Shape):
    return parse_list_query(catalog, shape.raw_query(), fields=shape.fields, sort=shape.sort,
                            offset=shape.offset, limit=shape.limit, default_limit=100, max_limit=1000)


def answers(repository: CollectionReader, query) -> dict:
    everything = repository.find(query.filter, query.sort, 0, CORPUS_SIZE + 1, {"_id": 1})
    page = repository.find(query.filter, query.sort, query.offset, query.limit, query.projection)
    return {
        "count": repository.count(query.filter),
        "ordered": [d["_id"] for d in everything],
        "page": page,
    }


def _category(count: int) -> str:
    return NONE if count == 0 else ALL if count == CORPUS_SIZE else SOME


def _explain(shape: Shape, query, engine: dict, oracle: dict) -> str:
    extra_engine = sorted(set(engine["ordered"]) - set(oracle["ordered"]))
    missing_engine = sorted(set(oracle["ordered"]) - set(engine["ordered"]))
    return (f"\nshape   {shape.id}\nfilter  {query.filter}\nsort    {query.sort}  offset {query.offset}"
            f"  limit {query.limit}\ncount   engine {engine['count']}  oracle {oracle['count']}"
            f"\nfound   engine {len(engine['ordered'])}  oracle {len(oracle['ordered'])}"
            f"  (engine only: {len(extra_engine)}, oracle only: {len(missing_engine)})")


# --------------------------------------------------------------------------------------------------
# The tests.
# --------------------------------------------------------------------------------------------------


def test_corpus_is_deterministic_and_loaded(engine, oracle):
    again = make_corpus()
    assert again == CORPUS
    assert len({d["_id"] for d in CORPUS}) == CORPUS_SIZE
    assert engine.count({}) == oracle.count({}) == CORPUS_SIZE
    indexed = {tuple(spec["key"].items()) for spec in engine.collection.list_indexes()}
    assert (("relatedParty.id", 1),) in indexed and (("affectedService.id", 1),) in indexed


@pytest.mark.parametrize("shape", ALL_SHAPES, ids=[s.id for s in ALL_SHAPES])
def test_query_shape_agrees_with_the_oracle(shape: Shape, catalog, engine, oracle):
    query = translate(catalog, shape)
    assert "$not" not in repr(query.filter)
    expected = answers(oracle, query)
    assert _category(expected["count"]) == shape.expect, (
        f"the corpus does not give this shape the intended outcome ({shape.expect}): "
        f"the oracle finds {expected['count']} of {CORPUS_SIZE}")
    actual = answers(engine, query)
    why = _explain(shape, query, actual, expected)
    assert actual["count"] == expected["count"], "counts differ" + why
    assert set(actual["ordered"]) == set(expected["ordered"]), "matched ids differ" + why
    assert len(expected["ordered"]) == expected["count"], "the oracle's find and count disagree" + why
    assert actual["ordered"] == expected["ordered"], "sort order differs" + why
    assert [d["_id"] for d in actual["page"]] == [d["_id"] for d in expected["page"]], "pages differ" + why
    assert actual["page"] == expected["page"], "page documents differ (projection or stored values)" + why


def test_the_suite_is_not_vacuous(catalog, oracle):
    """Most filter shapes match some but not all documents, and the shapes differ from one another."""
    counts = {}
    for shape in FILTER_SHAPES:
        counts[shape.id] = oracle.count(translate(catalog, shape).filter)
    some = [n for n in counts.values() if 0 < n < CORPUS_SIZE]
    assert len(some) >= 0.9 * len(counts), f"only {len(some)} of {len(counts)} shapes are selective"
    assert len(set(some)) >= 0.5 * len(some), "too many shapes find the same number of documents"
    assert len(ALL_SHAPES) >= 200


# --------------------------------------------------------------------------------------------------
# The intake's lookups (problems/lookups.py): the union of two index-served searches finds exactly the
# reports that name the id, on both engines, as a plain evaluation of the corpus says.
# --------------------------------------------------------------------------------------------------

OPEN_ONLY = {"status": {"$nin": ["closed", "cancelled", "rejected", "resolved"]}}
LOOKUP_CASES = [
    ("customer", "C3", ()), ("customer", "C17", (OPEN_ONLY,)), ("customer", "4701", ()),
    ("customer", "C5", ({"characteristic": {"$elemMatch": {"name": {"$eq": "latency"}}}},)),
    ("service", "S7", ()), ("service", "S12", (OPEN_ONLY, {"_id": {"$nin": [CORPUS[0]["_id"]]}})),
    ("alarm", "A4", ()), ("alarm", "A21", (OPEN_ONLY,)),
]


def _truth(kind: str, value: str, conditions) -> list[str]:
    def matches(document):
        if value not in ids_of(document, kind):
            return False
        if OPEN_ONLY in conditions and document["status"] in OPEN_ONLY["status"]["$nin"]:
            return False
        if any("characteristic" in c for c in conditions):
            if not any(c.get("name") == "latency" for c in document.get("characteristic", ())):
                return False
        return all(document["_id"] not in c["_id"]["$nin"] for c in conditions if "_id" in c)

    chosen = [d for d in stored(CORPUS) if matches(d)]
    return [d["_id"] for d in sorted(chosen, key=lambda d: (d["_creationDateMs"], d["_id"]))]


@pytest.mark.parametrize("kind, value, conditions", LOOKUP_CASES, ids=[f"{k}={v}/{len(c)}" for k, v, c in LOOKUP_CASES])
def test_lookup_searches_agree_with_the_oracle_and_the_corpus(kind, value, conditions, engine, oracle):
    expected = _truth(kind, value, conditions)
    assert 0 < len(expected) < CORPUS_SIZE, "the case must select some reports"
    for reader in (engine, oracle):
        repository = ServiceProblemRepository(reader.db, Outbox(reader.db))
        assert [d["_id"] for d in repository.naming(kind, value, *conditions, limit=CORPUS_SIZE)] == expected


@pytest.mark.parametrize("kind, value, conditions", LOOKUP_CASES, ids=[f"{k}={v}/{len(c)}" for k, v, c in LOOKUP_CASES])
def test_lookups_by_the_first_id_agree_with_the_oracle_and_the_corpus(kind, value, conditions, engine, oracle):
    """`naming(..., first_only=True)` (the intake's ticket lookup): the reports whose first id of the kind it is."""
    expected = [i for i in _truth(kind, value, conditions)
                if ids_of(next(d for d in CORPUS if d["_id"] == i), kind)[0] == value]
    for reader in (engine, oracle):
        repository = ServiceProblemRepository(reader.db, Outbox(reader.db))
        assert [d["_id"] for d in repository.naming(kind, value, *conditions, limit=CORPUS_SIZE,
                                                    first_only=True)] == expected
    assert expected or kind == "customer"


def test_some_lookups_go_through_the_flagged_reports():
    """The corpus has reports with several customers (the second search form), so both forms are exercised: the
    id sought is a later one of some, and the first one of others (found by the second form only)."""
    assert any(len(ids_of(d, "customer")) > 1 and "C3" in ids_of(d, "customer")[1:] for d in CORPUS)
    firsts = {ids_of(d, kind)[0] for kind in ("customer", "service", "alarm") for d in CORPUS
              if len(ids_of(d, kind)) > 1}
    assert firsts & {value for _kind, value, _conditions in LOOKUP_CASES}


def test_the_intake_sweep_finds_the_same_records_on_both_engines(engine, oracle):
    """IntakeRepository.left_received: `$eq` on outcome, `$lte` on the lease, `$exists` on the processing context,
    over records of every state, on the embedded engine (with the intake's indexes) and on mongomock."""
    now = int(time.time() * 1000)
    records = [{"_id": f"alarm:sweep-{i}", "outcome": outcome, "_leaseUntil": lease, **context}
               for i, (outcome, lease, context) in enumerate([
                   ("received", now - 5_000, {"_recordBase": "http://x"}),
                   ("received", now + 60_000, {"_recordBase": "http://x"}),
                   ("received", 0, {}), ("created", now - 5_000, {"_recordBase": "http://x"}),
                   ("received", 0, {"_recordBase": "http://x"}), ("4711", 0, {"_recordBase": "http://x"})])]
    found = []
    for db in (engine.db, oracle.db):
        ensure_intake_indexes(db)
        db[INTAKE_EVENTS].delete_many({})
        db[INTAKE_EVENTS].insert_many(copy.deepcopy(records))
        repository = IntakeRepository(db, ServiceProblemRepository(db, Outbox(db)))
        found.append(sorted(r["_id"] for r in repository.left_received(100)))
    assert found[0] == found[1] == ["alarm:sweep-0", "alarm:sweep-4"]


@pytest.fixture()
def oracle_bulk_writes(monkeypatch):
    """pymongo 4.9+ hands a `sort` argument (None here) to mongomock 4.3's bulk builder, which predates it."""
    add_update = mongomock.collection.BulkOperationBuilder.add_update

    def without_sort(self, *args, sort=None, **kwargs):
        assert sort is None, "the intake's bulk writes do not sort"
        return add_update(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.BulkOperationBuilder, "add_update", without_sort)


def test_intake_records_and_locks_answer_alike_on_both_engines(engine, oracle, oracle_bulk_writes):
    """The intake keeps its locks in the records' collection (ordered bulk upserts conditioned on the lease, the
    record's `$setOnInsert` in the same write): storing with locks, a refusal, releasing with the outcome (and the
    ticket's report), the record list and count (ANY_RECORD), the sweep's read and the dropping of released locks
    answer alike on the embedded engine (with the intake's indexes) and on mongomock."""
    seen = []
    for db in (engine.db, oracle.db):
        ensure_intake_indexes(db)
        db[INTAKE_EVENTS].delete_many({})
        repository = IntakeRepository(db, ServiceProblemRepository(db, Outbox(db)))

        def record(i: int) -> dict:
            return {"_id": f"alarm:{i}", "source": "alarm", "sourceEventId": str(i), "eventType": "AlarmCreateEvent",
                    "receivedAt": f"2026-11-21T09:00:0{i}.000Z", "payload": {"eventId": str(i)},
                    "_recordBase": "http://x"}

        def count(query: dict) -> int:
            return repository.count(query) if db is engine.db else db[INTAKE_EVENTS].count_documents(query)

        answers = {}
        state, first, locks = repository.store(record(1), 60_000, ["ticket:4711", "report:C|service:S|m"])
        answers["first"] = (state, locks.keys)
        answers["refused"] = repository.lock(["ticket:4711"], 60_000, 0.05) is None
        state, _second, second_locks = repository.store(record(2), 60_000, ["alarm:9", "ticket:4711", "zzz"])
        answers["second"] = (state, list(second_locks.keys))  # up to the key the first holds
        repository.store(record(3), 0, ["expired"])  # a lease of 0: run out at once, as after a crash
        time.sleep(0.01)
        state, _stored, duplicate_locks = repository.store(record(1), 60_000, ["other"])
        answers["duplicate"] = (state, duplicate_locks.keys)  # the write stops at the record, before "other"
        answers["left received"] = [r["_id"] for r in repository.left_received(10)]
        answers["finished"] = repository.finish(first, {"outcome": "created", "_problemId": "P1"}, locks,
                                                ticket="4711")["outcome"]
        answers["ticket's report"] = db[INTAKE_EVENTS].find_one({"_id": "~ticket:4711"})["_report"]
        answers["records of P1"] = count(repository.record_query(problem_id="P1"))
        answers["second takes the rest"] = repository.lock(["zzz", "ticket:4711", "alarm:9"], 60_000, 5,
                                                           second_locks).keys
        answers["records"] = [d["_id"] for d in repository.find(repository.record_query(), 0, 10)]
        answers["count"] = count(repository.record_query())
        answers["created"] = (count(repository.record_query(outcome="created")),
                              [d["_id"] for d in repository.find(repository.record_query(outcome="created"), 0, 10)])
        repository.unlock(second_locks)
        answers["dropped"] = repository.drop_released_locks()
        answers["kept"] = sorted(d["_id"] for d in db[INTAKE_EVENTS].find())
        seen.append(answers)
    assert seen[0] == seen[1]
    assert seen[0]["first"] == ("new", ["report:C|service:S|m", "ticket:4711"]) and seen[0]["refused"]
    assert seen[0]["second"] == ("new", ["alarm:9"])
    assert seen[0]["duplicate"] == ("busy", [])  # the first is still being processed
    assert seen[0]["left received"] == ["alarm:3"] and seen[0]["records"] == ["alarm:3", "alarm:2", "alarm:1"]
    assert seen[0]["second takes the rest"] == ["alarm:9", "ticket:4711", "zzz"] and seen[0]["count"] == 3
    assert seen[0]["dropped"] == 5 and seen[0]["kept"] == ["alarm:1", "alarm:2", "alarm:3", "~ticket:4711"]
    assert seen[0]["ticket's report"] == "P1" and seen[0]["records of P1"] == 1


def test_the_tickets_of_earlier_records_are_carried_over_alike_on_both_engines(engine, oracle, oracle_bulk_writes,
                                                                               monkeypatch):
    """The carry-over's read of earlier trouble ticket records (`$eq` on source, `$gt ""` on the report id, `_id`
    ranges in `_id` order, in batches) and its `$setOnInsert` upserts answer alike on both engines."""
    import tmf_server.intake.repository as intake_repository

    records = [{"_id": f"troubleTicket:old-{i:03d}", "source": "troubleTicket", "receivedAt": f"2026-11-21T09:{i % 60:02d}:00.000Z",
                "outcome": "merged", "_problemId": f"P{i % 7}" if i % 5 else None,
                "payload": {"event": {"troubleTicket": {"id": f"{4700 + i % 11}"}}}} for i in range(40)]
    records.append({**records[0], "_id": "alarm:old", "source": "alarm"})
    seen = []
    monkeypatch.setattr(intake_repository, "_CARRY_OVER_BATCH", 7)  # several batches
    for db in (engine.db, oracle.db):
        db[INTAKE_EVENTS].delete_many({})
        db[INTAKE_EVENTS].insert_many(copy.deepcopy(records))
        db[INTAKE_EVENTS].insert_one({"_id": "~ticket:4700", "_report": "written-now"})
        ensure_intake_indexes(db)
        seen.append(sorted((d["_id"], d["_report"]) for d in db[INTAKE_EVENTS].find({"_report": {"$exists": True}})))
    assert seen[0] == seen[1]
    latest = {}
    for r in sorted((r for r in records if r["source"] == "troubleTicket" and r["_problemId"]),
                    key=lambda r: r["receivedAt"]):
        latest[r["payload"]["event"]["troubleTicket"]["id"]] = r["_problemId"]
    assert dict(seen[0]) == {**{f"~ticket:{t}": p for t, p in latest.items()}, "~ticket:4700": "written-now"}
