"""Checks every response against the served OpenAPI document: declared status, body schema, TMF Error shape."""
from __future__ import annotations

import re

import jsonschema

from tmf_server.app import load_spec
from tmf_server.settings import BASE_PATH


class Contract:
    def __init__(self):
        self.spec = load_spec()
        self.routes = []
        for template, item in self.spec["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(BASE_PATH + template))
            self.routes.append((re.compile(f"^{pattern}$"), template, item))

    def _validator(self, schema: dict) -> jsonschema.Draft4Validator:
        document = {"components": self.spec["components"], **schema}
        return jsonschema.Draft4Validator(document, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            kind, name = node["$ref"].split("/")[-2:]
            node = self.spec["components"][kind][name]
        return node

    def check(self, method: str, path: str, response) -> None:
        """Raises AssertionError when the response breaks the served contract."""
        status = response.status_code
        if status >= 400:
            self.check_error(response)
        route = next(((t, item) for rx, t, item in self.routes if rx.match(path)), None)
        if route is None:
            assert status >= 400, f"{method} {path}: {status} on a path the document does not declare"
            return
        template, item = route
        operation = item.get(method.lower())
        if operation is None:
            assert status == 405, f"{method} {template}: undeclared method answered {status}"
            return
        declared = operation["responses"]
        assert str(status) in declared, f"{method} {template}: status {status} not declared ({sorted(declared)})"
        spec_response = self._resolve(declared[str(status)])
        for header in spec_response.get("headers", {}):
            if header in ("Retry-After", "Link", "Location", "ETag", "X-Total-Count", "X-Result-Count"):
                assert header in response.headers, f"{method} {template} {status}: header {header} missing"
        content = spec_response.get("content")
        if not content:
            assert not response.content, f"{method} {template} {status}: body where none is declared"
            return
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        assert media in content, f"{method} {template} {status}: content type {media!r} not declared"
        self._validator(content[media]["schema"]).validate(response.json())

    def check_error(self, response) -> None:
        assert response.headers.get("Content-Type", "").startswith("application/json"), \
            f"error response is {response.headers.get('Content-Type')}, not JSON: {response.text[:200]}"
        body = response.json()
        self._validator({"$ref": "#/components/schemas/Error"}).validate(body)
        assert body["@type"] == "Error", body
        assert body["status"] == str(response.status_code), body
        assert body["message"], body
