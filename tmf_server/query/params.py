"""Splits a raw query string into TMF630 filter terms, keeping symbolic operators (>=, <, !=) intact."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

from tmf_server.errors import BadRequest

SUFFIX_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "regex")
SYMBOLS = {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_SYMBOL_START = "=!<>"


@dataclass(frozen=True)
class Term:
    name: str  # attribute path, possibly ending with an operator suffix
    symbol: str  # the symbolic operator that separated name and value
    value: str


def split_query_string(raw: str) -> list[Term]:
    """`a=v`, `a.gte=v`, `a>=v`, `a<v`, `a!=v`, with or without the operator percent-encoded."""
    terms = []
    for item in raw.split("&"):
        if not item:
            continue
        raw_name, has_equals, raw_value = item.partition("=")
        name = unquote_plus(raw_name)
        value = unquote_plus(raw_value) if has_equals else None
        cut = next((i for i, ch in enumerate(name) if ch in _SYMBOL_START), None)
        if cut is None:
            if value is None:
                raise BadRequest(f"Query parameter '{name}' has no value.", code="invalidQuery")
            symbol = "="
        else:
            rest = name[cut:] + ("=" + value if value is not None else "")
            name = name[:cut]
            symbol = rest[:2] if rest[:2] in SYMBOLS else rest[:1]
            if symbol not in SYMBOLS:
                raise BadRequest(f"'{rest[:2]}' in '{unquote_plus(item)}' is not an operator; use one of "
                                 f"{', '.join(SYMBOLS)}.", code="invalidQuery")
            value = rest[len(symbol):]
        if not name:
            raise BadRequest(f"Query parameter '{unquote_plus(item)}' has no name.", code="invalidQuery")
        terms.append(Term(name, symbol, value))
    return terms
