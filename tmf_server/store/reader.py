"""Reads of one collection for the TMF630 list and retrieve operations (id, filter, sort, page, count)."""
from __future__ import annotations


class CollectionReader:
    def __init__(self, db, name: str):
        self.db = db
        self.name = name
        self.collection = db[name]

    def get(self, resource_id: str, projection: dict | None = None) -> dict | None:
        return self.collection.find_one({"_id": resource_id}, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None,
             max_time_ms: int | None = None) -> list[dict]:
        """`max_time_ms`: the query budget MongoDB enforces (the embedded engine ignores it; the query
        translator bounds what it is sent instead)."""
        cursor = self.collection.find(filter_, projection).sort(list(sort)).skip(offset).limit(limit)
        return list(cursor.max_time_ms(max_time_ms) if max_time_ms else cursor)

    def count(self, filter_: dict, max_time_ms: int | None = None) -> int:
        # The count command, not count_documents: the embedded engine runs the latter's aggregation slowly.
        budget = {"maxTimeMS": max_time_ms} if max_time_ms else {}
        return int(self.db.command("count", self.name, query=filter_, **budget)["n"])
