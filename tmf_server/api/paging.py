"""TMF630 list responses: status 200/206, X-Total-Count, X-Result-Count and an RFC 8288 Link header."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode


def page_headers(url: str, raw_query: str, offset: int, limit: int, returned: int, total: int) -> tuple[int, dict]:
    status = 206 if offset + returned < total else 200
    others = [(k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True) if k not in ("offset", "limit")]

    def link(page_offset: int, rel: str) -> str:
        query = urlencode(others + [("offset", page_offset), ("limit", limit)])
        return f'<{url}?{query}>; rel="{rel}"'

    last = max(0, (total - 1) // limit * limit) if total else 0
    links = [link(offset, "self"), link(0, "first")]
    if offset > 0:
        links.append(link(max(0, offset - limit), "prev"))
    if offset + returned < total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(returned), "Link": ", ".join(links)}
    return status, headers
