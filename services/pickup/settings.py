"""Typed settings: every endpoint, credential and tunable, read from ``PICKUP_*`` variables.

Precedence, highest first: values passed to :func:`load_settings`, environment variables,
SSM Parameter Store parameters under ``PICKUP_SSM_PATH`` (when set), then the defaults here.
A missing or malformed value raises :class:`SettingsError` whose message has one line per
variable, naming it and what is expected; entry points print it and exit instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pickup.core.pickup_times import OpeningHours, SlotRules

ENV_PREFIX = "PICKUP_"

# Used only in development and test; production refuses to start with it.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me-please"  # noqa: S105


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(Exception):
    """Configuration cannot be used; ``str(error)`` is one line per offending variable."""


class ResourceNames:
    """Names of the AWS resources, derived from one prefix so environments never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.products_table = f"{prefix}-products"
        self.order_queue = f"{prefix}-order-processing"
        self.order_dlq = f"{prefix}-order-processing-dlq"
        self.notifications_queue = f"{prefix}-notifications"
        self.notifications_dlq = f"{prefix}-notifications-dlq"
        self.order_events_topic = f"{prefix}-order-events"
        self.inventory_alerts_topic = f"{prefix}-inventory-alerts"

    @property
    def queues(self) -> dict[str, str]:
        """Each work queue and its dead-letter queue."""
        return {
            self.order_queue: self.order_dlq,
            self.notifications_queue: self.notifications_dlq,
        }

    @property
    def topics(self) -> list[str]:
        return [self.order_events_topic, self.inventory_alerts_topic]


def redact_url(value: str) -> str:
    """``value`` with a URL's password shown as ``***``; anything else comes back unchanged.

    Database and Redis URLs carry their passwords: whatever prints or logs a setting (a
    configuration error, ``pickup check-config``) shows them through this.
    """
    try:
        parts = urlsplit(value)
        if parts.password is None:
            return value
    except ValueError:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def async_database_url(url: str) -> str:
    """``url`` with the async driver pickup uses: ``postgresql+asyncpg`` or ``sqlite+aiosqlite``.

    Accepts ``postgres://``, ``postgresql://``, ``sqlite://`` and any ``+driver`` variant.
    """
    if "://" not in url:
        raise ValueError("expected a postgresql:// or sqlite:// URL")
    scheme, rest = url.split("://", 1)
    backend = scheme.split("+", 1)[0]
    if backend in {"postgresql", "postgres"}:
        return f"postgresql+asyncpg://{rest}"
    if backend == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"expected a postgresql:// or sqlite:// URL, got a {backend}:// URL")


class Settings(BaseSettings):
    """All configuration of every pickup process. Each field is ``PICKUP_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    env: Environment = Field(
        Environment.PRODUCTION,
        description="one of development, test, production",
    )

    # --- PostgreSQL (SQLite only in embedded development) -------------------------------
    database_url: str = Field(
        ...,
        description="a database URL such as postgresql://pickup@db:5432/pickup "
        "(sqlite:///path only for development)",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="an integer from 1 to 200")
    db_max_overflow: int = Field(5, ge=0, le=200, description="an integer from 0 to 200")
    db_pool_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="seconds (0 < n <= 120) to wait for a pool connection"
    )
    db_echo: bool = Field(False, description="true or false")

    # --- Redis ---------------------------------------------------------------------------
    redis_url: str = Field(
        ...,
        description="a Redis URL such as redis://cache:6379/0 (rediss:// for TLS; "
        "memory:// for the embedded development store)",
    )
    redis_max_connections: int = Field(100, ge=1, le=10_000, description="an integer 1-10000")

    # --- AWS (DynamoDB, SQS, SNS, SES, SSM, CloudWatch) -----------------------------------
    aws_region: str = Field("us-east-1", min_length=1, description="an AWS region name")
    aws_endpoint_url: AnyUrl | None = Field(
        None,
        description="an http(s) URL of an AWS-compatible endpoint (e.g. a moto server); "
        "unset for real AWS",
    )
    aws_access_key_id: SecretStr | None = Field(
        None, description="a static access key id, only outside production"
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, description="a static secret access key, only outside production"
    )
    aws_max_pool_connections: int = Field(50, ge=1, le=1000, description="an integer 1-1000")
    resource_prefix: str = Field(
        "pickup",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,39}$",
        description="1-40 letters, digits, '-' or '_' prefixing every AWS resource name",
    )
    ssm_path: str | None = Field(
        None,
        pattern=r"^/[a-zA-Z0-9_./-]*$",
        description="an SSM Parameter Store path such as /pickup/prod/",
    )
    sqs_max_receive_count: int = Field(
        5, ge=1, le=1000, description="receives before a message goes to its DLQ (1-1000)"
    )
    sqs_visibility_timeout_seconds: int = Field(
        30, ge=0, le=43_200, description="seconds (0-43200)"
    )
    ses_sender: str = Field(
        "orders@pickup.example",
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="the email address notifications are sent from",
    )
    alarm_topic: str = Field(
        "alarms",
        pattern=r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}|[A-Za-z0-9_-]{1,200})$",
        description="the SNS topic CloudWatch alarms notify: a name under the resource prefix "
        "(created by pickup bootstrap --monitoring) or the ARN of an existing topic",
    )
    runbook_base_url: str = Field(
        "https://github.com/pickup/pickup/blob/main/docs/runbooks",
        pattern=r"^https?://\S+$",
        description="an http(s) URL under which every alert's runbook <Alert>.md lives",
    )
    alarm_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="CloudWatch alarm thresholds other than the defaults, as JSON such as "
        '{"PickupQueueBacklog": 500} (names: the alerts of docs/runbooks)',
    )

    # --- HTTP ----------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="the address the API listens on")
    http_port: int = Field(8000, ge=1, le=65535, description="a TCP port 1-65535")
    public_url: AnyUrl = Field(
        "http://127.0.0.1:8000", description="the URL customers reach the shop at"
    )
    secret_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET_KEY),
        description="a random secret of at least 32 characters used to sign cookies",
    )

    # --- Shop and inventory tunables -------------------------------------------------------
    shop_name: str = Field("Pickup Bakery", min_length=1, max_length=80, description="text")
    currency: str = Field("GBP", pattern=r"^[A-Z]{3}$", description="an ISO 4217 code")
    cart_ttl_seconds: int = Field(
        2 * 24 * 3600, ge=60, le=30 * 24 * 3600, description="seconds (60 - 30 days)"
    )
    cart_max_lines: int = Field(30, ge=1, le=100, description="an integer 1-100")
    cart_max_quantity: int = Field(20, ge=1, le=999, description="an integer 1-999")
    reservation_ttl_seconds: int = Field(
        900, ge=30, le=24 * 3600, description="seconds an unconfirmed reservation is held"
    )

    # --- Pickup times ----------------------------------------------------------------------
    timezone: str = Field("Europe/London", description="an IANA time zone such as Europe/London")
    opening_hours: str = Field(
        "mon-fri 07:30-18:00; sat 08:00-16:00; sun 09:00-14:00",
        description="opening hours such as 'mon-fri 07:30-18:00; sat 08:00-16:00; sun closed'",
    )
    slot_minutes: int = Field(15, ge=5, le=120, description="pickup slot length, 5-120 minutes")
    slot_capacity: int = Field(
        12, ge=1, le=10_000, description="orders one pickup slot takes (1-10000)"
    )
    lead_minutes: int = Field(
        15, ge=0, le=24 * 60, description="minutes between ordering and the earliest pickup"
    )
    max_days_ahead: int = Field(7, ge=0, le=60, description="how many days ahead (0-60)")

    # --- Caches, limits and abuse protection -------------------------------------------------
    menu_cache_ttl_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="seconds the menu is cached (1-3600); stock changes invalidate it sooner",
    )
    menu_revalidate_ms: int = Field(
        500,
        ge=0,
        le=10_000,
        description="milliseconds an API process serves its copy of the menu without asking "
        "Redis (0-10000; 0: ask on every request); other processes' stock changes show "
        "this much later",
    )
    status_cache_ttl_seconds: int = Field(
        300, ge=1, le=3600, description="seconds an order status is cached (1-3600)"
    )
    idempotency_ttl_seconds: int = Field(
        24 * 3600, ge=60, le=7 * 24 * 3600, description="seconds an idempotency key is kept"
    )
    rate_limit_cart_per_minute: int = Field(
        120, ge=1, le=100_000, description="cart writes per client per minute"
    )
    rate_limit_checkout_per_minute: int = Field(
        10, ge=1, le=100_000, description="checkouts per client per minute"
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=10 * 1024 * 1024, description="largest request body, in bytes"
    )
    cookie_secure: bool | None = Field(
        None, description="true or false; unset: Secure cookies when PICKUP_PUBLIC_URL is https"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
        description="comma-separated addresses or CIDR networks of the proxies whose "
        "X-Forwarded-For/-Proto the API believes, or * for any",
    )
    outbox_relay_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="seconds between outbox relay passes (0 < n <= 60)"
    )

    # --- Pipeline: worker, sweeper, stream consumer, notifier -------------------------------
    worker_concurrency: int = Field(
        10, ge=1, le=500, description="order messages handled at once per worker (1-500)"
    )
    notifier_concurrency: int = Field(
        10, ge=1, le=500, description="notifications sent at once per notifier (1-500)"
    )
    notification_send_lease_seconds: int = Field(
        120,
        ge=30,
        le=3600,
        description="seconds a notification claimed for sending stays claimed; an older claim "
        "means its sender died mid-send (30-3600, well above the 20-second send timeout)",
    )
    prep_minutes_per_item: float = Field(
        2.0, gt=0, le=120, description="minutes of kitchen time one item takes (0 < n <= 120)"
    )
    staff_capacity: int = Field(
        2, ge=1, le=100, description="orders prepared at the same time (1-100)"
    )
    sweeper_interval_seconds: float = Field(
        30.0, gt=0, le=3600, description="seconds between expired-reservation sweeps"
    )
    reservation_intent_grace_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="seconds after which the sweeper releases the stock of a checkout that "
        "reserved it but never saved its order (1-3600)",
    )
    stream_poll_interval_seconds: float = Field(
        1.0, gt=0, le=60, description="seconds between DynamoDB Stream polls when idle"
    )
    health_port: int = Field(
        9000, ge=1, le=65535, description="port of /healthz, /readyz and /metrics on workers"
    )
    sms_sender_id: str = Field(
        "Pickup", pattern=r"^[A-Za-z0-9]{1,11}$", description="1-11 letters or digits"
    )
    staff_alert_emails: list[str] = Field(
        default_factory=list, description='a JSON list of addresses, e.g. ["kitchen@shop.example"]'
    )
    staff_alert_phones: list[str] = Field(
        default_factory=list, description="a JSON list of E.164 numbers for critical stock alerts"
    )

    # --- Staff sessions and live updates -----------------------------------------------------
    session_ttl_seconds: int = Field(
        8 * 3600, ge=300, le=7 * 24 * 3600, description="seconds a staff session lasts idle"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="failed logins before an account is locked (1-100)"
    )
    login_lockout_seconds: int = Field(
        15 * 60, ge=10, le=24 * 3600, description="seconds a locked account stays locked"
    )
    rate_limit_login_per_minute: int = Field(
        10, ge=1, le=10_000, description="login attempts per client per minute"
    )
    reorder_cover_days: float = Field(
        3.0, gt=0, le=90, description="days of sales a reorder should cover (0 < n <= 90)"
    )
    sales_velocity_days: int = Field(
        7, ge=1, le=90, description="days of sales the velocity is averaged over (1-90)"
    )
    sse_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="seconds between SSE heartbeats"
    )
    live_history_size: int = Field(
        1000, ge=10, le=100_000, description="live events kept for replay per stream"
    )

    # --- Inventory operator ------------------------------------------------------------------
    operator_namespace: str | None = Field(
        None, description="the namespace the operator watches (unset: every namespace)"
    )
    operator_reconcile_interval_seconds: float = Field(
        60.0, ge=1, le=86_400, description="seconds between full stock checks of each resource"
    )
    operator_event_check_seconds: float = Field(
        2.0,
        ge=0.5,
        le=3600,
        description="how often each resource looks for stock events naming its product "
        "(the operator's reaction time to stock changes between full checks)",
    )
    operator_liveness_port: int = Field(
        8080, ge=1, le=65535, description="port of the operator's /healthz"
    )

    # --- Staff -----------------------------------------------------------------------------
    admin_email: str = Field(
        "admin@pickup.example",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="the email of the initial admin account",
    )
    admin_password: SecretStr | None = Field(
        None, description="the initial admin password (at least 12 characters)"
    )

    # --- Metrics (Prometheus /metrics on every process; CloudWatch optionally) --------------
    metrics_sample_interval_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="seconds between the worker's samples of queue depths, stock and backlog",
    )
    cloudwatch_metrics_enabled: bool = Field(
        False, description="true or false: also publish the key metrics to CloudWatch"
    )
    cloudwatch_namespace: str = Field(
        "Pickup",
        pattern=r"^[A-Za-z0-9._/#:-]{1,255}$",
        description="a CloudWatch namespace (letters, digits, . _ / # : -; not AWS/...)",
    )
    cloudwatch_flush_interval_seconds: float = Field(
        60.0, ge=1, le=3600, description="seconds between CloudWatch PutMetricData batches"
    )

    # --- Logging ---------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="one of DEBUG, INFO, WARNING, ERROR"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="one of json (one JSON object a line), text, or auto "
        "(text in development, json otherwise)",
    )
    tracing_enabled: bool = Field(
        False,
        description="true or false: OpenTelemetry tracing, configured by the OTEL_* variables",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        async_database_url(value)  # raises ValueError naming what is expected
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value.split("://", 1)[0] not in {"redis", "rediss", "unix", "memory"}:
            raise ValueError("expected a redis://, rediss://, unix:// or memory:// URL")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        # A client address decides its rate-limit bucket and a forwarded scheme decides
        # HSTS: only proxies named here may claim either.
        for part in (item.strip() for item in value.split(",")):
            if part != "*":
                ipaddress.ip_network(part, strict=False)  # ValueError names the bad part
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("opening_hours")
    @classmethod
    def _opening_hours(cls, value: str) -> str:
        OpeningHours.parse(value)  # raises ValueError saying what is wrong
        return value

    @field_validator("cloudwatch_namespace")
    @classmethod
    def _cloudwatch_namespace(cls, value: str) -> str:
        if value.startswith("AWS/"):
            raise ValueError("the AWS/ namespaces are reserved for AWS's own metrics")
        return value

    @field_validator("admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters")
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
            raise _field_error("secret_key", "must be set to a random value in production")
        if len(self.secret_key.get_secret_value()) < 32:
            raise _field_error("secret_key", "must be at least 32 characters")
        if self.aws_access_key_id or self.aws_secret_access_key:
            raise _field_error(
                "aws_access_key_id",
                "static AWS keys are refused in production: use an IAM role (IRSA)",
            )
        if self.database_url.startswith("sqlite"):
            raise _field_error("database_url", "SQLite is for development only")
        if self.redis_url.startswith("memory"):
            raise _field_error("redis_url", "memory:// is for development only")
        return self

    # --- Derived values ----------------------------------------------------------------------
    @cached_property
    def names(self) -> ResourceNames:
        return ResourceNames(self.resource_prefix)

    @cached_property
    def slot_rules(self) -> SlotRules:
        return SlotRules(
            hours=OpeningHours.parse(self.opening_hours),
            zone=ZoneInfo(self.timezone),
            slot_minutes=self.slot_minutes,
            lead_minutes=self.lead_minutes,
            max_days_ahead=self.max_days_ahead,
        )

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return str(self.public_url).startswith("https://")

    @property
    def async_database_url(self) -> str:
        """The database URL with the async driver pickup uses (asyncpg or aiosqlite)."""
        return async_database_url(self.database_url)

    def aws_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a boto3 / aiobotocore client of any service."""
        kwargs: dict[str, Any] = {"region_name": self.aws_region}
        if self.aws_endpoint_url is not None:
            kwargs["endpoint_url"] = str(self.aws_endpoint_url).rstrip("/")
        if self.aws_access_key_id and self.aws_secret_access_key:
            kwargs["aws_access_key_id"] = self.aws_access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key.get_secret_value()
        return kwargs

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            file_secret_settings,
            SSMParameterSource(settings_cls, init_settings),
        )


def _field_error(field: str, message: str) -> ValueError:
    return ValueError(f"{field}::{message}")


class SSMParameterSource(PydanticBaseSettingsSource):
    """Reads every parameter below ``PICKUP_SSM_PATH``; ``<path>/database_url`` sets that field.

    Names are matched case-insensitively, with ``-`` read as ``_``. SecureString values are
    decrypted. The overlay is read once, at start-up, before any event loop runs.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._init_settings = init_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads all parameters at once

    def _lookup(self, name: str) -> str | None:
        init = self._init_settings()
        if name in init:
            return None if init[name] is None else str(init[name])
        return os.environ.get(ENV_PREFIX + name.upper())

    def __call__(self) -> dict[str, Any]:
        path = self._lookup("ssm_path")
        if not path:
            return {}
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"region_name": self._lookup("aws_region") or "us-east-1"}
        if endpoint := self._lookup("aws_endpoint_url"):
            kwargs["endpoint_url"] = endpoint
        key_id, secret = self._lookup("aws_access_key_id"), self._lookup("aws_secret_access_key")
        if key_id and secret:
            kwargs.update(aws_access_key_id=key_id, aws_secret_access_key=secret)
        fields = set(self.settings_cls.model_fields)
        values: dict[str, Any] = {}
        try:
            config = Config(
                connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}
            )
            client = boto3.client("ssm", config=config, **kwargs)
            pages = client.get_paginator("get_parameters_by_path").paginate(
                Path=path, Recursive=True, WithDecryption=True
            )
            for page in pages:
                for parameter in page["Parameters"]:
                    name = parameter["Name"].rsplit("/", 1)[-1].lower().replace("-", "_")
                    if name in fields and name != "ssm_path":
                        values[name] = parameter["Value"]
        except (BotoCoreError, ClientError) as error:
            raise SettingsError(
                f"{ENV_PREFIX}SSM_PATH: cannot read SSM parameters under {path!r}: {error}"
            ) from error
        return values


def env_var(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    """(variable, message) for one pydantic error, in the words of the environment variable."""
    message = str(error.get("msg", "invalid"))
    field = str(error["loc"][0]) if error.get("loc") else ""
    if "::" in message:  # raised by a model validator, which names its field
        field, message = message.split("::", 1)
        field = field.removeprefix("Value error, ")
    message = message.removeprefix("Value error, ")
    info = Settings.model_fields.get(field)
    expected = info.description if info and info.description else ""
    given = error.get("input")
    if error.get("type") == "missing":
        return env_var(field), f"is required: expected {expected}"
    if isinstance(given, str):
        given = redact_url(given)
    shown = "" if given is None or "secret" in field or "password" in field else f" (got {given!r})"
    hint = f"; expected {expected}" if expected and expected not in message else ""
    return env_var(field), f"is invalid: {message}{hint}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise :class:`SettingsError` naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for detail in error.errors():
            variable, message = _describe(detail)
            lines.append(f"{variable} {message}")
        raise SettingsError("\n".join(dict.fromkeys(lines))) from None
