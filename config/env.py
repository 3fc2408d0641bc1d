"""The one place that reads the process environment.

Every setting that can change between machines comes from here, so README's configuration table
and this module describe the same list. Development gets safe local defaults; production refuses
to start without the values that must never have a default (the secret key, allowed hosts).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)

# Django's own W009 rule, so a key passes here exactly when `check --deploy` passes it; it is
# private, hence missing from django-stubs.
from django.core.checks.security.base import (  # type: ignore[attr-defined]
    _check_secret_key as _is_strong_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent

ENVIRONMENTS = ("development", "production")
TASK_BACKENDS = ("database", "celery")
LOG_FORMATS = ("text", "json")
# Ingest caps. A table at both (10 M rows × 20 columns, or 2 M × 100) peaks at 2.1-2.2 GB in a
# worker converting and profiling it (bench/ingest_limits.py), which leaves a 24 GB machine
# room for a few jobs at once; training then holds the chosen columns whole (200 M float64
# cells are 1.6 GB).
DEFAULT_MAX_ROWS = 10_000_000
DEFAULT_MAX_CELLS = 200_000_000


class ConfigurationError(RuntimeError):
    """The environment is missing or has an invalid value; the message names the variable."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from error


def _positive_int(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ConfigurationError(f"{name} must be 1 or more, not {value!r}")
    return value


def _non_negative_int(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 0:
        raise ConfigurationError(f"{name} must be 0 or more, not {value!r}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from error
    if not value >= 0:  # also refuses nan
        raise ConfigurationError(f"{name} must be zero or more, not {raw!r}")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# DRF's rate format: requests per second, minute, hour or day.
_RATE = re.compile(r"\d+/(s|sec|m|min|h|hour|d|day)")


def _rate(name: str, default: str) -> str | None:
    """A request rate such as "1200/min"; "off" turns the limit off."""
    raw = (os.environ.get(name) or default).strip().lower()
    if raw == "off":
        return None
    if not _RATE.fullmatch(raw):
        raise ConfigurationError(
            f"{name} must be a rate such as 1200/min (per s, min, hour or day) or off, not {raw!r}"
        )
    return raw


@dataclass(frozen=True)
class ObjectStorage:
    """Where files go in the S3 mode, from MLMANAGER_STORAGE_URL; credentials are not part of
    it: boto3 reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a role) itself."""

    bucket: str
    prefix: str  # every key starts with it; "" for the bucket's root
    endpoint_url: str  # "" for AWS itself
    region: str
    addressing_style: str  # "path" (MinIO, moto, most self-hosted stores), "virtual" or "auto"

    def storage_options(self) -> dict[str, object]:
        """The OPTIONS of django-storages' S3Storage for this location."""
        return {
            "bucket_name": self.bucket,
            "location": self.prefix,
            "endpoint_url": self.endpoint_url or None,
            "region_name": self.region,
            "addressing_style": self.addressing_style,
            "signature_version": "s3v4",
            # Names are chosen by the server and replaced on purpose (a re-profiled Parquet).
            "file_overwrite": True,
            "default_acl": None,  # the bucket's own policy: private
            "querystring_auth": True,  # no file is ever served by a public URL
        }


_STORAGE_URL_OPTIONS = {"endpoint_url", "region", "addressing_style"}
_ADDRESSING_STYLES = ("path", "virtual", "auto")


def _object_storage(name: str) -> ObjectStorage | None:
    """`s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1` (prefix and
    options optional); unset or empty: the local data folder."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "s3" or not parts.netloc or parts.username or parts.password:
        raise ConfigurationError(
            # The value itself is not repeated: it may hold a key someone pasted into it.
            f"{name} must look like s3://bucket/prefix?endpoint_url=…&region=… "
            "(credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(options) - _STORAGE_URL_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"{name} has unknown options {unknown}; known: {sorted(_STORAGE_URL_OPTIONS)}"
        )
    endpoint_url = options.get("endpoint_url", "").strip()
    if endpoint_url and urlsplit(endpoint_url).scheme not in {"http", "https"}:
        raise ConfigurationError(f"{name}: endpoint_url must be an http(s) URL")
    addressing_style = options.get("addressing_style", "path" if endpoint_url else "auto")
    if addressing_style not in _ADDRESSING_STYLES:
        raise ConfigurationError(
            f"{name}: addressing_style must be one of {_ADDRESSING_STYLES}, "
            f"not {addressing_style!r}"
        )
    return ObjectStorage(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        endpoint_url=endpoint_url,
        region=options.get("region", "").strip() or "us-east-1",
        addressing_style=addressing_style,
    )


def _check_production_secret_key(secret_key: str) -> None:
    """Refuse what Django's deployment check security.W009 flags, with Django's own rule:
    sessions, password-reset links and model signatures are only as strong as this key."""
    if _is_strong_secret_key(secret_key):
        return
    raise ConfigurationError(
        f"MLMANAGER_SECRET_KEY is too weak ({len(secret_key)} characters, "
        f"{len(set(secret_key))} different; Django's check security.W009 asks for at least "
        f"{SECRET_KEY_MIN_LENGTH} characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different, and "
        f"no {SECRET_KEY_INSECURE_PREFIX!r} prefix): generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )


def _development_secret_key(data_dir: Path) -> str:
    """A key generated on first run and kept in the data folder (git-ignored), never in the code."""
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    temporary = key_file.with_suffix(".tmp")
    temporary.write_text(key)
    temporary.chmod(0o600)
    temporary.replace(key_file)
    return key


@dataclass(frozen=True)
class Environment:
    environment: str
    debug: bool
    secret_key: str
    data_dir: Path
    database_url: str
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    max_upload_mb: int
    max_rows: int  # of an ingested file, any format
    max_cells: int  # rows × columns of an ingested file
    max_images: int  # images one uploaded zip may hold
    max_image_pixels: int  # width × height of one image, checked before decoding
    max_zip_uncompressed_bytes: int  # bytes an uploaded zip may inflate to, counted as read
    signup_open: bool
    email_host: str
    email_port: int
    email_user: str
    email_password: str
    email_use_tls: bool
    from_email: str
    site_url: str
    log_level: str
    host: str
    port: int
    web_concurrency: int
    admin_email: str
    admin_password: str
    training_max_candidates: int | None
    vision_max_epochs: int | None
    model_cache_mb: int
    predict_max_body_mb: int
    prediction_log_flush_s: float
    tasks: str  # "database" (the embedded default) or "celery"
    celery_broker_url: str
    redis_url: str  # the channel layer and the cache in scale-out; empty: local memory
    log_format: str
    metrics_token: str  # required as a bearer token by /metrics; empty: see settings
    live_port: int  # the WebSocket (ASGI) server of `mlmanager live`
    live_url: str  # where pages open their socket; empty: this host, port `live_port`
    job_heartbeat_s: float
    job_stale_s: float
    job_requeue_after_s: float
    reaper_interval_s: float
    trusted_proxies: int  # proxies in front that append to X-Forwarded-For
    login_failure_limit: int
    login_lockout_minutes: int
    api_rate: str | None  # "N/period" for DRF; None: no limit
    predict_rate: str | None
    token_rate: str | None
    account_email_rate: str | None
    account_address_rate: str | None
    object_storage: ObjectStorage | None  # None: files in the data folder
    storage_cache_mb: int  # the S3 mode's local copies, per machine
    mqtt_url: str  # the broker of the sensor bridge (mqtt://host:port); empty: no MQTT
    mqtt_prefix: str  # topics are <prefix>/sites/<site id>/sensors/<device id>
    simulate: bool  # `mlmanager run` feeds the demo site simulated readings
    reading_retention_days: int  # raw readings kept, unless a team sets its own
    rollup_retention_days: int  # minute and hour rollups kept, unless a team sets its own
    notify_interval_s: float  # how often due notifications (e-mail, webhooks) are delivered
    webhook_allow_private: bool  # webhooks may POST to private and loopback addresses
    platform_log_retention_days: int  # warnings and errors kept in the platform log
    billing: bool  # credits, prices, quotas and the marketplace (mlmanager/billing); off: free
    billing_currency: str  # the one currency of every account (ISO 4217 code)
    mlflow_tracking_uri: str  # an MLflow server every finished run is logged to; empty: none
    graph_sample_rows: int  # rows a dataset graph draws at most (a seeded sample of the rest)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def read_environment() -> Environment:
    environment = os.environ.get("MLMANAGER_ENV", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"MLMANAGER_ENV must be one of {ENVIRONMENTS}, not {environment!r}"
        )
    production = environment == "production"
    data_dir = Path(os.environ.get("MLMANAGER_DATA_DIR") or BASE_DIR / "var").resolve()

    secret_key = os.environ.get("MLMANAGER_SECRET_KEY", "")
    if not secret_key:
        if production:
            raise ConfigurationError("MLMANAGER_SECRET_KEY must be set in production")
        secret_key = _development_secret_key(data_dir)
    elif production:
        _check_production_secret_key(secret_key)

    allowed_hosts = _list("MLMANAGER_ALLOWED_HOSTS", [] if production else ["*"])
    if production and not allowed_hosts:
        raise ConfigurationError("MLMANAGER_ALLOWED_HOSTS must be set in production")

    port = _int("PORT", 8000)
    tasks = os.environ.get("MLMANAGER_TASKS", "database").strip().lower()
    if tasks not in TASK_BACKENDS:
        raise ConfigurationError(f"MLMANAGER_TASKS must be one of {TASK_BACKENDS}, not {tasks!r}")
    broker_url = os.environ.get("CELERY_BROKER_URL", "").strip()
    if tasks == "celery" and not broker_url:
        raise ConfigurationError("CELERY_BROKER_URL must be set when MLMANAGER_TASKS=celery")
    log_format = os.environ.get("MLMANAGER_LOG_FORMAT", "text").strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(
            f"MLMANAGER_LOG_FORMAT must be one of {LOG_FORMATS}, not {log_format!r}"
        )
    heartbeat_s = _float("MLMANAGER_JOB_HEARTBEAT_S", 10.0) or 10.0
    return Environment(
        environment=environment,
        debug=_bool("MLMANAGER_DEBUG", default=not production),
        secret_key=secret_key,
        data_dir=data_dir,
        database_url=os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'db.sqlite3'}",
        allowed_hosts=allowed_hosts,
        csrf_trusted_origins=_list("MLMANAGER_CSRF_TRUSTED_ORIGINS", []),
        max_upload_mb=_int("MLMANAGER_MAX_UPLOAD_MB", 200),
        max_rows=_positive_int("MLMANAGER_MAX_ROWS", DEFAULT_MAX_ROWS),
        max_cells=_positive_int("MLMANAGER_MAX_CELLS", DEFAULT_MAX_CELLS),
        max_images=_positive_int("MLMANAGER_MAX_IMAGES", 50_000),
        max_image_pixels=_positive_int("MLMANAGER_MAX_IMAGE_PIXELS", 40_000_000),
        max_zip_uncompressed_bytes=_positive_int(
            "MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES", 4 * 1024**3
        ),
        signup_open=_bool("MLMANAGER_SIGNUP_OPEN", default=not production),
        email_host=os.environ.get("MLMANAGER_EMAIL_HOST", ""),
        email_port=_int("MLMANAGER_EMAIL_PORT", 587),
        email_user=os.environ.get("MLMANAGER_EMAIL_USER", ""),
        email_password=os.environ.get("MLMANAGER_EMAIL_PASSWORD", ""),
        email_use_tls=_bool("MLMANAGER_EMAIL_USE_TLS", default=True),
        from_email=os.environ.get("MLMANAGER_FROM_EMAIL", "MLManager <noreply@localhost>"),
        site_url=os.environ.get("MLMANAGER_SITE_URL", f"http://127.0.0.1:{port}").rstrip("/"),
        log_level=os.environ.get("MLMANAGER_LOG_LEVEL", "INFO").upper(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=port,
        web_concurrency=_int("WEB_CONCURRENCY", 2),
        admin_email=os.environ.get("MLMANAGER_ADMIN_EMAIL", "admin@example.com").strip().lower(),
        admin_password=os.environ.get("MLMANAGER_ADMIN_PASSWORD", ""),
        training_max_candidates=_int("MLMANAGER_TRAINING_MAX_CANDIDATES", 0) or None,
        vision_max_epochs=_int("MLMANAGER_VISION_MAX_EPOCHS", 0) or None,
        model_cache_mb=_int("MLMANAGER_MODEL_CACHE_MB", 512),
        predict_max_body_mb=_int("MLMANAGER_PREDICT_MAX_BODY_MB", 20),
        prediction_log_flush_s=_float("MLMANAGER_PREDICTION_LOG_FLUSH_S", 1.0),
        tasks=tasks,
        celery_broker_url=broker_url,
        redis_url=os.environ.get("REDIS_URL", "").strip(),
        log_format=log_format,
        metrics_token=os.environ.get("MLMANAGER_METRICS_TOKEN", "").strip(),
        live_port=_int("MLMANAGER_LIVE_PORT", port + 1),
        live_url=os.environ.get("MLMANAGER_LIVE_URL", "").strip().rstrip("/"),
        job_heartbeat_s=heartbeat_s,
        job_stale_s=_float("MLMANAGER_JOB_STALE_S", 3 * heartbeat_s) or 3 * heartbeat_s,
        job_requeue_after_s=_float("MLMANAGER_JOB_REQUEUE_AFTER_S", 600.0),
        reaper_interval_s=_float("MLMANAGER_REAPER_INTERVAL_S", 15.0) or 15.0,
        trusted_proxies=_non_negative_int("MLMANAGER_TRUSTED_PROXIES", 0),
        login_failure_limit=_positive_int("MLMANAGER_LOGIN_FAILURE_LIMIT", 5),
        login_lockout_minutes=_positive_int("MLMANAGER_LOGIN_LOCKOUT_MINUTES", 15),
        api_rate=_rate("MLMANAGER_API_RATE", "1200/min"),
        predict_rate=_rate("MLMANAGER_PREDICT_RATE", "6000/min"),
        token_rate=_rate("MLMANAGER_TOKEN_RATE", "20/min"),
        account_email_rate=_rate("MLMANAGER_ACCOUNT_EMAIL_RATE", "5/hour"),
        account_address_rate=_rate("MLMANAGER_ACCOUNT_ADDRESS_RATE", "30/hour"),
        object_storage=_object_storage("MLMANAGER_STORAGE_URL"),
        storage_cache_mb=_positive_int("MLMANAGER_STORAGE_CACHE_MB", 2048),
        mqtt_url=_mqtt_url("MLMANAGER_MQTT_URL"),
        mqtt_prefix=_mqtt_prefix("MLMANAGER_MQTT_PREFIX", "mlmanager"),
        simulate=_bool("MLMANAGER_SIMULATE", default=True),
        reading_retention_days=_positive_int("MLMANAGER_READING_RETENTION_DAYS", 365),
        rollup_retention_days=_positive_int("MLMANAGER_ROLLUP_RETENTION_DAYS", 3650),
        notify_interval_s=_float("MLMANAGER_NOTIFY_INTERVAL_S", 10.0) or 10.0,
        # SSRF: in production a webhook may not reach the servers' own network unless asked.
        webhook_allow_private=_bool("MLMANAGER_WEBHOOK_ALLOW_PRIVATE", default=not production),
        platform_log_retention_days=_positive_int("MLMANAGER_PLATFORM_LOG_RETENTION_DAYS", 30),
        billing=_bool("MLMANAGER_BILLING", default=False),
        billing_currency=_currency("MLMANAGER_BILLING_CURRENCY", "USD"),
        mlflow_tracking_uri=_mlflow_tracking_uri("MLFLOW_TRACKING_URI"),
        graph_sample_rows=_positive_int("MLMANAGER_GRAPH_SAMPLE_ROWS", 5_000),
    )


def _mlflow_tracking_uri(name: str) -> str:
    """MLflow's own variable: the http(s) address of a tracking server (no local paths: runs are
    logged through the REST API)."""
    raw = (os.environ.get(name) or "").strip().rstrip("/")
    if raw and urlsplit(raw).scheme not in {"http", "https"}:
        raise ConfigurationError(
            f"{name} must be an http(s) address of an MLflow server, not {raw!r}"
        )
    return raw


def _currency(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip().upper() or default
    if len(raw) != 3 or not raw.isalpha() or not raw.isascii():
        raise ConfigurationError(f"{name} must be a three-letter currency code, not {raw!r}")
    return raw


def _mqtt_url(name: str) -> str:
    raw = os.environ.get(name, "").strip()
    if raw and (urlsplit(raw).scheme not in ("mqtt", "mqtts") or not urlsplit(raw).hostname):
        raise ConfigurationError(f"{name} must look like mqtt://host:1883 or mqtts://host:8883")
    return raw


def _mqtt_prefix(name: str, default: str) -> str:
    raw = os.environ.get(name, "").strip().strip("/") or default
    if any(character in raw for character in "+#\x00") or "//" in raw:
        raise ConfigurationError(f"{name} must be a topic without wildcards, not {raw!r}")
    return raw


# --- the client side ---------------------------------------------------------------------------

DEFAULT_CLIENT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class ClientEnvironment:
    """What the `mlmanager` client subcommands read: the server to call and the API token.

    Kept apart from `Environment` because they are read by the calling process, often on
    another machine than the server: reading them must not create the development secret key
    or demand the production settings.
    """

    url: str
    token: str


def read_client_environment() -> ClientEnvironment:
    return ClientEnvironment(
        url=(os.environ.get("MLMANAGER_URL") or DEFAULT_CLIENT_URL).strip().rstrip("/"),
        token=os.environ.get("MLMANAGER_TOKEN", "").strip(),
    )
