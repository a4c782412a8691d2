"""Intake of customer QoS degradation notifications (eTOM 1.3.8.4 Create Customer QoS Performance Degradation
Report): TMF621 trouble ticket events, TMF642 alarm events, TMF623 SLA violations and TMF688 events become
ServiceProblems (docs/intake.md).

- `schemas`: marshmallow reading of a notification into typed values (what cannot be read is left out and named)
- `sources`: one converter module per source behind one interface (`sources.base.Source`)
- `conversion`: what the converters share: Context, Conversion, the ReportDraft value object and `assemble`
- `relevance`: the configurable QoS rule of trouble tickets
- `priority`: the configurable priority and impact rule
- `merge`: pure changes of reports (append a notification, record a clearing or a finished source, group)
- `repository`: the only pymongo code of the intake (received events, locks, open-report searches)
- `service`: IntakeService, which stores first, then converts, writes ServiceProblems only through
  ServiceProblemService, and sweeps records a crash left `received`
"""
from tmf_server.intake.repository import INTAKE_EVENTS, ensure_indexes
from tmf_server.intake.service import IntakeService

__all__ = ["INTAKE_EVENTS", "IntakeService", "ensure_indexes"]
