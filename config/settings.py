"""Django settings for MLManager: one complete module, driven by config.env.

The embedded default (SQLite, database task queue, local files) needs no variables at all;
production is the same code with MLMANAGER_ENV=production and the values README lists.
"""

from __future__ import annotations

from datetime import timedelta

import dj_database_url
from csp.constants import NONE, SELF

from config.env import read_environment
from mlmanager.ops.logs import JSON_FORMATTER_OPTIONS

ENV = read_environment()

DEBUG = ENV.debug
SECRET_KEY = ENV.secret_key
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "mlmanager.core",
    "mlmanager.accounts",
    "mlmanager.audit",
    "mlmanager.jobs",
    "mlmanager.datasets",
    "mlmanager.machines",
    "mlmanager.predictions",
    "mlmanager.sites",
    "mlmanager.monitoring",
    "mlmanager.billing",
    "mlmanager.marketplace",
    "mlmanager.consulting",
    "mlmanager.live",
    "mlmanager.ops",
]

MIDDLEWARE = [
    # First, so it counts and times every request, including those other middleware answer.
    "mlmanager.ops.middleware.RequestMetricsMiddleware",
    # Each request's id and client address on the platform log entries logged meanwhile.
    "mlmanager.ops.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, adding the live socket to connect-src (CONTENT_SECURITY_POLICY below).
    "mlmanager.live.csp.LiveSocketCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "mlmanager.accounts.middleware.UserPreferencesMiddleware",
    "mlmanager.core.middleware.ApplicationErrorMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into accounts.lockout's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mlmanager.accounts.context_processors.current_team",
                "mlmanager.live.context_processors.live",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(ENV.database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that stops answering fails a request, /readyz or a job's write within
    # seconds rather than after the operating system's TCP timeout; a connection a server
    # dropped (restarted, pg_terminate_backend) is noticed before it is reused.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock upgrades
    # failing under concurrent writers; the timeout rides out short write bursts. Connections
    # persist like PostgreSQL's (conn_max_age): opening one per request cost ~0.5 ms.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "datasets:list"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The lockout backend first: it refuses a locked-out account or address before the password is
# checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login lockout (django-axes, see mlmanager/accounts/lockout.py): failures counted in the
# database, so every process and machine sees them, separately per account and per client
# address, on the login page and POST /api/v1/auth/token/. A success does not wipe the count:
# an attacker's own account must not reset the failures counted against their address.
MLMANAGER_TRUSTED_PROXIES = ENV.trusted_proxies
AXES_FAILURE_LIMIT = ENV.login_failure_limit
AXES_COOLOFF_TIME = timedelta(minutes=ENV.login_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_USERNAME_FORM_FIELD = "username"  # the login form's field and authenticate()'s keyword
AXES_USERNAME_CALLABLE = "mlmanager.accounts.lockout.attempted_email"
AXES_CLIENT_IP_CALLABLE = "mlmanager.core.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "mlmanager.accounts.lockout.lockout_response"
# Axes logs its configuration at every process start; our own logs come first (and, with
# MLMANAGER_LOG_FORMAT=json, are the only lines a collector should see before the first request).
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = ENV.data_dir / "static"
MEDIA_ROOT = ENV.data_dir / "media"
MEDIA_URL = None  # files are served only through views that check team access
MLMANAGER_STORAGE_WORK_DIR = ENV.data_dir / "storage"
MLMANAGER_STORAGE_CACHE_MB = ENV.storage_cache_mb
# Every file goes through mlmanager.core.storage on the "default" storage: the data folder, or
# an S3-compatible bucket with MLMANAGER_STORAGE_URL (then this machine keeps downloaded copies
# for the engine under MLMANAGER_STORAGE_WORK_DIR, at most MLMANAGER_STORAGE_CACHE_MB).
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": ENV.object_storage.storage_options(),
        }
        if ENV.object_storage is not None
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if ENV.is_production
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads: the size limit is enforced while the body streams in, and every file goes to a
# temporary file on disk, so the web process never holds a whole upload in memory.
MLMANAGER_MAX_UPLOAD_BYTES = ENV.max_upload_mb * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "mlmanager.core.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Beside MEDIA_ROOT on the same filesystem, so keeping an upload is a rename, never a copy.
FILE_UPLOAD_TEMP_DIR = ENV.data_dir / "uploads-in-progress"
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Ingest caps for every format: bytes do not bound rows (a small Parquet file can declare
# tens of millions), so the worker refuses files past these before or while reading.
MLMANAGER_MAX_ROWS = ENV.max_rows
MLMANAGER_MAX_CELLS = ENV.max_cells
# Image archives (zip uploads): images per archive, pixels per image (checked from the header,
# before decoding: a decompression bomb declares billions in a few bytes), and the bytes the
# archive may inflate to (counted as read, never as declared: a zip bomb lies).
MLMANAGER_MAX_IMAGES = ENV.max_images
MLMANAGER_MAX_IMAGE_PIXELS = ENV.max_image_pixels
MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES = ENV.max_zip_uncompressed_bytes

# Sites and sensors: the MQTT broker of the sensor bridge (empty: REST ingest only), its topic
# prefix, and how long readings are kept (a team may set its own, sites.RetentionPolicy).
MLMANAGER_MQTT_URL = ENV.mqtt_url
MLMANAGER_MQTT_PREFIX = ENV.mqtt_prefix
# Whether `mlmanager run` starts `mlmanager simulate`, the demo site's feed.
MLMANAGER_SIMULATE = ENV.simulate
MLMANAGER_READING_RETENTION_DAYS = ENV.reading_retention_days
MLMANAGER_ROLLUP_RETENTION_DAYS = ENV.rollup_retention_days

# Monitoring's notifications: how often the outbox is delivered (`monitoring.deliver`), and
# whether webhooks may POST to private, loopback and link-local addresses (off in production:
# a team admin must not reach the servers' own network through a webhook; SSRF).
MLMANAGER_NOTIFY_INTERVAL_S = ENV.notify_interval_s
MLMANAGER_WEBHOOK_ALLOW_PRIVATE = ENV.webhook_allow_private
# Billing (mlmanager/billing): off by default, and then nothing is priced, charged or limited.
MLMANAGER_BILLING = ENV.billing
MLMANAGER_BILLING_CURRENCY = ENV.billing_currency

# MLflow (machines/services/mlflow_tracking.py): every finished run is logged to this tracking
# server in a background job, and versions may be registered there; empty: nothing is sent.
MLFLOW_TRACKING_URI = ENV.mlflow_tracking_uri
# Dataset graphs (mlmanager.datasets.graphs) draw at most this many rows, a sample with a fixed
# seed, so a graph of a large table answers quickly and the same rows every time.
MLMANAGER_GRAPH_SAMPLE_ROWS = ENV.graph_sample_rows

MLMANAGER_SIGNUP_OPEN = ENV.signup_open
MLMANAGER_SITE_URL = ENV.site_url
MLMANAGER_INVITATION_DAYS = 7
# Caps the number of candidates every model search tries (unset: the budget alone decides).
# Tests and the benchmark's fixed-fit overhead measurement set it.
MLMANAGER_TRAINING_MAX_CANDIDATES = ENV.training_max_candidates
# Caps the epochs of every image model's members (unset: the level's cap and the budget decide).
# Tests and demos set it small.
MLMANAGER_VISION_MAX_EPOCHS = ENV.vision_max_epochs
# Predictions: loaded model versions kept per web process (LRU, by artifact size), the
# largest predict request body, and how often the buffered prediction log is written
# (0: within the request, as tests do).
MLMANAGER_MODEL_CACHE_MB = ENV.model_cache_mb
MLMANAGER_PREDICT_MAX_BODY_BYTES = ENV.predict_max_body_mb * 1024 * 1024
MLMANAGER_PREDICTION_LOG_FLUSH_S = ENV.prediction_log_flush_s
# Image predictions: images per request (more go in a batch's zip) and bytes per image; each is
# also held to the pixel limit of a dataset's images.
MLMANAGER_PREDICT_MAX_IMAGES = 16
MLMANAGER_PREDICT_MAX_IMAGE_BYTES = 10 * 1024 * 1024

# Background jobs: the same task code on the database queue (embedded default) or on Celery
# workers (MLMANAGER_TASKS=celery, CELERY_BROKER_URL: Redis or RabbitMQ). See mlmanager/jobs.
MLMANAGER_TASKS = ENV.tasks
TASK_QUEUES = ["default", "training", "gpu"]
TASKS = {
    "default": {
        "BACKEND": (
            "mlmanager.jobs.celery_backend.CeleryBackend"
            if ENV.tasks == "celery"
            else "mlmanager.jobs.database_backend.DatabaseBackend"
        ),
        "QUEUES": TASK_QUEUES,
    }
}
CELERY_BROKER_URL = ENV.celery_broker_url
# How often running work and workers heartbeat; after how long without one a job's worker is
# taken as dead; after how long a job still queued is sent to the queue again (a broker that
# lost its messages); how often the reaper runs.
MLMANAGER_JOB_HEARTBEAT_S = ENV.job_heartbeat_s
MLMANAGER_JOB_STALE_S = ENV.job_stale_s
MLMANAGER_JOB_REQUEUE_AFTER_S = ENV.job_requeue_after_s
MLMANAGER_REAPER_INTERVAL_S = ENV.reaper_interval_s

# The cache: local memory per process on the embedded default; Redis, shared by every process
# of every machine, when REDIS_URL is set.
CACHES = {
    "default": (
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": ENV.redis_url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
        if ENV.redis_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Request rate limits (mlmanager/core/throttling.py) are counted where every process sees
    # them: gunicorn's 2 workers each counting in memory would double every limit. In Redis,
    # here, when configured; else in the database (core.RequestCount). The timeout covers the
    # longest window, a day; entries are small counters.
    **(
        {
            "throttles": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": ENV.redis_url,
                "KEY_PREFIX": "throttle",
                "TIMEOUT": 24 * 60 * 60,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
            }
        }
        if ENV.redis_url
        else {}
    ),
}

# Live updates (mlmanager.live), served by `mlmanager live` (ASGI) beside gunicorn. With
# REDIS_URL every process pushes its job changes through the Redis channel layer; without a
# channel layer (the embedded default) the live server polls the database itself. Pages open
# their socket at MLMANAGER_LIVE_URL, else on this host at MLMANAGER_LIVE_PORT.
CHANNEL_LAYERS = (
    {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A Redis that does not answer must not hold a worker's progress report for long.
            "CONFIG": {"hosts": [{"address": ENV.redis_url, "socket_connect_timeout": 2}]},
        }
    }
    if ENV.redis_url
    else {}
)
MLMANAGER_LIVE_URL = ENV.live_url
MLMANAGER_LIVE_PORT = ENV.live_port
# The address the servers listen on (HOST): the live server accepts sockets from pages served
# there, besides the localhost names, MLMANAGER_SITE_URL's host and ALLOWED_HOSTS (mlmanager.live).
MLMANAGER_HOST = ENV.host

if ENV.email_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = ENV.email_host
    EMAIL_PORT = ENV.email_port
    EMAIL_HOST_USER = ENV.email_user
    EMAIL_HOST_PASSWORD = ENV.email_password
    EMAIL_USE_TLS = ENV.email_use_tls
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = ENV.from_email

# Rows per page of the list pages (core.pagination.page_of); the API pages by ?limit=.
MLMANAGER_PAGE_SIZE = 25

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mlmanager.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's parsers refusing NUL characters (400 invalid_text), which PostgreSQL cannot store.
    "DEFAULT_PARSER_CLASSES": [
        "mlmanager.core.parsers.JSONParser",
        "mlmanager.core.parsers.FormParser",
        "mlmanager.core.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "mlmanager.core.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "mlmanager.core.api.AutoSchema",
    "EXCEPTION_HANDLER": "mlmanager.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per-user limits on every API call; predict and the sign-in endpoints set their own.
    # Billing's per-team API requests per minute (the plan's quota; nothing with billing off).
    "DEFAULT_THROTTLE_CLASSES": [
        "mlmanager.core.throttling.ApiRateThrottle",
        "mlmanager.billing.throttling.TeamApiRateThrottle",
    ],
    # DRF's rule for the client address, set to the same number as core.throttling's.
    "NUM_PROXIES": ENV.trusted_proxies,
}
# Request rates ("N/period"; None: no limit), read by mlmanager/core/throttling.py.
MLMANAGER_API_RATE = ENV.api_rate
MLMANAGER_PREDICT_RATE = ENV.predict_rate
MLMANAGER_TOKEN_RATE = ENV.token_rate
MLMANAGER_ACCOUNT_EMAIL_RATE = ENV.account_email_rate
MLMANAGER_ACCOUNT_ADDRESS_RATE = ENV.account_address_rate
SPECTACULAR_SETTINGS = {
    "TITLE": "MLManager API",
    "DESCRIPTION": "Datasets, jobs, teams and (later) models and predictions. "
    'Errors share one shape: {"error": {"code", "message", "details"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "mlmanager.jobs.models.Job.Status",
        "DatasetStatusEnum": "mlmanager.datasets.models.Dataset.Status",
        "RoleEnum": "mlmanager.accounts.models.Membership.Role",
        "ReviewStatusEnum": "mlmanager.predictions.models.ReviewStatus",
        "DatasetKindEnum": "mlmanager.datasets.models.Dataset.Kind",
        "ListingKindEnum": "mlmanager.marketplace.models.Listing.Kind",
        "ListingCategoryEnum": "mlmanager.marketplace.models.Listing.Category",
        "OperationKindEnum": "mlmanager.billing.models.Operation.Kind",
        "ConsultingCategoryEnum": "mlmanager.consulting.models.ConsultingRequest.Category",
        "GraphTypeEnum": "mlmanager.datasets.models.DatasetGraph.Type",
        "GraphFieldEnum": "mlmanager.datasets.graphs.FIELDS",
    },
}

# MLMANAGER_LOG_FORMAT=json: one JSON object per line (timestamp, level, logger, message and
# the record's extra fields) for log collectors; gunicorn's logs follow (ops.webserver).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", **JSON_FORMATTER_OPTIONS},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if ENV.log_format == "json" else "plain",
        },
        # Warnings and errors also into the database, for the staff's platform log page; it
        # queues and never blocks or fails the caller (mlmanager/ops/platform_log.py).
        "platform_log": {
            "class": "mlmanager.ops.platform_log.PlatformLogHandler",
            "level": "WARNING",
        },
    },
    "root": {"handlers": ["console", "platform_log"], "level": ENV.log_level},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # JSON: Django's own handlers (DEBUG's console, runserver's) would print plain text
        # among the JSON lines; naming their loggers here drops those handlers, and the records
        # reach the JSON handler through the root logger.
        **(
            {
                "django": {"level": "INFO", "propagate": True},
                "django.server": {"level": "INFO", "propagate": True},
            }
            if ENV.log_format == "json"
            else {}
        ),
    },
}

# Operations (mlmanager/ops): /metrics wants this bearer token when it is set; without one it
# is open in development and hidden (404) in production. Redis, when configured, is one of the
# dependencies /readyz checks.
MLMANAGER_METRICS_TOKEN = ENV.metrics_token
MLMANAGER_METRICS_OPEN = not ENV.is_production
# The platform log (ops.platform_log): entries older than this are deleted hourly. The tests
# switch the handler off (conftest.py) except where they test it.
MLMANAGER_PLATFORM_LOG_RETENTION_DAYS = ENV.platform_log_retention_days
MLMANAGER_PLATFORM_LOG_ENABLED = True
REDIS_URL = ENV.redis_url
# Load balancers probe and Prometheus scrapes each web server directly over plain HTTP (TLS
# ends at the proxy): a redirect to https would fail their checks. Matched against the path
# without its leading slash.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

if ENV.is_production:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 30
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy on every response (django-csp): scripts, styles, fonts and images from
# this site only, no inline script, style or event handler, no eval. Pages keep their scripts and
# styles in static files; the Swagger UI page (/api/docs/) too (mlmanager.core.api_docs).
# connect-src also gets the live socket, per request (mlmanager.live.csp). Django's own debug
# pages (DEBUG 404 and 500) are left without the header by django-csp.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Development serves static files straight from the apps; production from collectstatic output.
# Plotly.js (the dataset graphs) is found in the installed plotly package, not copied into the
# repository (mlmanager.datasets.plotly_assets).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "mlmanager.datasets.plotly_assets.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = not ENV.is_production
WHITENOISE_AUTOREFRESH = ENV.debug and not ENV.is_production
