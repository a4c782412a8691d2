"""The one small interface of a source converter."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tmf_server.intake.conversion import Context, Conversion
from tmf_server.intake.relevance import TicketRelevance
from tmf_server.intake.schemas import Notice


@dataclass(frozen=True)
class Rules:
    """The configurable rules a converter applies (docs/intake.md)."""

    ticket_relevance: TicketRelevance = field(default_factory=TicketRelevance)


@dataclass(frozen=True)
class Source:
    name: str  # troubleTicket, alarm, slaViolation, event: the record ids' prefix
    default_system: str  # originatingSystem when the notification names none
    convert: Callable[[Notice, Context, Rules], Conversion]
