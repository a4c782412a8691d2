"""Walking JSON documents in tests."""
from __future__ import annotations


def paths(node, prefix: tuple = ()):
    """Every path in `node` (keys and list indexes), the empty path first, parents before their children."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))
