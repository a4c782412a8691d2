"""Every numeric setting takes only the values the server can work with (README, "Configuration"): at each edge of
its range the last valid value is taken and the first invalid one refused, with one message naming the variable,
what it must be, and the value given. `tmf-server serve` turns that message into one line (tests/api/test_cli.py)."""
from __future__ import annotations

import pytest

from tmf_server.settings import NUMERIC_SETTINGS, Settings

POSITIVE = "a positive integer"
PORT = "an integer from 1 to 65535"
MILLISECONDS = "an integer from 1 to 2147483647"
WHOLE_SECONDS = "an integer from 1 to 31536000"
SECONDS = "a positive number of seconds up to 31536000"
LEASE = "a number of seconds from 0.001 to 31536000"
DELAYS = "numbers of seconds from 0 to 31536000, comma-separated"
PORT_EDGES = [("1", "0"), ("65535", "65536")]
SECONDS_EDGES = [("0.000001", "0"), ("31536000", "31536000.5")]

# variable: (what it must be, [(the last valid value, the first invalid one beyond it), ...])
EXPECTED = {
    "TMF_PORT": (PORT, PORT_EDGES),
    "TMF_ENGINE_PORT": (PORT, PORT_EDGES),
    "TMF_ADMIN_PORT": (PORT, PORT_EDGES),
    "TMF_WORKERS": (POSITIVE, [("1", "0")]),
    "TMF_MAX_BODY_BYTES": (POSITIVE, [("1", "0")]),
    "TMF_MAX_URL_BYTES": (POSITIVE, [("1", "0")]),
    "TMF_MAX_IN_FLIGHT": (POSITIVE, [("1", "0")]),
    "TMF_MAX_LIMIT": (POSITIVE, [("1", "0")]),
    "TMF_DELIVERY_CONCURRENCY": (POSITIVE, [("1", "0")]),
    "TMF_DELIVERY_PER_SUBSCRIPTION": (POSITIVE, [("1", "-1")]),
    "TMF_DEFAULT_LIMIT": ("an integer from 1 to TMF_MAX_LIMIT (1000)", [("1", "0"), ("1000", "1001")]),
    "TMF_DB_TIMEOUT_MS": (MILLISECONDS, [("1", "0"), ("2147483647", "2147483648")]),
    "TMF_QUERY_TIMEOUT_MS": (MILLISECONDS, [("1", "0"), ("2147483647", "2147483648")]),
    "TMF_RETRY_AFTER": (WHOLE_SECONDS, [("1", "0"), ("31536000", "31536001")]),
    "TMF_IDEMPOTENCY_TTL": (WHOLE_SECONDS, [("1", "0"), ("31536000", "31536001")]),
    "TMF_BODY_TIMEOUT": (SECONDS, SECONDS_EDGES),
    "TMF_HEADER_TIMEOUT": (SECONDS, SECONDS_EDGES),
    "TMF_DELIVERY_TIMEOUT": (SECONDS, SECONDS_EDGES),
    "TMF_DISPATCH_POLL": (SECONDS, [("0.000001", "-1"), ("31536000", "31536000.5")]),
    "TMF_INTAKE_SWEEP": (SECONDS, SECONDS_EDGES),
    "TMF_JWKS_MIN_REFRESH": (SECONDS, SECONDS_EDGES),
    "TMF_LEASE_SECONDS": (LEASE, [("0.001", "0.0009"), ("31536000", "31536001")]),
    "TMF_INTAKE_LEASE": (LEASE, [("0.001", "0"), ("31536000", "31536001")]),
    "TMF_MAX_RETRY_AFTER": ("a number of seconds from 0 to 31536000", [("0", "-0.001"), ("31536000", "31536001")]),
    "TMF_JWT_LEEWAY": ("a number of seconds from 0 to 300", [("0", "-0.001"), ("300", "300.001")]),
    "TMF_DELIVERY_SCHEDULE": (DELAYS, [("0,5", "5,-0.001"), ("31536000", "1,31536001")]),
    "TMF_ENGINE_RESTART_DELAYS": (DELAYS, [("0", "-1"), ("2,31536000", "31536001,2")]),
}
COMPANIONS = {"TMF_MAX_LIMIT": {"TMF_DEFAULT_LIMIT": "1"}}  # the default page size (100) must fit in the largest
CASES = [(variable, valid, invalid) for variable, (_, edges) in EXPECTED.items() for valid, invalid in edges]


def refusal(environ: dict, **overrides) -> str:
    with pytest.raises(ValueError) as refused:
        Settings.from_env(environ, **overrides)
    return str(refused.value)


def test_every_numeric_setting_has_its_range_checked_here():
    assert sorted(EXPECTED) == sorted(NUMERIC_SETTINGS)


@pytest.mark.parametrize("variable, valid, invalid", CASES)
def test_the_edge_is_taken_and_the_first_value_beyond_it_refused(variable, valid, invalid):
    field, bounds = NUMERIC_SETTINGS[variable]
    items = valid.split(",") if bounds.many else [valid]
    expected = tuple(float(item) for item in items) if bounds.many else bounds.kind(valid)
    companions = COMPANIONS.get(variable, {})
    assert getattr(Settings.from_env({**companions, variable: valid}), field) == expected
    assert refusal({**companions, variable: invalid}) == f"{variable} must be {EXPECTED[variable][0]}, not {invalid!r}"


@pytest.mark.parametrize("variable", sorted(EXPECTED))
@pytest.mark.parametrize("text", ["ten", "1.5.2", "0x10"])
def test_what_is_no_number_is_refused_with_the_same_message(variable, text):
    must = EXPECTED[variable][0].replace(" (1000)", "")  # the bound's value is not known while reading text
    assert refusal({variable: text}) == f"{variable} must be {must}, not {text!r}"


@pytest.mark.parametrize("variable", ["TMF_DELIVERY_TIMEOUT", "TMF_LEASE_SECONDS", "TMF_JWT_LEEWAY",
                                      "TMF_DELIVERY_SCHEDULE"])
@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_no_infinite_or_undefined_duration(variable, text):
    assert refusal({variable: text}).startswith(f"{variable} must be ")


@pytest.mark.parametrize("variable", ["TMF_DELIVERY_SCHEDULE", "TMF_ENGINE_RESTART_DELAYS"])
def test_a_list_of_nothing_is_refused(variable):
    assert refusal({variable: " , "}) == f"{variable} must be {DELAYS}, not ' , '"


def test_integers_are_not_rounded_from_fractions():
    assert refusal({"TMF_WORKERS": "1.5"}) == "TMF_WORKERS must be a positive integer, not '1.5'"


def test_the_default_page_size_is_bounded_by_the_largest_one_set():
    assert Settings.from_env({"TMF_MAX_LIMIT": "50", "TMF_DEFAULT_LIMIT": "50"}).default_limit == 50
    assert (refusal({"TMF_MAX_LIMIT": "50", "TMF_DEFAULT_LIMIT": "51"})
            == "TMF_DEFAULT_LIMIT must be an integer from 1 to TMF_MAX_LIMIT (50), not '51'")
    assert (refusal({"TMF_MAX_LIMIT": "50"})  # the default page size 100 is now too large: say so
            == "TMF_DEFAULT_LIMIT must be an integer from 1 to TMF_MAX_LIMIT (50), not '100'")


def test_command_line_values_are_checked_like_the_environment():
    """`--port`, `--workers` and `--admin-port` reach the settings as overrides of the environment."""
    assert refusal({"TMF_PORT": "8080"}, port=0) == f"TMF_PORT must be {PORT}, not '0'"
    assert refusal({}, workers=0) == f"TMF_WORKERS must be {POSITIVE}, not '0'"
    assert refusal({}, admin_port=65536) == f"TMF_ADMIN_PORT must be {PORT}, not '65536'"


def test_the_defaults_are_in_range():
    defaults = Settings.from_env({})
    assert defaults == Settings()
    assert (defaults.port, defaults.engine_port, defaults.admin_port) == (8080, None, None)  # unset: no fixed port
