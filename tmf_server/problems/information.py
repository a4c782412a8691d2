"""When a customer QoS degradation report is actionable, and what it lacks otherwise (eTOM 1.3.8.4).

A report is actionable when it names the customer, the affected product or service, the symptom or metric
and the time window. Each missing item is named by the path a client fills to supply it.
"""
from __future__ import annotations

CUSTOMER = "relatedParty[role=customer]"
PRODUCT_OR_SERVICE = "affectedService"
METRIC = "characteristic[name=metric]"
TIME_WINDOW = "characteristic[name=degradationStart]"
PRODUCT_TYPES = ("product", "productoffering", "service")
REQUIRED_PREFIX = "information required: "


def _characteristic(report: dict, name: str) -> bool:
    return any(c.get("name") == name and c.get("value") not in (None, "") for c in report.get("characteristic", []))


def missing_information(report: dict) -> list[str]:
    missing = []
    if not any(str(p.get("role", "")).lower() == "customer" for p in report.get("relatedParty", [])):
        missing.append(CUSTOMER)
    names_product = any(str(e.get("@referredType", "")).lower() in PRODUCT_TYPES
                        or str(e.get("role", "")).lower() in PRODUCT_TYPES for e in report.get("relatedEntity", []))
    if not report.get("affectedService") and not names_product:
        missing.append(PRODUCT_OR_SERVICE)
    if not _characteristic(report, "metric") and not _characteristic(report, "symptom"):
        missing.append(METRIC)
    if not _characteristic(report, "degradationStart"):
        missing.append(TIME_WINDOW)
    return missing


def awaiting_information(report: dict) -> bool:
    """Whether the report is pending because information was missing (not pending for another reason)."""
    return report.get("status") == "pending" and str(report.get("statusChangeReason", "")).startswith(REQUIRED_PREFIX)
