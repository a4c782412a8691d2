"""A benchmark harness for TMF656 servers: `tmf-server bench BASE_URL` (any server, known only by its URL) and
`tmf-server bench --local` (`make bench`: the embedded engine measured raw, then this server on it).

The load comes from one process, one thread: a minimal asyncio HTTP/1.1 client keeping N connections alive,
each sending requests back to back, so that the generator takes little of the CPU it shares with the server.
docs/performance.md describes the scenarios, the ratios and the targets.
"""
