"""Settings shared by every environment, read from FLOTILLA_* environment variables.

The full list of variables, with their defaults, is documented in docs/configuration.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.env import database_from_url, env_bool, env_int, env_list, env_str
from config.install_secrets import default_data_dir
from config.outbound import parse_allowance

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("FLOTILLA_SECRET_KEY")
DEBUG = env_bool("FLOTILLA_DEBUG", False)
ALLOWED_HOSTS = env_list("FLOTILLA_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("FLOTILLA_CSRF_TRUSTED_ORIGINS")

# --- Tenancy -------------------------------------------------------------------------------
# Public schema: organisations, users, memberships, API tokens, the task queue, the channel
# layer's tables and the platform-level audit log. Tenant schemas: everything an org owns.
SHARED_APPS = [
    "django_tenants",
    "daphne",
    "orgs",
    "orgs.audit",
    "clusters.engine",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "channels",
    "channels_postgres",
    # The staff directory: public-schema entries of every org's clusters and operations.
    "clusters.directory",
    "snapshots.directory",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "orgs.audit",
    "clusters",
    "networking",
    "snapshots",
    "observability",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "orgs.Organization"
TENANT_DOMAIN_MODEL = "orgs.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New org schemas are cloned from a template schema kept migrated by `migrate_schemas`
# (see orgs.services.schemas): a clone costs a fraction of running every migration.
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_BASE_SCHEMA = "flotilla_template"
TENANT_LIMIT_SET_CALLS = True

DATABASE_URL = env_str("FLOTILLA_DATABASE_URL", "postgres://flotilla:flotilla@127.0.0.1:5432/flotilla")
DATABASES: dict[str, dict[str, Any]] = {"default": database_from_url(DATABASE_URL)}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "orgs.User"
LOGIN_URL = "orgs:login"
LOGIN_REDIRECT_URL = "orgs:home"
LOGOUT_REDIRECT_URL = "orgs:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

MIDDLEWARE = [
    "config.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "orgs.middleware.PublicSchemaMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "orgs.middleware.OrgRoutingMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "orgs.context_processors.portal",
            ],
        },
    },
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("FLOTILLA_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Secrets at rest ----------------------------------------------------------------------
# Comma-separated Fernet keys, newest first: the first encrypts, all decrypt (rotation).
FLOTILLA_ENCRYPTION_KEYS = env_list("FLOTILLA_ENCRYPTION_KEYS")

# --- Cache, Redis ---------------------------------------------------------------------------
REDIS_URL = env_str("FLOTILLA_REDIS_URL")
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "flotilla_cache",
        }
    )
}
# Every cache key carries the schema of the org it was written in.
CACHES["default"]["KEY_FUNCTION"] = "django_tenants.cache.make_key"
CACHES["default"]["REVERSE_KEY_FUNCTION"] = "django_tenants.cache.reverse_key"
# How long a provider's catalogue (regions, sizes, versions) is kept before the cloud is asked again.
FLOTILLA_CATALOGUE_TTL = env_int("FLOTILLA_CATALOGUE_TTL", 300)

# --- Background tasks (django-q2) ----------------------------------------------------------
Q_CLUSTER: dict[str, Any] = {
    "name": "flotilla",
    "workers": env_int("FLOTILLA_WORKERS", 2),
    "timeout": env_int("FLOTILLA_TASK_TIMEOUT", 900),
    # retry must exceed timeout, or a task still running is handed out a second time.
    "retry": env_int("FLOTILLA_TASK_TIMEOUT", 900) + 300,
    "max_attempts": 1,
    "save_limit": 1000,
    "queue_limit": 50,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- The operations engine (clusters.engine) ------------------------------------------------
# Seconds between two passes of the worker's dispatch loop (queues operations that are due).
FLOTILLA_DISPATCH_INTERVAL = float(env_str("FLOTILLA_DISPATCH_INTERVAL", "0.5"))
# Tasks one org may have waiting in the shared queue at once: its other due operations wait in
# the dispatch index, so no org's backlog is queued ahead of every other org's work.
FLOTILLA_DISPATCH_PER_ORG = env_int("FLOTILLA_DISPATCH_PER_ORG", 4)
# A task queued this long ago for an operation that no worker took is presumed lost and resent.
FLOTILLA_DISPATCH_LOST_SECONDS = env_int("FLOTILLA_DISPATCH_LOST_SECONDS", Q_CLUSTER["retry"])
# A running operation whose heartbeat is older than this is presumed dead and handed over.
FLOTILLA_OPERATION_STALE_SECONDS = env_int("FLOTILLA_OPERATION_STALE_SECONDS", 60)
# One task works on an operation at most this long, then queues a fresh task (frees the slot).
FLOTILLA_OPERATION_RUN_BUDGET = env_int("FLOTILLA_OPERATION_RUN_BUDGET", 600)
# One step (booting machines, waiting for nodes) may take at most this long before it fails.
FLOTILLA_OPERATION_STEP_TIMEOUT = env_int("FLOTILLA_OPERATION_STEP_TIMEOUT", 600)

# Local clusters (control planes on this host, FLOTILLA_LOCAL_MAX_CLUSTERS in all) one org may
# have at once, so that one tenant cannot take every slot of the host.
FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG = env_int("FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG", 3)

# Snapshots (snapshots app). Each org's local storage location is its own directory under this
# one (a tenant never chooses a local path). Page size of the snapshot's lists, chunk size, and
# how many requests a restore keeps in flight against one cluster.
FLOTILLA_SNAPSHOT_DIR = env_str("FLOTILLA_SNAPSHOT_DIR", str(default_data_dir() / "snapshots"))
FLOTILLA_SNAPSHOT_PAGE = env_int("FLOTILLA_SNAPSHOT_PAGE", 500)
FLOTILLA_SNAPSHOT_CHUNK_BYTES = env_int("FLOTILLA_SNAPSHOT_CHUNK_BYTES", 4 * 1024 * 1024)
FLOTILLA_RESTORE_CONCURRENCY = env_int("FLOTILLA_RESTORE_CONCURRENCY", 16)
# Seconds a storage location has to answer one call (a put, a get, a list) before it counts as
# not answering.
FLOTILLA_STORAGE_TIMEOUT = env_int("FLOTILLA_STORAGE_TIMEOUT", 30)
# How long one step of a snapshot reads before it checkpoints (seconds; a float).
FLOTILLA_SNAPSHOT_STEP_SECONDS = float(env_str("FLOTILLA_SNAPSHOT_STEP_SECONDS", "4"))

# Cloud endpoints a tenant types (an EC2-compatible endpoint, an OpenStack auth URL) may not
# resolve to loopback/private/link-local addresses unless this is set (emulators, private clouds).
FLOTILLA_CLOUD_PRIVATE_ENDPOINTS = env_bool("FLOTILLA_CLOUD_PRIVATE_ENDPOINTS", False)
# Exceptions to the outbound policy (config.outbound): CIDRs and/or host:port pairs that a
# tenant's URLs (kubeconfig servers, provider endpoints) may reach although they are not public.
FLOTILLA_OUTBOUND_ALLOW = env_list("FLOTILLA_OUTBOUND_ALLOW")
parse_allowance(FLOTILLA_OUTBOUND_ALLOW)  # a malformed entry stops start-up, not a request later

# --- Live updates (Channels) --------------------------------------------------------------
# An open websocket re-checks its membership before forwarding an event at most this often
# (a safety net: removing a member, deactivating or suspending also closes sockets at once).
FLOTILLA_WS_RECHECK_SECONDS = env_int("FLOTILLA_WS_RECHECK_SECONDS", 30)
_db = DATABASES["default"]
# channels-postgres removes group members through the ORM under this alias: the same
# database, public schema (its tables are shared), mirrored in tests.
DATABASES["channels_postgres"] = {
    **_db,
    "OPTIONS": {**_db["OPTIONS"], "pool": False},
    "TEST": {"MIRROR": "default"},
}
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        if REDIS_URL
        else {
            "BACKEND": "channels_postgres.core.PostgresChannelLayer",
            "CONFIG": {
                "NAME": _db["NAME"],
                "USER": _db["USER"],
                "PASSWORD": _db["PASSWORD"],
                "HOST": _db["HOST"],
                "PORT": _db["PORT"],
                "OPTIONS": {k: v for k, v in _db["OPTIONS"].items() if k != "pool"},
                "TIME_ZONE": None,
                "CONN_MAX_AGE": 0,
                "CONN_HEALTH_CHECKS": False,
                "AUTOCOMMIT": True,
            },
        }
    )
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orgs.api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orgs.api.permissions.IsOrgMember"],
    "DEFAULT_PAGINATION_CLASS": "orgs.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["orgs.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "orgs.api.schema.FlotillaAutoSchema",
    "EXCEPTION_HANDLER": "orgs.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "tokens": env_str("FLOTILLA_RATE_TOKENS", "30/min"),
        "auth": env_str("FLOTILLA_RATE_AUTH", "20/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flotilla API",
    "DESCRIPTION": "Kubernetes clusters across clouds. Authenticate with an org-scoped API "
    "token: `Authorization: Bearer flt_...`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Every PATCH of the API takes its fields as required (none is a partial update), so PATCH
    # bodies use the same components as POST ones.
    "COMPONENT_SPLIT_PATCH": False,
    # ProviderKind is both a request choice and a response field: one enum component.
    "ENUM_NAME_OVERRIDES": {
        "ProviderKindEnum": "clusters.choices.ProviderKind",
        "AppStatusEnum": "clusters.choices.AppStatus",
        "ClusterStatusEnum": "clusters.choices.ClusterStatus",
        "StorageKindEnum": "snapshots.choices.StorageKind",
        "SnapshotStatusEnum": "snapshots.choices.SnapshotStatus",
        "RestoreStatusEnum": "snapshots.choices.RestoreStatus",
    },
}
# Oversize payloads are refused before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("FLOTILLA_MAX_REQUEST_BYTES", 1024 * 1024)

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Sign-in (portal and admin) attempts per email address, and per client address whatever the
# email; sign-ups per client address; organisations founded per user; orgs a user may own.
SIGNIN_RATE = env_str("FLOTILLA_RATE_SIGNIN", "10/min")
SIGNIN_IP_RATE = env_str("FLOTILLA_RATE_SIGNIN_IP", "30/min")
SIGNUP_RATE = env_str("FLOTILLA_RATE_SIGNUP", "10/hour")
ORG_CREATE_RATE = env_str("FLOTILLA_RATE_ORG_CREATE", "5/hour")
FLOTILLA_MAX_ORGS_PER_USER = env_int("FLOTILLA_MAX_ORGS_PER_USER", 5)
METRICS_TOKEN = env_str("FLOTILLA_METRICS_TOKEN")

EMAIL_BACKEND = env_str("FLOTILLA_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("FLOTILLA_FROM_EMAIL", "flotilla@localhost")
INVITATION_TTL_DAYS = env_int("FLOTILLA_INVITATION_TTL_DAYS", 7)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("FLOTILLA_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
