"""marshmallow schemas: a received notification (already checked by Connexion against openapi/intake.yaml: the
envelope, the resource and its id, and the types the source documents declare) -> the typed values the converters
read: date-times parsed, numeric measures as numbers, ids as strings, v5 references unwrapped.

Only the attributes the converters read are declared (field names as in the source documents); everything else in
a notification is kept in the stored raw event and otherwise ignored (`unknown = EXCLUDE`). What cannot be read
(a reference without a usable id, a date-time without a stored form) is left out of the reading and named
(`Notice.unread`); only a problem with what a notification cannot be understood without is a 400 (`load`).

openapi/intake.yaml states every rule of a single attribute enforced here (tests/unit/test_intake_contract.py
compares the two): types, the required attributes, date-times, and resource identifiers that are not blank (the
pattern NON_BLANK, reported by the server: `x-reported-by-server`, so that the message names the rule).
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load

from tmf_server.dates import canonical_datetime
from tmf_server.errors import BadRequest

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")
# A character that is not white space as str.strip() and str.isspace() know it: an identifier must contain one.
# The same pattern is on every identifier of openapi/intake.yaml (explicit, so every regex dialect reads it alike).
NON_BLANK = "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"


def number(value):
    """The number a numeric text means ("120", " 1.5e3 "), or None: text that is not a number in decimal
    notation ("1_000", "nan", "Infinity") or whose value is not finite ("1e999") stays text."""
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        return None
    parsed = float(value)
    if not math.isfinite(parsed):
        return None
    return int(parsed) if parsed.is_integer() and abs(parsed) < 2**53 else parsed


def measure(value):
    """A numeric text as its number (see `number`), other text stripped; numbers and anything else as they are."""
    if isinstance(value, str):
        found = number(value)
        return value.strip() if found is None else found
    return value


class Identifier(fields.Field):
    """A string, or an integer as TMF642 v4 (Alarm.id) and TMF623 v2 (SlaViolation.id) declare ids: kept as text."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Not a valid identifier (a string or an integer).")
        text = str(value)
        if not text.strip():
            raise ValidationError("An identifier must not be empty.")
        return text


class DateTime(fields.Field):
    """An RFC 3339 date-time (Connexion checked the format) as an aware datetime. The instant must lie in the
    years 0001 to 9999 in UTC, the range of the server's one stored form: 0001-01-01T00:30:00+01:00 is in the
    year 0 in UTC, and no stored form exists for it."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Not a valid date-time.")
        try:
            parsed = datetime.fromisoformat(value.strip().upper())
        except ValueError:
            raise ValidationError("Not a valid date-time (RFC 3339, e.g. 2026-11-20T18:00:00Z).") from None
        try:
            canonical_datetime(parsed)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return parsed


class Measure(fields.Field):
    """A measured or reference value: a number, or a string as TMF642 `observedValue` is. A string that is a
    number becomes the number (so that values compare); other text is kept as it is."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Not a valid measure (a number or a string).")
        return measure(value)


class RefId(fields.Field):
    """The id of a reference inside a notification (party, entity, service, ...): a string, or an integer as
    TMF642 v4 declares some ids (kept as text). A reference without a usable id is not read (and said so)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return Identifier()._deserialize(value, attr, data, **kwargs)


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


def _unwrap(data, wrapper: str):
    """TMF v5 wraps a reference with its role: {role, partyOrPartyRole: {...}}, {role, entity: {...}},
    {role, place: {...}}; read as the v4 flat reference with that role."""
    if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
        inner = data[wrapper]
        return {**inner, "role": data.get("role") if data.get("role") is not None else inner.get("role")}
    return data


class EntityRef(_Base):
    """EntityRef (TMF688 source and reportingSystem) / ServiceRef / ProductRef: the reference attributes."""

    id = RefId(required=True)
    href = fields.String()
    name = fields.String()
    role = fields.String()  # read from a source that is neither a product nor a service
    referredType = fields.String(data_key="@referredType")


class RelatedEntity(EntityRef):
    """TMF621 RelatedEntity (v4 flat; v5 {role, entity}), and the SLA of a TMF688 QoS degradation: an SLA
    reference may carry its tier."""

    slaTier = fields.String()  # extension, read on an SLA reference only (docs/intake.md)

    @pre_load
    def unwrap(self, data, **kwargs):
        return _unwrap(data, "entity")


class Party(EntityRef):
    """RelatedParty (TMF621 v4, TMF688 v4; TMF656 has the same attributes) or RelatedPartyRefOrPartyRoleRef (v5)."""

    @pre_load
    def unwrap(self, data, **kwargs):
        return _unwrap(data, "partyOrPartyRole")


class SlaParty(_Base):
    """TMF623 v2 RelatedParty: href, role, name (no id: the id is the last segment of href unless `id` is sent)."""

    id = RefId()
    href = fields.String()
    name = fields.String()
    role = fields.String()
    referredType = fields.String(data_key="@referredType")


_TYPED_CHARACTERISTIC = re.compile(r"^(?P<kind>[A-Za-z]+?)(?P<array>Array)?Characteristic$")


class Characteristic(_Base):
    name = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=True)
    valueType = fields.String()
    type = fields.String(data_key="@type")  # TMF v5: StringCharacteristic, NumberCharacteristic, ...

    @post_load
    def value_type(self, data, **kwargs):
        """A v5 characteristic says its type in @type: it becomes the valueType when none is given."""
        kind = _TYPED_CHARACTERISTIC.match(data.pop("type", "") or "")
        if kind and not data.get("valueType") and kind["kind"] != "":
            data["valueType"] = kind["kind"].lower() + ("Array" if kind["array"] else "")
        return data


class ExternalIdentifier(_Base):
    """TMF621 v5 ExternalIdentifier."""

    id = RefId(required=True)
    owner = fields.String()
    externalIdentifierType = fields.String()


class Envelope(_Base):
    """The TMF event envelope (TMF621/TMF642 XxxEvent, TMF688 Event v4 and v5)."""

    eventId = fields.String(required=True)
    eventType = fields.String(required=True)
    eventTime = DateTime()
    timeOcurred = DateTime()  # the TMF v4 spelling
    timeOccurred = DateTime()  # the TMF v5 spelling
    correlationId = fields.String()
    description = fields.String()
    title = fields.String()
    type = fields.String(data_key="@type")  # TMF v5 events name their type
    relatedParty = fields.List(fields.Nested(Party))  # TMF688 Event
    reportingSystem = fields.Nested(EntityRef)  # TMF688 Event
    source = fields.Nested(EntityRef)  # TMF688 Event: a degraded product or service, or (v5) the emitting system
    analyticCharacteristic = fields.List(fields.Nested(Characteristic))  # TMF688 Event


# TMF621 Trouble Ticket v4.0.0 and v5.0.1 (the resource TroubleTicket: only its id is needed)

class SpecificationRef(_Base):
    id = RefId()
    name = fields.String()


class TroubleTicket(_Base):
    id = Identifier(required=True)
    href = fields.String()
    name = fields.String()
    description = fields.String()
    severity = fields.String()
    ticketType = fields.String()
    type = fields.String()  # what older systems send instead of ticketType
    category = fields.String()  # sent by some systems; read by the QoS relevance rule
    priority = fields.String()
    status = fields.String()
    statusChangeReason = fields.String()
    creationDate = DateTime()
    resolutionDate = DateTime()
    externalId = fields.String()
    externalIdentifier = fields.List(fields.Nested(ExternalIdentifier))  # TMF621 v5
    troubleTicketSpecification = fields.Nested(SpecificationRef)  # TMF621 v5
    relatedParty = fields.List(fields.Nested(Party))
    relatedEntity = fields.List(fields.Nested(RelatedEntity))
    troubleTicketCharacteristic = fields.List(fields.Nested(Characteristic))  # TMF621 v5 name
    characteristic = fields.List(fields.Nested(Characteristic))  # accepted too (docs/intake.md)


class TroubleTicketPayload(_Base):
    troubleTicket = fields.Nested(TroubleTicket, required=True)


class TroubleTicketEvent(Envelope):
    event = fields.Nested(TroubleTicketPayload, required=True)


# TMF642 Alarm v4.0.0 (and the v5 shapes: string ids, place as {role, place})

class AlarmedObject(_Base):
    id = RefId(required=True)
    href = fields.String()
    referredType = fields.String(data_key="@referredType")


class AffectedService(_Base):
    id = RefId(required=True)
    href = fields.String()
    name = fields.String()


class ThresholdRef(_Base):
    id = RefId(required=True)
    href = fields.String()
    name = fields.String()


class CrossedThresholdInformation(_Base):
    indicatorName = fields.String()
    indicatorUnit = fields.String()
    observedValue = Measure()
    direction = fields.String()
    granularity = fields.String()
    thresholdCrossingDescription = fields.String()
    threshold = fields.Nested(ThresholdRef)


class Place(EntityRef):
    """TMF642 v4 RelatedPlaceRefOrValue {id, name, role, ...} or v5 {role, place: {...}}."""

    type = fields.String(data_key="@type")

    @pre_load
    def unwrap(self, data, **kwargs):
        return _unwrap(data, "place")


class Alarm(_Base):
    id = Identifier(required=True)
    href = fields.String()
    alarmType = fields.String()
    perceivedSeverity = fields.String()
    state = fields.String()
    probableCause = fields.String()
    specificProblem = fields.String()
    alarmDetails = fields.String()
    alarmRaisedTime = DateTime()
    alarmClearedTime = DateTime()
    sourceSystemId = fields.String()
    reportingSystemId = fields.String()
    alarmedObjectType = fields.String()
    alarmedObject = fields.Nested(AlarmedObject)
    affectedService = fields.List(fields.Nested(AffectedService))
    crossedThresholdInformation = fields.Nested(CrossedThresholdInformation)
    place = fields.List(fields.Nested(Place))


class AlarmPayload(_Base):
    alarm = fields.Nested(Alarm, required=True)


class AlarmEvent(Envelope):
    event = fields.Nested(AlarmPayload, required=True)


# TMF623 SLA Management v2 (SlaViolation)

class SlaRef(_Base):
    href = fields.String()
    description = fields.String()
    id = RefId()  # extension: v2 SlaRef has href and description only
    name = fields.String()  # extension
    slaTier = fields.String()  # extension


class RuleRef(_Base):
    href = fields.String()
    description = fields.String()
    metric = fields.String()  # extension: the `metric` of the v2 Rule the RuleRef points to


class Violation(_Base):
    unit = fields.String()
    referenceValue = Measure()
    operator = fields.String()
    actualValue = Measure()
    tolerance = Measure()
    violationAverage = Measure()
    comment = fields.String()
    consequence = fields.String()
    rule = fields.Nested(RuleRef)


class SlaViolation(_Base):
    id = Identifier(required=True)
    href = fields.String()
    date = DateTime()
    sla = fields.Nested(SlaRef)
    violation = fields.Nested(Violation)
    relatedParty = fields.List(fields.Nested(SlaParty))


class SlaViolationPayload(_Base):
    slaViolation = fields.Nested(SlaViolation, required=True)


class SlaViolationEvent(Envelope):
    event = fields.Nested(SlaViolationPayload, required=True)


# TMF688 Event carrying a QoS degradation (the documented shape of `event`, docs/intake.md)

class QosDegradation(_Base):
    customer = fields.Nested(Party)
    product = fields.Nested(EntityRef)
    productOffering = fields.Nested(EntityRef)
    service = fields.Nested(EntityRef)
    sla = fields.Nested(RelatedEntity)
    metric = fields.String()
    observedValue = Measure()
    threshold = Measure()
    unit = fields.String()
    direction = fields.String()
    degradationStart = DateTime()
    severity = fields.String()
    slaTier = fields.String()
    description = fields.String()
    declaredBy = fields.String()


class QosDegradationPayload(_Base):
    qosDegradation = fields.Nested(QosDegradation, required=True)


class GenericEvent(Envelope):
    event = fields.Nested(QosDegradationPayload, required=True)


SCHEMAS: dict[str, type[Schema]] = {
    "troubleTicket": TroubleTicketEvent,
    "alarm": AlarmEvent,
    "slaViolation": SlaViolationEvent,
    "event": GenericEvent,
}
# One instance each, reused: a marshmallow schema holds no state between loads, and building one (with its nested
# schemas) costs more than reading a notification.
LOADERS: dict[str, Schema] = {source: schema() for source, schema in SCHEMAS.items()}
# The resource object each listener's `event` carries: without it, or without its id (where it has one), a
# notification cannot be understood.
RESOURCES = {"troubleTicket": "troubleTicket", "alarm": "alarm", "slaViolation": "slaViolation",
             "event": "qosDegradation"}


@dataclass
class Notice:
    """A notification read: the typed values, and what could not be read (each "path: why")."""

    values: dict
    unread: list[str]
    shape: str = "v4"  # "v5" when the notification has a TMF v5 shape (shape_of)


def _core(source: str, path: tuple) -> bool:
    """Whether an error at `path` leaves the notification impossible to understand (docs/intake.md): the envelope's
    eventId and eventType, the resource object and its id."""
    resource = RESOURCES[source]
    return path in {("eventId",), ("eventType",), ("event",), ("event", resource), ("event", resource, "id")} \
        or path[:1] == ("_schema",)


def _paths(messages, prefix: tuple = ()) -> list[tuple[tuple, str]]:
    if isinstance(messages, dict):
        return [found for key, value in messages.items() for found in _paths(value, prefix + (key,))]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(prefix, " ".join(messages))]
    return [(prefix, str(messages))]


def _text(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _prune(payload, path: tuple, message: str) -> None:
    """Removes what `path` names from `payload`: an element of a list (a reference, a characteristic) as a whole; an
    object whose id is unusable or that lacks a required attribute as a whole; else the attribute."""
    indexes = [i for i, key in enumerate(path) if isinstance(key, int)]
    if indexes:
        path = path[:indexes[-1] + 1]
    elif len(path) > 1 and (path[-1] in ("id", "_schema") or message.startswith("Missing data")):
        path = path[:-1]
    node = payload
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = None  # removed after every path of this list is pruned (indexes stay valid)


def _drop_removed(value):
    if isinstance(value, dict):
        return {k: _drop_removed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_removed(v) for v in value if v is not None]
    return value


_V5_WRAPPERS = {"relatedParty": "partyOrPartyRole", "relatedEntity": "entity", "place": "place"}


def shape_of(source: str, payload: dict) -> str:
    """"v5" when the notification has a shape only TMF v5 has: a TMF688 v5 Event (`@type`, `timeOccurred`), a
    resource with `externalIdentifier[]`, or references wrapped with their role ({role, partyOrPartyRole},
    {role, entity}, {role, place}); else "v4"."""
    if "timeOccurred" in payload or "@type" in payload:
        return "v5"
    resource = (payload.get("event") or {}).get(RESOURCES[source])
    if not isinstance(resource, dict):
        return "v4"
    if isinstance(resource.get("externalIdentifier"), list):
        return "v5"
    for name, wrapper in _V5_WRAPPERS.items():
        entries = resource.get(name)
        if isinstance(entries, list) and any(isinstance(e, dict) and isinstance(e.get(wrapper), dict) for e in entries):
            return "v5"
    return "v4"


def load(source: str, payload: dict) -> Notice:
    """The typed notice of one source. What cannot be understood (no eventId, eventType, resource object or
    resource id) is a 400 naming every such problem; any other attribute that cannot be read is left out of the
    reading and named in `unread` (the stored record keeps the payload as received)."""
    schema = LOADERS[source]
    unread: list[str] = []
    data = payload
    for _attempt in range(8):  # each round removes every attribute the previous one could not read
        try:
            return Notice(schema.load(data), sorted(set(unread)), shape_of(source, payload))
        except ValidationError as error:
            problems = _paths(error.messages)
        core = [f"{_text(path)}: {message}" for path, message in problems if _core(source, path)]
        if core:
            raise BadRequest("Invalid notification: " + "; ".join(sorted(core)), code="invalidNotification")
        data = copy.deepcopy(data) if data is payload else data
        for path, message in problems:
            unread.append(f"{_text(path)}: {message}")
            _prune(data, path, message)
        data = _drop_removed(data)
    raise BadRequest("Invalid notification: " + "; ".join(unread), code="invalidNotification")
