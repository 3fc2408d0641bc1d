"""Django settings for MLManager: one complete module, driven by config.env.

The embedded default (SQLite, database task queue, local files) needs no variables at all;
production is the same code with MLMANAGER_ENV=production and the values README lists.
"""

from __future__ import annotations

import dj_database_url

from config.env import read_environment

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
    "mlmanager.core",
    "mlmanager.accounts",
    "mlmanager.jobs",
    "mlmanager.datasets",
    "mlmanager.machines",
    "mlmanager.predictions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(ENV.database_url, conn_max_age=60)}
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

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = ENV.data_dir / "static"
MEDIA_ROOT = ENV.data_dir / "media"
MEDIA_URL = None  # files are served only through views that check team access
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
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

MLMANAGER_SIGNUP_OPEN = ENV.signup_open
MLMANAGER_SITE_URL = ENV.site_url
MLMANAGER_INVITATION_DAYS = 7
# Caps the number of candidates every model search tries (unset: the budget alone decides).
# Tests and the benchmark's fixed-fit overhead measurement set it.
MLMANAGER_TRAINING_MAX_CANDIDATES = ENV.training_max_candidates
# Predictions: loaded model versions kept per web process (LRU, by artifact size), the
# largest predict request body, and how often the buffered prediction log is written
# (0: within the request, as tests do).
MLMANAGER_MODEL_CACHE_MB = ENV.model_cache_mb
MLMANAGER_PREDICT_MAX_BODY_BYTES = ENV.predict_max_body_mb * 1024 * 1024
MLMANAGER_PREDICTION_LOG_FLUSH_S = ENV.prediction_log_flush_s

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "training", "gpu"],
    }
}

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mlmanager.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "mlmanager.core.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "mlmanager.core.api.AutoSchema",
    "EXCEPTION_HANDLER": "mlmanager.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
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
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": ENV.log_level},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if ENV.is_production:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 30
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Development serves static files straight from the apps; production from collectstatic output.
WHITENOISE_USE_FINDERS = not ENV.is_production
WHITENOISE_AUTOREFRESH = ENV.debug and not ENV.is_production
