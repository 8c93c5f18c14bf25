"""Test suite: real PostgreSQL, fast password hashing, relaxed rate limits unless a test sets them."""

from config.env import env_str
from config.settings.dev import *  # noqa: F403

DEBUG = False
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
