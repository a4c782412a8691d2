"""Splits a raw query string into TMF630 filter terms, keeping symbolic operators (>=, <, !=) intact."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

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
    terms = []
    for item in raw.split("&"):
        if not item:
            continue
        cut = next((i for i, ch in enumerate(item) if ch in _SYMBOL_START), None)
        if cut is None:
            raise BadRequest(f"Query parameter '{unquote_plus(item)}' has no value.", code="invalidQuery")
        symbol = item[cut:cut + 2] if item[cut:cut + 2] in SYMBOLS else item[cut]
        if symbol not in SYMBOLS:
            raise BadRequest(f"'{symbol}' in '{unquote_plus(item)}' is not an operator; use one of "
                             f"{', '.join(SYMBOLS)}.", code="invalidQuery")
        name = unquote(item[:cut].replace("+", " "))
        value = unquote_plus(item[cut + len(symbol):])
        if not name:
            raise BadRequest(f"Query parameter '{unquote_plus(item)}' has no name.", code="invalidQuery")
        terms.append(Term(name, symbol, value))
    return terms
