"""marshmallow schemas: a received notification (already validated by Connexion against openapi/intake.yaml)
-> the typed values the conversion reads: date-times parsed, numeric measures as numbers, ids as strings.

Only the attributes the conversion reads are declared (field names as in the source documents); everything
else in a notification is kept in the stored raw event and otherwise ignored (`unknown = EXCLUDE`).
"""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from tmf_server.errors import BadRequest

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


class Identifier(fields.Field):
    """A string, or an integer as TMF642 v4 (Alarm.id) and TMF623 v2 (SlaViolation.id) declare ids: kept as text."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Not a valid identifier (a string or an integer).")
        text = str(value)
        if not text.strip():
            raise ValidationError("An identifier must not be empty.")
        return text


class Measure(fields.Field):
    """A measured or reference value: a number, or a string as TMF642 `observedValue` is. A string that is a
    number becomes the number (so that values compare); other text is kept as it is."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid measure (a number or a string).")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            if _NUMBER.fullmatch(value):
                number = float(value)
                return int(number) if number.is_integer() and abs(number) < 2**53 else number
            return value.strip()
        raise ValidationError("Not a valid measure (a number or a string).")


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class EntityRef(_Base):
    """EntityRef / RelatedEntity / ThresholdRef / AffectedService / ServiceRef: the reference attributes."""

    id = Identifier(required=True)
    href = fields.String()
    name = fields.String()
    role = fields.String()
    referredType = fields.String(data_key="@referredType")
    slaTier = fields.String()  # extension, on an SLA reference only (docs/intake.md)


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
    eventTime = fields.DateTime()
    timeOcurred = fields.DateTime()  # the TMF spelling
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
    creationDate = fields.DateTime()
    externalId = fields.String()
    relatedParty = fields.List(fields.Nested(Party))
    relatedEntity = fields.List(fields.Nested(EntityRef))
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
    alarmRaisedTime = fields.DateTime(required=True)
    alarmClearedTime = fields.DateTime()
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
    date = fields.DateTime(required=True)
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
    sla = fields.Nested(EntityRef)
    metric = fields.String(required=True)
    observedValue = Measure()
    threshold = Measure()
    unit = fields.String()
    direction = fields.String()
    degradationStart = fields.DateTime()
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
