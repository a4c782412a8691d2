"""The embedded engine's query planner gets statistics (SQL ANALYZE) while the data grows, so that it can tell a
selective index from one that is not; read back from the engine's SQLite file itself."""
from __future__ import annotations

import sqlite3

import pymongo

from tests.support.polling import wait_for
from tmf_server.store.embedded import EmbeddedEngine


def _status_index_rows(data_dir) -> int:
    """The row count SQLite's statistics give the index on `status` (0 while there are none)."""
    with sqlite3.connect(f"file:{data_dir / 'tmf656.db'}?mode=ro", uri=True) as connection:
        try:
            rows = connection.execute("SELECT stat FROM sqlite_stat1 WHERE idx LIKE '%status%'").fetchall()
        except sqlite3.OperationalError:  # no ANALYZE yet: the table does not exist
            return 0
    return int(rows[0][0].split()[0]) if rows else 0


def test_statistics_follow_the_growth_of_the_data(tmp_path):
    engine = EmbeddedEngine(tmp_path).start()
    client = pymongo.MongoClient(engine.uri)
    try:
        problems = client["tmf656"]["serviceProblem"]
        problems.create_index("status")
        problems.insert_many([{"status": ("acknowledged", "held")[i % 2]} for i in range(300)])
        engine.keep_statistics("tmf656", check_every=0.1)
        wait_for(lambda: _status_index_rows(tmp_path) == 300, message="statistics of 300 documents")

        problems.insert_many([{"status": "pending"} for _ in range(600)])
        wait_for(lambda: _status_index_rows(tmp_path) == 900, message="statistics refreshed at 900 documents")
    finally:
        client.close()
        engine.stop(timeout=3)
