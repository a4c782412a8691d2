"""HTTP to the server under test; every exchange is kept so that a failure can show the request behind it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

BODY_SHOWN = 4000  # characters of a body kept in a report
# Credentials given with --header never reach a report.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "apikey"})


@dataclass
class Exchange:
    """One request and what came back (or why nothing did)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    text: str = ""
    transport_error: str | None = None

    @property
    def json(self) -> Any:
        """The decoded body, or None when there is none or it is not JSON."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def as_report(self) -> dict:
        return {
            "request": {"method": self.method, "url": self.url, "headers": _redacted(self.request_headers),
                        "body": _shorten(self.request_body)},
            "response": None if self.status is None else {"status": self.status, "headers": self.headers,
                                                          "body": _shorten(self.text)},
            "transportError": self.transport_error,
        }

    def summary(self) -> str:
        answer = f"{self.status}" if self.status is not None else f"no answer ({self.transport_error})"
        return f"{self.method} {self.url} -> {answer}"


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    return {name: "[redacted]" if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= BODY_SHOWN:
        return text
    return text[:BODY_SHOWN] + f"... ({len(text) - BODY_SHOWN} more characters)"


class Client:
    """Requests relative to the API base URL; `last` is the most recent exchange."""

    def __init__(self, base_url: str, *, timeout: float, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.extra_headers = dict(headers or {})
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.last: Exchange | None = None

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(self, method: str, path: str, *, json_body: Any = None, content: str | bytes | None = None,
                content_type: str | None = None, params: dict | None = None, anonymous: bool = False) -> Exchange:
        """`anonymous`: without the --header / token headers (to see that the server refuses such a request)."""
        headers = {"Accept": "application/json", **({} if anonymous else self.extra_headers)}
        if json_body is not None:
            content = json.dumps(json_body)
            content_type = content_type or "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = self._http.build_request(method, self.url(path), params=params, content=content, headers=headers)
        body_text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        exchange = Exchange(method, str(request.url), headers, body_text)
        try:
            response = self._http.send(request)
            exchange.status = response.status_code
            exchange.headers = {k.lower(): v for k, v in response.headers.items()}
            exchange.text = response.text
        except httpx.HTTPError as exc:
            exchange.transport_error = f"{type(exc).__name__}: {exc}"
        self.last = exchange
        return exchange

    def get(self, path: str, **params) -> Exchange:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Exchange:
        return self.request("POST", path, json_body=body)

    def patch(self, path: str, body: Any, content_type: str) -> Exchange:
        return self.request("PATCH", path, json_body=body, content_type=content_type)

    def delete(self, path: str) -> Exchange:
        return self.request("DELETE", path)
