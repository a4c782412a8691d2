"""Settings.from_env(): the only place that reads the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BASE_PATH = "/tmf-api/serviceProblemManagement/v4"


YEAR = 365 * 86400  # the longest duration: longer ones overflow the waits and dates they are added to
INT32 = 2**31 - 1  # MongoDB's largest maxTimeMS


def _shown(value) -> str:
    text = repr(value)
    return text[:-2] if isinstance(value, float) and text.endswith(".0") else text


@dataclass(frozen=True)
class Range:
    """The values a numeric setting takes: `kind` from `least` (excluded when `above`: a positive number) to `most`
    (a number, or another setting's variable: at most its value); with `many`, a comma-separated list of them."""
    kind: type  # int or float
    least: float
    most: float | str | None = None
    above: bool = False
    unit: str = ""  # what a float counts ("seconds")
    many: bool = False

    def admits(self, value, most) -> bool:  # False for NaN: every comparison with it is
        return (value > self.least if self.above else value >= self.least) and (most is None or value <= most)

    def describe(self, most=None) -> str:
        """What a value must be, for the message refusing one: "a positive number of seconds up to 31536000"."""
        noun = ("integer" if self.kind is int else "number") + ("s" if self.many else "")
        noun += f" of {self.unit}" if self.unit else ""
        if isinstance(self.most, str):
            upper = self.most if most is None else f"{self.most} ({_shown(most)})"
        else:
            upper = None if self.most is None else _shown(self.most)
        if self.above and self.least == 0:
            text = f"positive {noun}" + (f" up to {upper}" if upper else "")
        elif upper:
            text = f"{noun} from {_shown(self.least)} to {upper}"
        else:
            text = f"{noun} of at least {_shown(self.least)}"
        if self.many:
            return text + ", comma-separated"
        return ("an " if text[0] in "aeiou" else "a ") + text


PORT = Range(int, 1, 65535)  # 0 is no fixed port: the printed URLs and the workers' environment need the real one
COUNT = Range(int, 0, above=True)  # 0 would refuse, or deliver, everything
MILLISECONDS = Range(int, 1, INT32)  # 0 is "no limit" to MongoDB's maxTimeMS and pymongo's connectTimeoutMS
SECONDS = Range(float, 0, YEAR, above=True, unit="seconds")  # 0 would end every wait (or poll without pause) at once
LEASE = Range(float, 0.001, YEAR, unit="seconds")  # stored in milliseconds: less would expire every claim at once
DELAYS = Range(float, 0, YEAR, unit="seconds", many=True)  # 0: at once

# Every numeric setting: its variable, the Settings field it sets, the values it takes (README, "Configuration").
NUMERIC_SETTINGS: dict[str, tuple[str, Range]] = {
    "TMF_PORT": ("port", PORT),
    "TMF_WORKERS": ("workers", COUNT),
    "TMF_MAX_BODY_BYTES": ("max_body_bytes", COUNT),
    "TMF_MAX_URL_BYTES": ("max_url_bytes", COUNT),
    "TMF_MAX_IN_FLIGHT": ("max_in_flight", COUNT),
    "TMF_MAX_LIMIT": ("max_limit", COUNT),
    "TMF_DEFAULT_LIMIT": ("default_limit", Range(int, 1, "TMF_MAX_LIMIT")),
    "TMF_DB_TIMEOUT_MS": ("db_timeout_ms", MILLISECONDS),
    "TMF_QUERY_TIMEOUT_MS": ("query_timeout_ms", MILLISECONDS),
    "TMF_RETRY_AFTER": ("retry_after_seconds", Range(int, 1, YEAR)),  # 0 would invite the retries at once
    "TMF_IDEMPOTENCY_TTL": ("idempotency_ttl_seconds", Range(int, 1, YEAR)),
    "TMF_BODY_TIMEOUT": ("body_timeout", SECONDS),
    "TMF_HEADER_TIMEOUT": ("header_timeout", SECONDS),
    "TMF_ENGINE_PORT": ("engine_port", PORT),
    "TMF_ENGINE_RESTART_DELAYS": ("engine_restart_delays", DELAYS),
    "TMF_DELIVERY_SCHEDULE": ("delivery_schedule", DELAYS),
    "TMF_DELIVERY_TIMEOUT": ("delivery_timeout", SECONDS),
    "TMF_DELIVERY_CONCURRENCY": ("delivery_concurrency", COUNT),
    "TMF_DELIVERY_PER_SUBSCRIPTION": ("delivery_per_subscription", COUNT),
    "TMF_DISPATCH_POLL": ("dispatch_poll_seconds", SECONDS),
    "TMF_LEASE_SECONDS": ("lease_seconds", LEASE),
    "TMF_MAX_RETRY_AFTER": ("max_retry_after", Range(float, 0, YEAR, unit="seconds")),  # 0: Retry-After ignored
    "TMF_INTAKE_LEASE": ("intake_lease_seconds", LEASE),
    "TMF_INTAKE_SWEEP": ("intake_sweep_seconds", SECONDS),
    # More skew than Kerberos's five minutes would keep expired tokens valid.
    "TMF_JWT_LEEWAY": ("jwt_leeway_seconds", Range(float, 0, 300, unit="seconds")),
    "TMF_JWKS_MIN_REFRESH": ("jwks_min_refresh_seconds", SECONDS),  # 0: unknown kids would hammer the provider
    "TMF_ADMIN_PORT": ("admin_port", PORT),
}


def _parsed(variable: str, text: str):
    """The value of a numeric setting's text; a ValueError saying what it must be when it is no such value."""
    bounds = NUMERIC_SETTINGS[variable][1]
    items = [item for item in text.split(",") if item.strip()] if bounds.many else [text]
    try:
        values = [bounds.kind(item) for item in items]
        if not values:
            raise ValueError
    except ValueError:
        raise ValueError(f"{variable} must be {bounds.describe()}, not {text!r}") from None
    return tuple(values) if bounds.many else values[0]


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str | None = None  # None: start the embedded engine
    database: str = "tmf656"
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    public_base_url: str | None = None  # e.g. https://api.example.com; default: the request's base URL
    max_body_bytes: int = 1_048_576
    max_url_bytes: int = 8192  # 414 above; keeps the query strings repeated in a list's Link header bounded
    max_in_flight: int = 256  # requests handled at once per server process; 503 + Retry-After above
    body_timeout: float = 10.0  # seconds a request body may take to arrive after the headers; 408 after
    header_timeout: float = 10.0  # seconds a request's line and headers may take; the connection is closed after
    default_limit: int = 100
    max_limit: int = 1000
    db_timeout_ms: int = 2000
    query_timeout_ms: int = 5000  # maxTimeMS of every list query (MongoDB enforces it; docs/mongodb.md)
    retry_after_seconds: int = 5
    idempotency_ttl_seconds: int = 86400  # how long an Idempotency-Key is remembered
    system_id: str = "tmf656-qos-server"
    responsible_party: dict = field(
        default_factory=lambda: {
            "id": "qos-management",
            "name": "Customer QoS/SLA Management",
            "role": "responsible",
            "@referredType": "Organization",
        }
    )
    validate_responses: bool = False
    engine_port: int | None = None  # fixed port of the embedded engine, so `tmf-server worker` can share it
    # Seconds before each restart of an embedded engine that died; after the last failed one the server exits 3.
    engine_restart_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16)
    # Event delivery (Standard Webhooks style retry schedule: seconds after the first attempt fails).
    dispatcher_enabled: bool = True
    delivery_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    delivery_timeout: float = 10.0
    delivery_concurrency: int = 16  # attempts in flight, all subscriptions together
    delivery_per_subscription: int = 4  # attempts in flight to one subscription's listener, once it answered
    dispatch_poll_seconds: float = 0.5
    lease_seconds: float = 60.0
    max_retry_after: float = 36000.0
    callback_allow: tuple[str, ...] = ()  # "loopback", "private", or CIDRs that callbacks may reach
    # Intake priority rule (docs/intake.md): the tier x impact matrix as text, and the tier of unknown customers.
    intake_priority_matrix: str | None = None
    intake_default_tier: str | None = None
    intake_qos_ticket_words: str | None = None  # the ticket QoS relevance rule's words (comma-separated)
    intake_lease_seconds: float = 30.0  # a request processing a received notification holds it this long
    intake_sweep_seconds: float = 10.0  # how often the background loop finishes records a crash left received
    # Security (docs/security.md). auth "off" or "jwt"; auth_explicit: TMF_AUTH was set (off is allowed beyond
    # loopback only when said explicitly).
    auth: str = "off"
    auth_explicit: bool = False
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwks_url: str | None = None
    jwks_file: Path | None = None
    jwt_scope_claims: tuple[str, ...] = ("scope", "scp")  # dotted claim paths holding scopes or roles
    jwt_leeway_seconds: float = 60.0  # clock skew allowed on exp and nbf
    jwks_min_refresh_seconds: float = 30.0  # an unknown kid refetches the JWKS at most this often
    oauth_token_url: str | None = None  # stated in the served documents' clientCredentials flow
    intake_webhook_secrets: dict = field(default_factory=dict)  # intake source -> Standard Webhooks secret
    admin: str = "on"  # "off": the admin API is not served at all
    admin_port: int | None = None  # the admin API on its own listener (and not on the API's)
    admin_host: str = "127.0.0.1"
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR
    log_format: str = "text"  # text or json (one JSON object per line)

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "jwt"

    @property
    def admin_with_api(self) -> bool:
        """The admin API is served by the API's own listener (neither switched off nor on its own port)."""
        return self.admin != "off" and self.admin_port is None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get("MONGODB_URI"):
            values["mongodb_uri"] = env["MONGODB_URI"]
        text = {"TMF_DATABASE": "database", "TMF_HOST": "host", "TMF_PUBLIC_BASE_URL": "public_base_url",
                "TMF_SYSTEM_ID": "system_id", "TMF_INTAKE_PRIORITY_MATRIX": "intake_priority_matrix",
                "TMF_INTAKE_DEFAULT_TIER": "intake_default_tier",
                "TMF_INTAKE_QOS_TICKET_WORDS": "intake_qos_ticket_words"}
        for var, name in text.items():
            if env.get(var):
                values[name] = env[var]
        for var, (name, _bounds) in NUMERIC_SETTINGS.items():
            if env.get(var):
                values[name] = _parsed(var, env[var])
        if env.get("TMF_DATA_DIR"):
            values["data_dir"] = Path(env["TMF_DATA_DIR"])
        if env.get("TMF_DISPATCHER"):
            values["dispatcher_enabled"] = env["TMF_DISPATCHER"].lower() in ("1", "true", "yes", "on")
        if env.get("TMF_CALLBACK_ALLOW"):
            values["callback_allow"] = tuple(x.strip() for x in env["TMF_CALLBACK_ALLOW"].split(",") if x.strip())
        values.update(_security_values(env))
        if env.get("TMF_VALIDATE_RESPONSES"):
            values["validate_responses"] = env["TMF_VALIDATE_RESPONSES"].lower() in ("1", "true", "yes")
        party = {key: env[var] for var, key in (("TMF_RESPONSIBLE_PARTY_ID", "id"),
                                                 ("TMF_RESPONSIBLE_PARTY_NAME", "name")) if env.get(var)}
        if party:
            values["responsible_party"] = {**cls().responsible_party, **party}
        if env.get("TMF_LOG_LEVEL"):
            values["log_level"] = env["TMF_LOG_LEVEL"].strip().upper()
        if env.get("TMF_LOG_FORMAT"):
            values["log_format"] = env["TMF_LOG_FORMAT"].strip().lower()
        values.update(overrides)
        return cls(**values)

    def __post_init__(self):
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"TMF_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"TMF_LOG_FORMAT must be text or json, not {self.log_format!r}")
        for var, (name, bounds) in NUMERIC_SETTINGS.items():  # also what --port, --workers, --admin-port set
            value = getattr(self, name)
            if value is None:
                continue
            most = getattr(self, NUMERIC_SETTINGS[bounds.most][0]) if isinstance(bounds.most, str) else bounds.most
            values = value if bounds.many else (value,)
            if not values or not all(bounds.admits(item, most) for item in values):
                shown = ",".join(_shown(item) for item in values)
                raise ValueError(f"{var} must be {bounds.describe(most)}, not {shown!r}")


def _security_values(env) -> dict:
    values: dict = {}
    if env.get("TMF_AUTH"):
        values["auth"], values["auth_explicit"] = env["TMF_AUTH"].strip().lower(), True
    text = {"TMF_JWT_ISSUER": "jwt_issuer", "TMF_JWT_AUDIENCE": "jwt_audience", "TMF_JWKS_URL": "jwks_url",
            "TMF_OAUTH_TOKEN_URL": "oauth_token_url", "TMF_ADMIN_HOST": "admin_host"}
    for var, name in text.items():
        if env.get(var):
            values[name] = env[var].strip()
    if env.get("TMF_JWKS_FILE"):
        values["jwks_file"] = Path(env["TMF_JWKS_FILE"])
    if env.get("TMF_JWT_SCOPE_CLAIMS"):
        values["jwt_scope_claims"] = tuple(x.strip() for x in env["TMF_JWT_SCOPE_CLAIMS"].split(",") if x.strip())
    if env.get("TMF_ADMIN"):
        values["admin"] = env["TMF_ADMIN"].strip().lower()
    if env.get("TMF_INTAKE_WEBHOOK_SECRETS"):  # "troubleTicket=whsec_...,alarm=whsec_..."
        pairs = (item.partition("=") for item in env["TMF_INTAKE_WEBHOOK_SECRETS"].split(",") if item.strip())
        values["intake_webhook_secrets"] = {source.strip(): secret.strip() for source, _, secret in pairs}
    return values
