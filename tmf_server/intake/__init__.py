"""Intake of customer QoS degradation notifications (eTOM 1.3.8.4 Create Customer QoS Performance Degradation
Report): TMF621 trouble ticket events, TMF642 alarm events, TMF623 SLA violations and TMF688 events become
ServiceProblems (docs/intake.md).

- `schemas`: marshmallow loading of a validated notification into typed values
- `convert`: the one conversion, a pure function per source, into a ServiceProblem_Create body
- `priority`: the configurable priority and impact rule
- `merge`: pure changes of reports (append a notification, record a clearing, group under a parent)
- `repository`: the only pymongo code of the intake (received events, locks, open-report searches)
- `service`: IntakeService, which stores first and writes ServiceProblems only through ServiceProblemService
"""
from tmf_server.intake.repository import INTAKE_EVENTS, INTAKE_LOCKS, ensure_indexes
from tmf_server.intake.service import IntakeService

__all__ = ["INTAKE_EVENTS", "INTAKE_LOCKS", "IntakeService", "ensure_indexes"]
