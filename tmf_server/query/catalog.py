"""What the served schema says about an attribute path: its type and where it crosses arrays."""
from __future__ import annotations

from dataclasses import dataclass

from tmf_server.errors import BadRequest
from tmf_server.store.instants import instant_field


@dataclass(frozen=True)
class Attribute:
    """A resolved dotted path. `groups` splits the path where it enters an array of objects."""

    path: str
    groups: tuple[tuple[str, ...], ...]
    type: str  # string, integer, number, boolean, date-time, any, object, array
    enum: tuple | None = None
    instant_field: str | None = None  # where the store keeps this date-time as epoch milliseconds (store/instants.py)

    @property
    def crosses_array(self) -> bool:
        return len(self.groups) > 1

    @property
    def is_scalar(self) -> bool:
        return self.type not in ("object", "array")


class AttributeCatalog:
    """Resolves attribute paths of one resource schema in an OpenAPI document."""

    def __init__(self, spec: dict, schema_name: str, stored_under: str | None = None, instants=()):
        """`stored_under`: the sub-document in which the resource is stored (paths are prefixed with it).
        `instants`: top-level date-time attributes the store also keeps as epoch milliseconds."""
        self._schemas = spec["components"]["schemas"]
        self.schema_name = schema_name
        self.stored_under = stored_under
        self.root = self._schemas[schema_name]
        self.top_level = frozenset(self.root["properties"])
        self.instants = frozenset(instants)
        wrong = sorted(self.instants - {path[0] for path in self.date_time_paths() if len(path) == 1})
        if wrong:
            raise ValueError(f"not top-level date-time attributes of {schema_name}: {', '.join(wrong)}")

    def _resolve(self, schema: dict) -> dict:
        while True:
            if "$ref" in schema:
                schema = self._schemas[schema["$ref"].rsplit("/", 1)[-1]]
            elif "allOf" in schema and len(schema["allOf"]) == 1:
                schema = schema["allOf"][0]
            else:
                return schema

    @staticmethod
    def _kind(schema: dict) -> str:
        if schema.get("type") == "string" and schema.get("format") == "date-time":
            return "date-time"
        if "type" in schema:
            return schema["type"]
        return "object" if "properties" in schema else "any"

    def lookup(self, path: str) -> Attribute:
        segments = path.split(".")
        if not all(segments):
            raise BadRequest(f"'{path}' is not a valid attribute path.", code="invalidQuery")
        groups: list[list[str]] = [[]]
        schema = self.root
        for position, segment in enumerate(segments):
            properties = schema.get("properties") or {}
            if segment not in properties:
                where = ".".join(segments[:position]) or self.schema_name
                raise BadRequest(f"'{path}' is not an attribute of {self.schema_name}: "
                                 f"{where} has no attribute '{segment}'.", code="invalidQuery")
            schema = self._resolve(properties[segment])
            groups[-1].append(segment)
            if schema.get("type") == "array" and position < len(segments) - 1:
                schema = self._resolve(schema.get("items", {}))
                groups.append([])
        kind = self._kind(schema)
        enum = tuple(schema["enum"]) if "enum" in schema else None
        if self.stored_under:
            groups[0].insert(0, self.stored_under)
        instant = instant_field(path) if path in self.instants else None
        return Attribute(path, tuple(tuple(g) for g in groups if g), kind, enum, instant)

    def date_time_paths(self) -> list[tuple[str, ...]]:
        """Every path (array levels included) whose value is a date-time, for normalising stored dates."""
        found: list[tuple[str, ...]] = []

        def walk(schema: dict, prefix: tuple[str, ...], seen: frozenset):
            schema = self._resolve(schema)
            if schema.get("type") == "array":
                walk(schema.get("items", {}), prefix, seen)
                return
            if self._kind(schema) == "date-time":
                found.append(prefix)
            for name, sub in (schema.get("properties") or {}).items():
                ref = sub.get("$ref") or (sub.get("items") or {}).get("$ref")
                if ref and ref in seen:
                    continue
                walk(sub, prefix + (name,), seen | ({ref} if ref else set()))

        walk(self.root, (), frozenset())
        return found
