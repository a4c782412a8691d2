"""The source converters, one module per source, behind one small interface (`base.Source`): a source names its
listener's records, its default originating system, and converts a read notification (schemas.Notice) into a
Conversion (tmf_server/intake/conversion.py).

- `trouble_ticket`: TMF621 v4 and v5 trouble ticket events
- `alarm`: TMF642 v4 alarm events (and the v5 shapes)
- `sla_violation`: a TMF623 v2 SlaViolation in a TMF event envelope
- `qos_event`: a TMF688 Event carrying the documented `qosDegradation`
"""
from __future__ import annotations

from tmf_server.intake.conversion import Context, Conversion
from tmf_server.intake.schemas import Notice
from tmf_server.intake.sources import alarm, qos_event, sla_violation, trouble_ticket
from tmf_server.intake.sources.base import Rules, Source

SOURCES: dict[str, Source] = {s.name: s for s in (trouble_ticket.SOURCE, alarm.SOURCE, sla_violation.SOURCE,
                                                  qos_event.SOURCE)}


def convert(source: str, notice: Notice, ctx: Context, rules: Rules | None = None) -> Conversion:
    return SOURCES[source].convert(notice, ctx, rules or Rules())


__all__ = ["SOURCES", "Rules", "Source", "convert"]
