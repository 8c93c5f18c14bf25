"""Test suite: real PostgreSQL, fast password hashing, relaxed rate limits unless a test sets them."""

from config.settings.dev import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SIGNIN_RATE = "1000/min"
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"tokens": "1000/min", "auth": "1000/min"}
METRICS_TOKEN = "test-metrics-token"
LOGGING = {"version": 1, "disable_existing_loggers": False}
