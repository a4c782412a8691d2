"""marshmallow schemas: a received notification (already validated by Connexion against openapi/intake.yaml)
-> the typed values the conversion reads: date-times parsed, numeric measures as numbers, ids as strings.

Only the attributes the conversion reads are declared (field names as in the source documents); everything
else in a notification is kept in the stored raw event and otherwise ignored (`unknown = EXCLUDE`).

openapi/intake.yaml states every rule of a single attribute enforced here (tests/unit/test_intake_contract.py
compares the two): types and required attributes, date-times, and identifiers that are not blank (the pattern
NON_BLANK, reported by the server: `x-reported-by-server`, so that the message below names the rule).
"""
from __future__ import annotations

import math
import re
from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from tmf_server.errors import BadRequest
from tmf_server.query.filters import canonical_datetime

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


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class EntityRef(_Base):
    """EntityRef (TMF688 source and reportingSystem) / ServiceRef / ProductRef: the reference attributes."""

    id = Identifier(required=True)
    href = fields.String()
    name = fields.String()
    role = fields.String()  # read from a source that is neither a product nor a service
    referredType = fields.String(data_key="@referredType")


class RelatedEntity(EntityRef):
    """TMF621 RelatedEntity, and the SLA of a TMF688 QoS degradation: an SLA reference may carry its tier."""

    slaTier = fields.String()  # extension, read on an SLA reference only (docs/intake.md)


class Party(_Base):
    """RelatedParty (TMF621, TMF688; TMF656 has the same attributes)."""

    id = Identifier(required=True)
    href = fields.String()
    name = fields.String()
    role = fields.String()
    referredType = fields.String(data_key="@referredType")


class SlaParty(_Base):
    """TMF623 v2 RelatedParty: href, role, name (no id: the id is the last segment of href unless `id` is sent)."""

    id = Identifier()
    href = fields.String()
    name = fields.String()
    role = fields.String()
    referredType = fields.String(data_key="@referredType")


class Characteristic(_Base):
    name = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=True)
    valueType = fields.String()


class Envelope(_Base):
    """The TMF event envelope (TMF621/TMF642 XxxEvent, TMF688 Event)."""

    eventId = fields.String(required=True)
    eventType = fields.String(required=True)
    eventTime = DateTime()
    timeOcurred = DateTime()  # the TMF spelling
    correlationId = fields.String()
    description = fields.String()
    title = fields.String()
    relatedParty = fields.List(fields.Nested(Party))  # TMF688 Event
    reportingSystem = fields.Nested(EntityRef)  # TMF688 Event
    source = fields.Nested(EntityRef)  # TMF688 Event: the source entity (here: the degraded product or service)
    analyticCharacteristic = fields.List(fields.Nested(Characteristic))  # TMF688 Event


# TMF621 Trouble Ticket v4.0.0

class TroubleTicket(_Base):
    id = Identifier(required=True)
    href = fields.String()
    name = fields.String()
    description = fields.String(required=True)
    severity = fields.String(required=True)
    ticketType = fields.String(required=True)
    priority = fields.String()
    status = fields.String()
    creationDate = DateTime()
    externalId = fields.String()
    relatedParty = fields.List(fields.Nested(Party))
    relatedEntity = fields.List(fields.Nested(RelatedEntity))
    troubleTicketCharacteristic = fields.List(fields.Nested(Characteristic))  # TMF621 v5 name
    characteristic = fields.List(fields.Nested(Characteristic))  # accepted too (docs/intake.md)


class TroubleTicketPayload(_Base):
    troubleTicket = fields.Nested(TroubleTicket, required=True)


class TroubleTicketEvent(Envelope):
    event = fields.Nested(TroubleTicketPayload, required=True)


# TMF642 Alarm v4.0.0

class AlarmedObject(_Base):
    id = Identifier(required=True)
    href = fields.String()


class AffectedService(_Base):
    id = Identifier(required=True)
    href = fields.String()


class ThresholdRef(_Base):
    id = Identifier(required=True)
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


class Alarm(_Base):
    id = Identifier(required=True)
    href = fields.String()
    alarmType = fields.String(required=True)
    perceivedSeverity = fields.String(required=True)
    state = fields.String(required=True)
    probableCause = fields.String()
    specificProblem = fields.String()
    alarmDetails = fields.String()
    alarmRaisedTime = DateTime(required=True)
    alarmClearedTime = DateTime()
    sourceSystemId = fields.String(required=True)
    reportingSystemId = fields.String()
    alarmedObjectType = fields.String()
    alarmedObject = fields.Nested(AlarmedObject, required=True)
    affectedService = fields.List(fields.Nested(AffectedService))
    crossedThresholdInformation = fields.Nested(CrossedThresholdInformation)


class AlarmPayload(_Base):
    alarm = fields.Nested(Alarm, required=True)


class AlarmEvent(Envelope):
    event = fields.Nested(AlarmPayload, required=True)


# TMF623 SLA Management v2 (SlaViolation)

class SlaRef(_Base):
    href = fields.String()
    description = fields.String()
    id = Identifier()  # extension: v2 SlaRef has href and description only
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
    date = DateTime(required=True)
    sla = fields.Nested(SlaRef)
    violation = fields.Nested(Violation, required=True)
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
    metric = fields.String(required=True)
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


def _flatten(messages, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            path = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(_flatten(value, path))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {' '.join(messages)}"]
    return [f"{prefix}: {messages}"]


def load(source: str, payload: dict) -> dict:
    """The typed notice of one source, or a 400 naming every wrong attribute by its path in the payload."""
    try:
        return SCHEMAS[source]().load(payload)
    except ValidationError as error:
        raise BadRequest("Invalid notification: " + "; ".join(sorted(_flatten(error.messages))),
                         code="invalidNotification") from None
