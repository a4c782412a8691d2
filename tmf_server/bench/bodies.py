"""What the benchmark sends: report bodies, trouble ticket notifications, and the request targets."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tmf_server.bench.load import Request
from tmf_server.bench.wire import Origin, encode

API_SUFFIX = "/tmf-api/serviceProblemManagement/v4"
CUSTOMERS = 100  # the seeded population's customers C0..C99: each on 1 % of the seeded reports
PRIORITIES = 5  # seeded priorities 1..5
METRIC = "downlinkThroughput"
DEGRADATION_START = "2026-11-20T18:00:00Z"
MERGE_PATCH = "application/merge-patch+json"


def intake_url_for(base_url: str) -> str:
    """The intake base next to a TMF656 base: the same root + /intake."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path
    root_path = path[: -len(API_SUFFIX)] if path.endswith(API_SUFFIX) else ""
    return f"{parts.scheme}://{parts.netloc}{root_path}/intake"


@dataclass
class Target:
    """The server under test, known only by its TMF656 base URL (and the intake base)."""

    base_url: str
    intake_url: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.intake_url = self.intake_url.rstrip("/")
        self.api_origin = Origin.of(self.base_url)
        self.intake_origin = Origin.of(self.intake_url)
        self._api_path = urlsplit(self.base_url).path
        self._intake_path = urlsplit(self.intake_url).path

    def api(self, method: str, target: str, body: dict | list | None = None,
            content_type: str = "application/json") -> Request:
        """A request to the TMF656 API; `target` is relative to the base, e.g. /serviceProblem?limit=20."""
        return self._request(self.api_origin, self._api_path, method, target, body, content_type)

    def intake(self, method: str, target: str, body: dict | None = None) -> Request:
        return self._request(self.intake_origin, self._intake_path, method, target, body, "application/json")

    def _request(self, origin: Origin, prefix: str, method: str, target: str, body, content_type: str) -> Request:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        path = prefix + target
        return Request(origin, method, encode(origin, method, path, data, content_type, self.headers),
                       f"{method} {origin.scheme}://{origin.host_header}{path}")


def report(index: int, label: str, *, complete: bool = True, reason: str = "throughput degradation") -> dict:
    """A customer QoS degradation report (the README's first create example). Complete, it names the customer,
    the service, the metric and the degradation start, so the server acknowledges it; without the start it is
    pending (information required). Customer C{index % 100}, priority 1..5 independent of the customer."""
    customer = f"C{index % CUSTOMERS}"
    characteristic = [{"name": "metric", "value": METRIC}, {"name": "observedValue", "value": "120"},
                      {"name": "threshold", "value": "500"}, {"name": "unit", "value": "Mbit/s"}]
    if complete:
        characteristic.append({"name": "degradationStart", "value": DEGRADATION_START})
    return {
        "category": "customer.qosDegradation",
        "priority": 1 + (index // CUSTOMERS) % PRIORITIES,
        "description": f"Broadband throughput far below the contracted rate every evening ({label})",
        "reason": reason,
        "originatorParty": {"id": customer, "@referredType": "Individual"},
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Individual"}],
        "affectedService": [{"id": f"svc-broadband-{customer}", "name": "Fibre 500"}],
        "characteristic": characteristic,
    }


def seeded_report(index: int, marker: str) -> dict:
    """The seeded population: one report in 7 lacks its degradation start (pending), the others are
    acknowledged, so status=acknowledged&priority.lte=2 selects about a third of it."""
    return report(index, f"bench {marker} seed {index}", complete=index % 7 != 3)


def ticket_event(*, event_id: str, ticket_id: str, customer: str, product: str) -> dict:
    """A TMF621 TroubleTicketCreateEvent (the README's intake example): customer, product, metric and start."""
    return {
        "eventId": event_id, "eventTime": "2026-11-21T08:00:00Z", "eventType": "TroubleTicketCreateEvent",
        "event": {"troubleTicket": {
            "id": ticket_id,
            "description": "Throughput far below the contracted 500 Mbit/s every evening",
            "severity": "Major", "ticketType": "complaint",
            "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Individual"}],
            "relatedEntity": [{"id": product, "role": "impactedProduct", "@referredType": "Product"}],
            "troubleTicketCharacteristic": [
                {"name": "metric", "value": METRIC}, {"name": "observedValue", "value": "120"},
                {"name": "threshold", "value": "500"}, {"name": "unit", "value": "Mbit/s"},
                {"name": "degradationStart", "value": DEGRADATION_START}]}}}

