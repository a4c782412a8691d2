"""Checks every stored request body passes, whatever resource it creates or changes.

Used by the problems, the hub subscriptions and the intake: it lives here, above them.
"""
from __future__ import annotations

import math
import re

from tmf_server.errors import BadRequest

# A JSON string escape such as "\ud800" decodes to a lone surrogate: valid JSON text, but no Unicode character,
# so it cannot be stored (BSON strings are UTF-8).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, where: str, what: str) -> None:
    match = _LONE_SURROGATE.search(text)
    if match:
        raise BadRequest(f"{where or 'The body'}: {what} contains the unpaired surrogate "
                         f"\\u{ord(match.group()):04x}, which is not a Unicode character (the body must be "
                         f"valid UTF-8 once decoded).", code="invalidValue")


def check_keys(value, where: str = "") -> None:
    """Keys that MongoDB would read as operators or paths are refused anywhere in a body, and so are
    NaN and Infinity, which Python's JSON parser accepts but JSON (RFC 8259) and the store do not have,
    integers beyond 64 bits, which BSON cannot hold, lone surrogates (\\ud800) in strings and names,
    which UTF-8 cannot encode, and the NUL character."""
    if isinstance(value, str):
        _check_text(value, where, "the text")
        if "\x00" in value:
            # Stored, MongoDB's and the embedded engine's equality filters would never find the text again.
            raise BadRequest(f"{where or 'The body'}: the text contains the NUL character (\\u0000), which this "
                             f"server does not store.", code="invalidValue")
        return
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        raise BadRequest(f"{where or 'The body'}: {value} is larger than the 64-bit integers the store keeps.",
                         code="invalidValue")
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise BadRequest(f"{where or 'The body'}: {text} is not a JSON number.", code="invalidValue")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where, f"the attribute name {key!r}")
            if key.startswith("$") or "." in key or "\x00" in key:
                raise BadRequest(f"The attribute name '{key}'{' in ' + where if where else ''} is not allowed: "
                                 f"names must not start with '$' or contain '.' or NUL.", code="invalidAttributeName")
            check_keys(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_keys(item, f"{where}[{index}]")
