"""Test suite: real PostgreSQL, fast password hashing, relaxed rate limits unless a test sets them.

The keys below encrypt nothing but the test database's throw-away rows; they are fixed so that
the worker and web processes a test starts decrypt what the test process wrote.
"""

import tempfile
from pathlib import Path

from config.env import env_str
from config.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-secret-key-never-used-outside-the-test-suite-0123456789"
FLOTILLA_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LWtleS1mb3ItdGhlLXRlc3Qtc3VpdGU="]
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SIGNIN_RATE = "1000/min"
SIGNIN_IP_RATE = "1000/min"
SIGNUP_RATE = "1000/min"
ORG_CREATE_RATE = "1000/min"
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"tokens": "1000/min", "auth": "1000/min"}
METRICS_TOKEN = "test-metrics-token"
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Short enough that a stuck step fails a test in minutes, not in ten.
FLOTILLA_OPERATION_STEP_TIMEOUT = 120
FLOTILLA_OPERATION_RUN_BUDGET = 300

# Several test runs on one machine (e.g. parallel sessions) each need their own database.
DATABASES["default"]["TEST"] = {  # noqa: F405
    **DATABASES["default"].get("TEST", {}),  # noqa: F405
    "NAME": env_str("FLOTILLA_TEST_DATABASE", "test_flotilla"),
}
# Query-budget tests list six (never started) local clusters of one org; the per-org share of
# the host is tested with its own value (tests/clusters/test_local_share.py).
FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG = 10
# The engine's scripted job kind (tests/engine_support), for the tests and the workers they start.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.engine_support"]  # noqa: F405
# Each test run's local storage locations (one directory per test database, wiped at the start
# of a run by tests/conftest.py) so that parallel runs never share snapshots.
FLOTILLA_SNAPSHOT_DIR = env_str(
    "FLOTILLA_SNAPSHOT_DIR",
    str(Path(tempfile.gettempdir()) / f"flotilla-snapshots-{DATABASES['default']['TEST']['NAME']}"),  # noqa: F405
)
