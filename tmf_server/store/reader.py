"""Reads of one collection for the TMF630 list and retrieve operations (id, filter, sort, page, count)."""
from __future__ import annotations


class CollectionReader:
    def __init__(self, db, name: str):
        self.db = db
        self.name = name
        self.collection = db[name]

    def get(self, resource_id: str, projection: dict | None = None) -> dict | None:
        return self.collection.find_one({"_id": resource_id}, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None) -> list[dict]:
        return list(self.collection.find(filter_, projection).sort(list(sort)).skip(offset).limit(limit))

    def count(self, filter_: dict) -> int:
        # The count command, not count_documents: the embedded engine runs the latter's aggregation slowly.
        return int(self.db.command("count", self.name, query=filter_)["n"])
