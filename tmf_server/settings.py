"""Settings.from_env(): the only place that reads the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BASE_PATH = "/tmf-api/serviceProblemManagement/v4"


def _number(kind, variable: str, text: str):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{variable} must be {'an integer' if kind is int else 'a number'}, not {text!r}") from None


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
        numbers = {"TMF_PORT": "port", "TMF_WORKERS": "workers", "TMF_MAX_BODY_BYTES": "max_body_bytes",
                   "TMF_MAX_URL_BYTES": "max_url_bytes", "TMF_MAX_IN_FLIGHT": "max_in_flight",
                   "TMF_DEFAULT_LIMIT": "default_limit", "TMF_MAX_LIMIT": "max_limit",
                   "TMF_DB_TIMEOUT_MS": "db_timeout_ms", "TMF_IDEMPOTENCY_TTL": "idempotency_ttl_seconds",
                   "TMF_QUERY_TIMEOUT_MS": "query_timeout_ms", "TMF_RETRY_AFTER": "retry_after_seconds"}
        for var, name in text.items():
            if env.get(var):
                values[name] = env[var]
        for var, name in numbers.items():
            if env.get(var):
                values[name] = _number(int, var, env[var])
        if env.get("TMF_DATA_DIR"):
            values["data_dir"] = Path(env["TMF_DATA_DIR"])
        floats = {"TMF_BODY_TIMEOUT": "body_timeout", "TMF_HEADER_TIMEOUT": "header_timeout",
                  "TMF_DELIVERY_TIMEOUT": "delivery_timeout", "TMF_DISPATCH_POLL": "dispatch_poll_seconds",
                  "TMF_LEASE_SECONDS": "lease_seconds", "TMF_MAX_RETRY_AFTER": "max_retry_after",
                  "TMF_INTAKE_LEASE": "intake_lease_seconds", "TMF_INTAKE_SWEEP": "intake_sweep_seconds"}
        for var, name in floats.items():
            if env.get(var):
                values[name] = _number(float, var, env[var])
        for var in ("TMF_BODY_TIMEOUT", "TMF_HEADER_TIMEOUT"):  # 0 would end every request, or connection, at once
            if env.get(var) and not values[floats[var]] > 0:
                raise ValueError(f"{var} must be a positive number of seconds, not {env[var]!r}")
        if env.get("TMF_ENGINE_PORT"):
            values["engine_port"] = _number(int, "TMF_ENGINE_PORT", env["TMF_ENGINE_PORT"])
        if env.get("TMF_DELIVERY_CONCURRENCY"):
            values["delivery_concurrency"] = _number(int, "TMF_DELIVERY_CONCURRENCY", env["TMF_DELIVERY_CONCURRENCY"])
        if env.get("TMF_DELIVERY_PER_SUBSCRIPTION"):
            values["delivery_per_subscription"] = _number(int, "TMF_DELIVERY_PER_SUBSCRIPTION",
                                                          env["TMF_DELIVERY_PER_SUBSCRIPTION"])
        if env.get("TMF_DISPATCHER"):
            values["dispatcher_enabled"] = env["TMF_DISPATCHER"].lower() in ("1", "true", "yes", "on")
        if env.get("TMF_DELIVERY_SCHEDULE"):
            values["delivery_schedule"] = tuple(_number(float, "TMF_DELIVERY_SCHEDULE", x)
                                                for x in env["TMF_DELIVERY_SCHEDULE"].split(",") if x.strip())
        if env.get("TMF_ENGINE_RESTART_DELAYS"):
            values["engine_restart_delays"] = tuple(float(x) for x in env["TMF_ENGINE_RESTART_DELAYS"].split(",")
                                                    if x.strip())
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
    for var, name in (("TMF_JWT_LEEWAY", "jwt_leeway_seconds"), ("TMF_JWKS_MIN_REFRESH", "jwks_min_refresh_seconds")):
        if env.get(var):
            values[name] = float(env[var])
    if env.get("TMF_ADMIN"):
        values["admin"] = env["TMF_ADMIN"].strip().lower()
    if env.get("TMF_ADMIN_PORT"):
        values["admin_port"] = int(env["TMF_ADMIN_PORT"])
    if env.get("TMF_INTAKE_WEBHOOK_SECRETS"):  # "troubleTicket=whsec_...,alarm=whsec_..."
        pairs = (item.partition("=") for item in env["TMF_INTAKE_WEBHOOK_SECRETS"].split(",") if item.strip())
        values["intake_webhook_secrets"] = {source.strip(): secret.strip() for source, _, secret in pairs}
    return values
