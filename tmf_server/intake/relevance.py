"""Whether a trouble ticket is about a QoS degradation (docs/intake.md, "What real systems send"): a documented,
configurable rule, as alarms have theirs (alarmType Quality of Service). A ticket is a QoS degradation when
- it carries a QoS symptom characteristic (metric, observedValue, threshold or degradationStart), or
- its ticketType (older systems: type), category, specification name or name, or the name of one of its
  characteristics, contains one of the QoS words (TMF_INTAKE_QOS_TICKET_WORDS; whole words, any case).
Free text (description, notes) is not read: a bill dispute describes the outage that motivated it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

SYMPTOM_NAMES = ("metric", "observedValue", "threshold", "degradationStart")
DEFAULT_WORDS = ("qos", "quality of service", "service quality", "performance", "degradation", "degraded", "slow",
                 "slowness", "latency", "delay", "jitter", "packet loss", "throughput", "bandwidth", "speed",
                 "buffering", "dropped calls", "call drop", "voice quality", "video quality", "availability")


def parse_words(text: str | None) -> tuple[str, ...]:
    """The configured words (comma-separated), or the defaults; an empty list is refused at start-up."""
    if text is None:
        return DEFAULT_WORDS
    words = tuple(w.strip().lower() for w in text.split(",") if w.strip())
    if not words:
        raise ValueError("TMF_INTAKE_QOS_TICKET_WORDS names no word; leave it unset for the defaults")
    return words


@dataclass(frozen=True)
class TicketRelevance:
    words: tuple[str, ...] = DEFAULT_WORDS

    @classmethod
    def from_settings(cls, settings) -> TicketRelevance:
        return cls(parse_words(settings.intake_qos_ticket_words))

    @cached_property
    def _pattern(self) -> re.Pattern:
        return re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(w).replace(r"\ ", r"[\s_-]*") for w in self.words)
                          + r")(?![a-z0-9])")

    def not_qos(self, ticket: dict, symptoms: dict) -> str | None:
        """None when the ticket is a QoS degradation, else the reason it is not."""
        if any(symptoms.get(name) not in (None, "") for name in SYMPTOM_NAMES):
            return None
        pattern = self._pattern
        characteristic_names = [c.get("name") for c in (ticket.get("troubleTicketCharacteristic") or [])
                                + (ticket.get("characteristic") or [])]
        texts = [ticket.get("ticketType"), ticket.get("type"), ticket.get("category"),
                 (ticket.get("troubleTicketSpecification") or {}).get("name"), ticket.get("name"),
                 *characteristic_names]
        # camelCase names (packetLoss, downlinkThroughput) are read as words
        if any(pattern.search(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(t)).lower()) for t in texts if t):
            return None
        kind = ticket.get("ticketType") or ticket.get("type")
        return ("not a QoS degradation: " + (f"ticketType '{kind}'" if kind else "a ticket")
                + " with no QoS symptom (metric, observed value, threshold, degradation start) and no QoS word in its "
                "type, category, specification, name or characteristics")
