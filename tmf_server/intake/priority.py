"""Priority and impact of a customer QoS degradation report: one documented, configurable rule (docs/intake.md).

    urgency  <- the customer's SLA tier   (platinum, gold, silver, bronze; unknown -> the default tier)
    impact   <- the severity of the notification (critical, major, minor, warning; see `impact_of`)
    priority <- MATRIX[tier][impact], 1 (highest) .. 10 (lowest)
    impactImportanceFactor <- str(110 - 10 * priority)   ("100" for priority 1 .. "10" for priority 10)

The matrix and the default tier come from Settings (`intake_priority_matrix`, `intake_default_tier`, read from
TMF_INTAKE_PRIORITY_MATRIX and TMF_INTAKE_DEFAULT_TIER by tmf_server/settings.py); the table below is the default.
Later notifications may raise a report's priority (a lower number), never lower it (`raise_only`).
"""
from __future__ import annotations

from dataclasses import dataclass

TIERS = ("platinum", "gold", "silver", "bronze")
IMPACTS = ("critical", "major", "minor", "warning")
DEFAULT_TIER = "bronze"
DEFAULT_IMPACT = "minor"  # a severity the rule does not know (e.g. X.733 indeterminate, free text in a ticket)
BREACHED_TARGET_IMPACT = "major"  # an SLA violation: a contractual target was breached

#                 critical major minor warning
DEFAULT_MATRIX = {
    "platinum": (1, 2, 4, 6),
    "gold": (2, 3, 5, 7),
    "silver": (3, 5, 6, 8),
    "bronze": (4, 6, 8, 10),
}
# The same table in the form TMF_INTAKE_PRIORITY_MATRIX takes.
DEFAULT_MATRIX_TEXT = ";".join(f"{tier}={','.join(map(str, row))}" for tier, row in DEFAULT_MATRIX.items())

# Words a source may use for a severity, and the impact they mean.
_SEVERITY_WORDS = {
    "critical": "critical", "major": "major", "minor": "minor", "warning": "warning",
    "high": "major", "medium": "minor", "low": "warning",
}


def parse_matrix(text: str) -> dict[str, tuple[int, ...]]:
    """'platinum=1,2,4,6;gold=2,3,5,7;silver=3,5,6,8;bronze=4,6,8,10' (columns: critical, major, minor, warning).

    Tiers may be added or left out (a tier left out keeps its default row); every value is 1..10."""
    matrix = dict(DEFAULT_MATRIX)
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        tier, _, values = part.partition("=")
        tier = tier.strip().lower()
        try:
            row = tuple(int(v) for v in values.split(","))
        except ValueError:
            raise ValueError(f"priority matrix: the row of '{tier}' must be four integers: {values!r}") from None
        if not tier or len(row) != len(IMPACTS) or not all(1 <= v <= 10 for v in row):
            raise ValueError(f"priority matrix: '{part}' must be TIER=critical,major,minor,warning with values 1..10")
        matrix[tier] = row
    return matrix


def normalise_tier(value) -> str | None:
    text = str(value).strip().lower() if value is not None else ""
    return text or None


def impact_of(severity) -> str:
    """critical/major/minor/warning from a source's severity word (case-insensitive); others -> minor."""
    word = str(severity).strip().lower() if severity is not None else ""
    return _SEVERITY_WORDS.get(word, DEFAULT_IMPACT)


@dataclass(frozen=True)
class Assessment:
    tier: str
    impact: str
    urgency: int  # 1 (platinum, or the first row of the matrix) ..
    priority: int
    impact_importance_factor: str

    def impact_pattern(self, metric: str | None) -> dict:
        return {
            "description": f"{self.impact} impact on {metric or 'service quality'} for a {self.tier} customer",
            "characteristic": [
                {"name": "slaTier", "value": self.tier},
                {"name": "impact", "value": self.impact},
                {"name": "urgency", "value": self.urgency},
            ],
        }


class PriorityRule:
    def __init__(self, matrix: dict[str, tuple[int, ...]] | None = None, default_tier: str = DEFAULT_TIER):
        self.matrix = dict(matrix or DEFAULT_MATRIX)
        self.default_tier = normalise_tier(default_tier) or DEFAULT_TIER
        if self.default_tier not in self.matrix:
            raise ValueError(f"the default SLA tier '{default_tier}' is not in the priority matrix "
                             f"({', '.join(self.matrix)})")

    @classmethod
    def from_settings(cls, settings) -> PriorityRule:
        """Settings fields `intake_priority_matrix` (text, see parse_matrix) and `intake_default_tier`; the
        defaults of this module while the fields are absent."""
        text = getattr(settings, "intake_priority_matrix", None)
        return cls(parse_matrix(text) if text else None, getattr(settings, "intake_default_tier", None) or DEFAULT_TIER)

    def tier(self, value) -> str:
        tier = normalise_tier(value)
        return tier if tier in self.matrix else self.default_tier

    def assess(self, tier, impact: str) -> Assessment:
        tier = self.tier(tier)
        impact = impact if impact in IMPACTS else DEFAULT_IMPACT
        priority = self.matrix[tier][IMPACTS.index(impact)]
        urgency = sorted(self.matrix, key=lambda t: self.matrix[t])  # the most urgent row first
        return Assessment(tier, impact, urgency.index(tier) + 1, priority, str(110 - 10 * priority))


def raise_only(current: int | None, proposed: int) -> int:
    """A later notification may raise the priority (a lower number), never lower it."""
    return proposed if current is None else min(current, proposed)
