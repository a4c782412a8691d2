"""Options shared by the commands that talk to a server by its URL (conformance, bench)."""
from __future__ import annotations


def header_options(values: list[str], parser_error) -> dict[str, str]:
    """`--header 'Name: value'` options (repeatable) as a header dict; a malformed one is a usage error."""
    headers = {}
    for header in values:
        name, separator, value = header.partition(":")
        if not separator or not name.strip():
            parser_error(f"--header must look like 'Name: value', not {header!r}")
        headers[name.strip()] = value.strip()
    return headers
