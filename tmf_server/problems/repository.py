"""ServiceProblem documents in MongoDB (pymongo only here)."""
from __future__ import annotations


from tmf_server.store.database import SERVICE_PROBLEMS


class ServiceProblemRepository:
    def __init__(self, db):
        self.db = db
        self.collection = db[SERVICE_PROBLEMS]

    def insert(self, document: dict) -> None:
        self.collection.insert_one(document)

    def get(self, problem_id: str, projection: dict | None = None) -> dict | None:
        return self.collection.find_one({"_id": problem_id}, projection)

    def find(self, filter_: dict, sort, offset: int, limit: int, projection: dict | None = None) -> list[dict]:
        cursor = self.collection.find(filter_, projection).sort(list(sort)).skip(offset).limit(limit)
        return list(cursor)

    def count(self, filter_: dict) -> int:
        # The count command, not count_documents: the embedded engine runs the latter's aggregation slowly.
        return int(self.db.command("count", SERVICE_PROBLEMS, query=filter_)["n"])

    def replace(self, document: dict, expected_version: int) -> bool:
        """Writes `document` only if the stored one still has `expected_version` (optimistic locking)."""
        result = self.collection.replace_one({"_id": document["_id"], "_version": expected_version}, document)
        return result.matched_count == 1

    def delete(self, problem_id: str, expected_version: int | None = None) -> bool:
        query = {"_id": problem_id}
        if expected_version is not None:
            query["_version"] = expected_version
        return self.collection.delete_one(query).deleted_count == 1
