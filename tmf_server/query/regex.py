"""The safe form of a `regex` filter, checked before a query is sent (docs/mongodb.md, "Query budgets").

The database evaluates regular expressions with a backtracking engine (PCRE in MongoDB, Python's `re` in the
embedded engine), and the embedded engine cannot cancel a query once sent: a pattern such as `(a+)+$` would hold it
for minutes. A pattern is accepted only in a form whose matching time grows at most with the square of the text's
length (an unanchored search tries every start position once):

- at most MAX_REGEX_LENGTH characters, and valid;
- no back-references, look-arounds, conditionals, atomic groups or possessive quantifiers;
- a quantifier applies to one character, `.`, an escape such as `\\d`, or a class `[...]`; never to a group
  (no nested quantifiers, no repeated alternation);
- alternation `|` only at the top level or in a group without quantifiers;
- no overlapping quantifiers: two open-ended quantifiers (`*`, `+`, `{n,}`, or a count above
  MAX_BOUNDED_REPEAT) whose characters overlap must be separated by a required character the first cannot match
  (`\\d+\\.\\d+` is accepted; `\\d*\\d*`, `.*a.*` and `a.*b.*c` are not);
- counts `{m,n}` at most MAX_REPEAT_COUNT.
"""
from __future__ import annotations

import re
import re._constants as c
import re._parser as parser

MAX_REGEX_LENGTH = 256
MAX_REPEAT_COUNT = 1000
MAX_BOUNDED_REPEAT = 16  # above this a counted repeat is treated as open-ended for the overlap rule
# Characters the overlap rule compares sets on: Latin, Latin-1, the common separators, other scripts' digits.
_SAMPLE = [chr(i) for i in range(0x250)] + ["\u0660", "\u2028", "\u3000", "\u4e00", "\u00a0"]
_ALL = frozenset(_SAMPLE)
_FORBIDDEN = {
    c.GROUPREF: "back-references (\\1, (?P=name))",
    c.GROUPREF_EXISTS: "conditionals ((?(1)...))",
    c.ASSERT: "look-arounds ((?=...), (?<=...))",
    c.ASSERT_NOT: "look-arounds ((?!...), (?<!...))",
    c.ATOMIC_GROUP: "atomic groups ((?>...))",
    c.POSSESSIVE_REPEAT: "possessive quantifiers (*+, ++)",
}
_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT)
_CATEGORIES = {
    c.CATEGORY_DIGIT: str.isdecimal, c.CATEGORY_SPACE: str.isspace,
    c.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(), c.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    c.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
}


class UnsafeRegex(ValueError):
    """The pattern is outside the safe form; the message names the rule."""


def check_safe_regex(pattern: str) -> None:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise UnsafeRegex(f"is longer than {MAX_REGEX_LENGTH} characters")
    try:
        parsed = parser.parse(pattern)
    except re.error as exc:
        raise UnsafeRegex(f"is not a valid regular expression: {exc}") from None
    ignore_case = bool(parsed.state.flags & re.IGNORECASE)
    _check_sequence(list(parsed), ignore_case, top_level=True)


def _check_sequence(items: list, ignore_case: bool, top_level: bool) -> None:
    atoms = []  # (characters, open-ended repeat?, required?) along the sequence
    for op, av in items:
        if op in _FORBIDDEN:
            raise UnsafeRegex(f"uses {_FORBIDDEN[op]}, which the safe form excludes")
        if op in _REPEATS:
            low, high, sub = av
            if high != c.MAXREPEAT and high > MAX_REPEAT_COUNT or low > MAX_REPEAT_COUNT:
                raise UnsafeRegex(f"repeats more than {MAX_REPEAT_COUNT} times")
            if len(sub) != 1 or sub[0][0] not in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN, c.CATEGORY):
                raise UnsafeRegex("puts a quantifier on a group; quantify a single character, '.', an escape "
                                  "such as \\d, or a class [...]")
            chars = _characters(sub[0], ignore_case)
            atoms.append((chars, high == c.MAXREPEAT or high > MAX_BOUNDED_REPEAT, low > 0))
        elif op == c.BRANCH:
            if not top_level:
                raise UnsafeRegex("uses alternation '|' inside a group with quantifiers")
            for branch in av[1]:
                _check_sequence(list(branch), ignore_case, top_level=True)
            atoms.append((_ALL, False, True))
        elif op == c.SUBPATTERN:
            inner = list(av[3])
            if any(o == c.BRANCH for o, _ in inner):
                if _has_repeat(inner):
                    raise UnsafeRegex("uses alternation '|' inside a group with quantifiers")
                _check_sequence(inner, ignore_case, top_level=True)
                atoms.append((_ALL, False, True))
            else:
                _check_sequence(inner, ignore_case, top_level=False)
                atoms.extend(_flat_atoms(inner, ignore_case))
        elif op == c.AT:
            continue
        else:
            atoms.append((_characters((op, av), ignore_case), False, True))
    _check_overlap(atoms)


def _flat_atoms(items: list, ignore_case: bool) -> list:
    atoms = []
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            atoms.append((_characters(sub[0], ignore_case), high == c.MAXREPEAT or high > MAX_BOUNDED_REPEAT, low > 0))
        elif op == c.SUBPATTERN:
            atoms.extend(_flat_atoms(list(av[3]), ignore_case))
        elif op != c.AT:
            atoms.append((_characters((op, av), ignore_case), False, True))
    return atoms


def _has_repeat(items) -> bool:
    for op, av in items:
        if op in _REPEATS:
            return True
        if op == c.SUBPATTERN and _has_repeat(av[3]):
            return True
        if op == c.BRANCH and any(_has_repeat(branch) for branch in av[1]):
            return True
    return False


def _check_overlap(atoms: list) -> None:
    for position, (chars, open_ended, _required) in enumerate(atoms):
        if not open_ended:
            continue
        for later, later_open, required in atoms[position + 1:]:
            if required and not later_open and not (later & chars):
                break  # a required character the first repeat cannot take: it stops there
            if later_open and later & chars:
                raise UnsafeRegex("has overlapping quantifiers (two open-ended repeats that can match the same "
                                  "characters with nothing required between them, such as \\d*\\d* or .*a.*)")


def _characters(atom, ignore_case: bool) -> frozenset:
    op, av = atom
    if op == c.ANY:
        return _ALL
    return frozenset(ch for ch in _SAMPLE if _member(op, av, ch, ignore_case))


def _member(op, av, ch: str, ignore_case: bool) -> bool:
    if op in (c.LITERAL, c.NOT_LITERAL):
        same = chr(av) == ch or (ignore_case and chr(av).lower() == ch.lower())
        return same if op == c.LITERAL else not same
    if op == c.CATEGORY:
        return _CATEGORIES.get(av, lambda _ch: True)(ch)
    if op == c.IN:
        negate = bool(av) and av[0][0] == c.NEGATE
        found = any(_member_of_class(o, a, ch, ignore_case) for o, a in av if o != c.NEGATE)
        return found != negate
    return True  # anything else: assume it overlaps


def _member_of_class(op, av, ch: str, ignore_case: bool) -> bool:
    if op == c.RANGE:
        low, high = av
        return low <= ord(ch) <= high or (ignore_case and (low <= ord(ch.lower()) <= high or
                                                           low <= ord(ch.upper()[0]) <= high))
    if op == c.RANGE_UNI_IGNORE:
        low, high = av
        return low <= ord(ch.lower()) <= high
    return _member(op, av, ch, ignore_case)
