"""The safe form of regex filters (tmf_server/query/regex.py): common patterns pass, what it refuses names the
rule."""
import pytest

from tmf_server.query.regex import UnsafeRegex, check_safe_regex

ACCEPTED = ["evening", "^Broad", "a.*b", r"\d+\.\d+", r"^[A-Z]{2}-\d{4}$", "[a-z]+ing", "(foo|bar)baz", "a|b+c",
            "(ab)c+d*", "[^,]*,[^,]*", r"\s+Mbit/s$", "(?i)^fibre", "x{2,16}y{2,16}", "^$"]

REFUSED = {
    "(a+)+$": "quantifier on a group",
    "(a|ab)*": "quantifier on a group",
    "(a*)*": "quantifier on a group",
    r"\d*\d*": "overlapping quantifiers",
    ".*.*=.*": "overlapping quantifiers",
    ".*a.*": "overlapping quantifiers",
    "a.*b.*c": "overlapping quantifiers",
    "(?i)a*A*": "overlapping quantifiers",
    "x{2,1000}x{2,1000}": "overlapping quantifiers",
    r"(\w+)\s\1": "back-references",
    "(?P<w>a)(?P=w)": "back-references",
    "x(?=y)": "look-arounds",
    "(?<!x)y": "look-arounds",
    "(fo+|bar)": "alternation",
    "a{1,5000}": "more than 1000 times",
    "(": "not a valid regular expression",
    "a" * 257: "longer than 256 characters",
}


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_the_safe_form_accepts_common_patterns(pattern):
    check_safe_regex(pattern)


@pytest.mark.parametrize("pattern, rule", REFUSED.items(), ids=list(range(len(REFUSED))))
def test_the_safe_form_refuses_and_names_the_rule(pattern, rule):
    with pytest.raises(UnsafeRegex) as caught:
        check_safe_regex(pattern)
    assert rule in str(caught.value)
