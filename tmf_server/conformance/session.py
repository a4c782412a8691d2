"""What every check works with: the client, its own unique marker, the reports it created, and assertions."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tmf_server.conformance import schema
from tmf_server.conformance.client import Client, Exchange

RESOURCE = "/serviceProblem"


class CheckFailed(Exception):
    def __init__(self, message: str, exchange: Exchange | None = None):
        super().__init__(message)
        self.exchange = exchange


class CheckSkipped(Exception):
    pass


@dataclass(frozen=True)
class Options:
    event_timeout: float = 30.0  # seconds to wait for a notification
    quiet_period: float = 3.0  # seconds without a notification that show an unsubscribe took effect
    callback_host: str = "127.0.0.1"
    callback_port: int = 0
    callback_url: str | None = None
    skip_hub: bool = False


@dataclass
class Session:
    """One check's view of the server. Every report it creates is deleted again by `clean_up`."""

    client: Client
    options: Options
    marker: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- assertions -------------------------------------------------------------------------------------
    def expect(self, condition: bool, message: str, exchange: Exchange | None = None) -> None:
        if not condition:
            raise CheckFailed(message, exchange or self.client.last)

    def expect_status(self, exchange: Exchange, *statuses: int) -> None:
        if exchange.status in statuses:
            return
        wanted = " or ".join(str(s) for s in statuses)
        raise CheckFailed(f"expected {wanted}, got {got(exchange)}", exchange)

    def expect_json(self, exchange: Exchange, kind: type) -> Any:
        body = exchange.json
        self.expect(isinstance(body, kind), f"expected a JSON {'array' if kind is list else 'object'} body, got "
                                            f"{_describe(exchange.text)}", exchange)
        media_type = (exchange.header("Content-Type") or "").split(";")[0].strip().lower()
        self.expect(media_type == "application/json" or media_type.endswith("+json"),
                    f"a JSON body was labelled Content-Type {exchange.header('Content-Type')!r}, not application/json",
                    exchange)
        return body

    def expect_valid(self, definition: str, instance: Any, exchange: Exchange, what: str) -> None:
        problems = schema.violations(definition, instance)
        if isinstance(instance, dict):
            problems += [f"{name}: not an attribute of {definition}"
                         for name in schema.undefined_attributes(definition, instance)]
        self.expect(not problems, f"{what} is not a valid TMF656 v4 {definition}: " + "; ".join(problems[:10]),
                    exchange)

    def expect_tmf_error(self, exchange: Exchange, *statuses: int) -> None:
        self.expect_status(exchange, *statuses)
        body = self.expect_json(exchange, dict)
        self.expect_valid("Error", body, exchange, f"the {exchange.status} body")

    def expect_header(self, exchange: Exchange, name: str) -> str:
        value = exchange.header(name)
        self.expect(value is not None, f"the {exchange.status} answer has no {name} header", exchange)
        return value

    def expect_ids(self, exchange: Exchange, expected: list[str], *, ordered: bool = False, what: str) -> None:
        self.expect_status(exchange, 200, 206)
        body = self.expect_json(exchange, list)
        got = [item.get("id") if isinstance(item, dict) else None for item in body]
        if ordered:
            self.expect(got == expected, f"{what}: expected ids in the order {expected}, got {got}", exchange)
            return
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        self.expect(not missing and not unexpected and len(got) == len(set(got)),
                    f"{what}: expected exactly {sorted(expected)}; missing {missing}, unexpected {unexpected}"
                    + ("" if len(got) == len(set(got)) else f", duplicates in {got}"), exchange)

    # -- resources --------------------------------------------------------------------------------------
    def problem_body(self, label: str = "a", **attributes) -> dict:
        """The mandatory attributes of ServiceProblem_Create, unique to this check, plus `attributes`."""
        body = {
            "category": f"conformance.{self.marker}",
            "priority": 5,
            "description": f"Conformance check {self.marker}: service degradation {label}",
            "reason": f"conformance-{self.marker}-{label}",
            "originatorParty": {"id": f"conformance-{self.marker}-{label}", "@referredType": "Organization",
                                "name": "TMF656 conformance kit"},
        }
        body.update(attributes)
        return {k: v for k, v in body.items() if v is not None}

    def create(self, body: dict) -> dict:
        """POST the body, require a 201 with an id, and remember the report for cleaning up."""
        exchange = self.client.post(RESOURCE, body)
        if exchange.status == 201 and isinstance(exchange.json, dict) and exchange.json.get("id"):
            self.created.append(str(exchange.json["id"]))
        if exchange.status != 201:
            raise CheckFailed(f"could not create a service problem to check with: expected 201, got "
                              f"{got(exchange)}", exchange)
        created = self.expect_json(exchange, dict)
        self.expect(isinstance(created.get("id"), str) and created["id"] != "",
                    "the created service problem has no id", exchange)
        return created

    def path_of(self, problem_id: str) -> str:
        return f"{RESOURCE}/{problem_id}"

    def forget(self, problem_id: str) -> None:
        if problem_id in self.created:
            self.created.remove(problem_id)

    def clean_up(self) -> None:
        for problem_id in self.created:
            exchange = self.client.delete(self.path_of(problem_id))
            if exchange.status not in (200, 202, 204, 404):
                self.notes.append(f"cleanup: {exchange.summary()}")
        self.created.clear()


def got(exchange: Exchange) -> str:
    """What came back, for a message: the status and the error's reason, or why nothing came back."""
    if exchange.status is None:
        return f"no answer ({exchange.transport_error})"
    return f"{exchange.status}{_error_hint(exchange)}"


def _error_hint(exchange: Exchange) -> str:
    body = exchange.json
    if isinstance(body, dict) and (body.get("reason") or body.get("message")):
        return f" ({body.get('reason', '')}: {body.get('message', '')})".replace(": )", ")")
    return ""


def _describe(text: str) -> str:
    if not text:
        return "an empty body"
    return repr(text[:120]) + ("..." if len(text) > 120 else "")
