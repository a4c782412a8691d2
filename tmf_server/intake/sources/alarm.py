"""TMF642 alarm events (v4.0.0; the v5 shapes too) -> a system-originated report (docs/intake.md)."""
from __future__ import annotations

from tmf_server.intake.conversion import (CLEARED, DEGRADATION, REJECTED, SYSTEM_ORIGINATED, UPDATE, Context,
                                          Conversion, ReportDraft, Subjects, Symptom, assemble, characteristics,
                                          clean, customer_of, direction_of, href, sentence, squash, system_of,
                                          system_party, when)
from tmf_server.intake.priority import impact_of
from tmf_server.intake.schemas import Notice, measure
from tmf_server.intake.sources.base import Rules, Source

NAME = "alarm"
DEFAULT_SYSTEM = "alarmManagement"
CREATE = "AlarmCreateEvent"
QOS_ALARM_TYPES = frozenset({"qualityofservicealarm"})  # X.733 "Quality of Service Alarm", any spacing/case


def is_qos_alarm(alarm: dict) -> bool:
    """alarmType Quality of Service Alarm; an alarm that names no type is one when it carries the threshold it
    crossed (X.733 threshold crossings are QoS alarms)."""
    if alarm.get("alarmType"):
        return squash(alarm["alarmType"]) in QOS_ALARM_TYPES
    return bool(alarm.get("crossedThresholdInformation"))


def alarm_cleared(alarm: dict) -> bool:
    """TMF642: a cleared alarm has state `cleared`; its perceivedSeverity is then set to `cleared` too (some emitters
    write CLEAR)."""
    return squash(alarm.get("state")) == "cleared" or squash(alarm.get("perceivedSeverity")) in ("cleared", "clear")


def _not_qos(alarm: dict) -> str:
    if alarm.get("alarmType"):
        return f"not a QoS degradation: alarmType '{alarm['alarmType']}' is not a Quality of Service Alarm"
    return "not a QoS degradation: the alarm names no alarmType and no crossed threshold"


def convert(notice: Notice, ctx: Context, rules: Rules) -> Conversion:
    values = notice.values
    alarm = values["event"]["alarm"]
    cleared = alarm_cleared(alarm)
    kind = CLEARED if cleared else (DEGRADATION if values["eventType"] == CREATE else UPDATE)
    # A change or a clearing may carry only what changed: without an alarmType it is matched to its alarm's report.
    if not is_qos_alarm(alarm) and (kind == DEGRADATION or alarm.get("alarmType")):
        return Conversion(NAME, values["eventId"], values["eventType"], REJECTED, reason=_not_qos(alarm),
                          alarm_id=alarm["id"], shape=notice.shape)
    crossed = alarm.get("crossedThresholdInformation") or {}
    threshold_ref = crossed.get("threshold") or {}
    chars = characteristics(values.get("analyticCharacteristic"))
    subjects = Subjects()
    for service in alarm.get("affectedService") or ():
        subjects.service(service)
    subjects.source(values.get("source"))
    if threshold_ref:
        subjects.entity(threshold_ref, "crossedThreshold", "Threshold")
    for place in alarm.get("place") or ():
        subjects.entity(place, "place", place.get("referredType") or place.get("type") or "Place")
    system = system_of(values, alarm.get("sourceSystemId"), alarm.get("reportingSystemId"), default=DEFAULT_SYSTEM)
    metric = crossed.get("indicatorName") or chars.get("metric")
    observed = crossed.get("observedValue") if crossed.get("observedValue") is not None else \
        measure(chars.get("observedValue"))
    threshold = threshold_ref.get("name") or threshold_ref.get("id") or measure(chars.get("threshold"))
    unit = crossed.get("indicatorUnit") or chars.get("unit")
    direction = direction_of(crossed.get("direction") or chars.get("direction"), observed, threshold)
    obj = alarm.get("alarmedObject")
    resources = [clean({"id": obj["id"], "href": href(obj.get("href")),
                        "@referredType": alarm.get("alarmedObjectType") or obj.get("referredType") or "Resource"})
                 ] if obj else []
    head = f"Quality of Service Alarm {alarm['id']}" + (f" on {obj['id']}" if obj else "")
    if metric:
        measured = " ".join(str(v) for v in (metric, observed, unit) if v not in (None, ""))
        head += f": {measured}" + (f" crossed threshold {threshold}" if threshold else "") + \
            (f" ({direction})" if direction else "")
    draft = ReportDraft(
        kind=kind, category=SYSTEM_ORIGINATED, system=system, originator=system_party(system),
        description=sentence(head, alarm.get("specificProblem"), alarm.get("alarmDetails"),
                             crossed.get("thresholdCrossingDescription")),
        reason=alarm.get("probableCause") or (f"{metric} threshold crossed" if metric else "QoS threshold crossed"),
        first_alert=clean({"id": alarm["id"], "href": href(alarm.get("href")), "name": alarm.get("specificProblem"),
                           "role": "firstAlert", "@referredType": "Alarm"}),
        impact=impact_of(alarm.get("perceivedSeverity")),
        severity_given=bool(alarm.get("perceivedSeverity")) and not cleared,
        customer=customer_of(values.get("relatedParty")),
        parties=[p for p in values.get("relatedParty") or () if squash(p.get("role")) != "customer"],
        subjects=subjects,
        symptom=Symptom(metric, observed, threshold, unit, direction, when(alarm.get("alarmRaisedTime"))),
        tier_candidates=[chars.get("slaTier")],
        references={"underlyingAlarm": [clean({"id": alarm["id"], "href": href(alarm.get("href")),
                                               "@referredType": "Alarm"})]},
        external=[{"id": alarm["id"], "owner": system, "externalIdentifierType": "Alarm"}],
        resources=resources,
        group_keys=[f"alarm:{alarm['id']}"] + ([f"resource:{obj['id']}"] if obj else []),
        alarm_id=alarm["id"], shape=notice.shape)
    conversion = assemble(NAME, values, ctx, draft)
    if cleared:
        conversion.reason = f"alarm {alarm['id']} cleared at " + \
            (when(alarm.get("alarmClearedTime")) or when(values.get("eventTime")) or ctx.received_at)
    return conversion


SOURCE = Source(NAME, DEFAULT_SYSTEM, convert)
